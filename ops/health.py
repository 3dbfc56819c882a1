"""Health endpoints for load balancers and orchestrators: JSON, no sign-in, read-only.

GET /health/live — 200 while the process serves requests (it touches nothing else): restart the
  process when this fails.
GET /health/ready — 200 when the database answers `SELECT 1` and the job queue's storage answers a
  read; 503 otherwise, naming the part that failed (its error class only: addresses, versions and
  messages stay in the log). Send no traffic to a process while this fails. It also says when a
  worker last ran a periodic job (`ops.heartbeat`, every minute, in the queue's key-value
  storage): informative only, readiness does not depend on it — web processes serve without a
  worker, background work just waits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Blueprint, current_app
from sqlalchemy import text

from extensions import db
from jobs import queue_of
from ops.heartbeat import last_heartbeat

log = logging.getLogger(__name__)
health = Blueprint("health", __name__, url_prefix="/health")
NO_STORE = {"Cache-Control": "no-store"}


def _database() -> None:
    with db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _queue() -> float | None:
    """Reading the heartbeat is the queue storage's check."""
    return last_heartbeat(queue_of(current_app))


def _check(name: str, probe: Callable[[], object], retries: int = 0) -> tuple[bool, object]:
    """(True, what `probe` returned) or (False, the error's class name), logged as a warning."""
    error: Exception | None = None
    for _attempt in range(retries + 1):
        try:
            return True, probe()
        except Exception as exc:
            error = exc
    log.warning("Readiness: the %s does not answer (%s: %s)", name, type(error).__name__,
                (str(error).strip().splitlines() or [""])[0][:200])
    return False, type(error).__name__


@health.get("/live")
def live() -> tuple[dict, int, dict]:
    return {"status": "alive"}, 200, NO_STORE


@health.get("/ready")
def ready() -> tuple[dict, int, dict]:
    database_ok, database_error = _check("database", _database)
    # The queue's connection is kept per thread and learns only on its next use that the server
    # restarted: one more attempt, as the engine's pre-ping does for the database.
    queue_ok, stamped = _check("job queue storage", _queue, retries=1)
    checks = {"database": "ok" if database_ok else f"failing ({database_error})",
              "job_queue": "ok" if queue_ok else f"failing ({stamped})"}
    body: dict = {"status": "ready" if database_ok and queue_ok else "not ready", "checks": checks}
    if queue_ok:
        body["last_periodic_job"] = _periodic(stamped if isinstance(stamped, float) else None)
    return body, 200 if database_ok and queue_ok else 503, NO_STORE


def _periodic(stamped: float | None) -> dict | None:
    if stamped is None:
        return None
    at = datetime.fromtimestamp(stamped, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {"at": at, "seconds_ago": max(0, round(time.time() - stamped))}
