"""Runs done by background jobs hold a lease: a worker claims a queued run, beats its heartbeat
while it works (with each committed batch), and a run whose heartbeat has lapsed is dead — its
worker was killed or its machine lost — and is shown as interrupted with what it committed,
resumable from there. A run is cancelled by asking (`cancel_requested`); the worker stops at its
next beat. Works on any model with the LeasedRun columns (models.base), whatever its statuses.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timedelta

from sqlalchemy import update

from models.base import utcnow
from services.transactions import DbSession

DEFAULT_LEASE_SECONDS = 60


class LeaseLost(Exception):
    """Another worker or the lease check took this run over: stop without writing more."""


class CancelRequested(Exception):
    """Somebody asked to cancel the run: stop at this batch boundary."""


def worker_name() -> str:
    """host:pid:thread — which worker holds a run (shown to maintainers, used to check the lease)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


def claim(session: DbSession, model, run_id: int, *, queued, running, worker: str | None = None) -> bool:
    """Take the queued run `run_id` (status `queued` → `running`) for this worker; False when it is
    not queued any more (cancelled, or delivered twice and taken already). The caller commits."""
    result = session.execute(
        update(model).where(model.id == run_id, model.status == queued)
        .values(status=running, worker=worker or worker_name(), heartbeat_at=utcnow(),
                cancel_requested=False)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined]


def beat(session: DbSession, model, run_id: int, *, worker: str | None = None) -> None:
    """Renew the lease inside the batch's unit of work (so a committed batch always renews it).
    Raises LeaseLost when the run is no longer this worker's, CancelRequested when asked to stop."""
    result = session.execute(
        update(model).where(model.id == run_id, model.worker == (worker or worker_name()))
        .values(heartbeat_at=utcnow()).returning(model.cancel_requested)
        .execution_options(synchronize_session=False))
    row = result.first()
    if row is None:
        raise LeaseLost(run_id)
    if row[0]:
        raise CancelRequested(run_id)


def lapsed(model, *, running, lease_seconds: int = DEFAULT_LEASE_SECONDS, now: datetime | None = None):
    """The condition of running runs whose worker has not beaten within the lease."""
    limit = (now or utcnow()) - timedelta(seconds=lease_seconds)
    return (model.status == running) & ((model.heartbeat_at.is_(None)) | (model.heartbeat_at < limit))


def end_lapsed(session: DbSession, model, run_id: int, *, running, lease_seconds: int = DEFAULT_LEASE_SECONDS,
               **values) -> bool:
    """Set `values` (an end: cancelled, interrupted) on the run if it is running and its worker's
    lease has lapsed — a worker that is gone never sees a request to stop. False when the run is
    not dead (it ended, or its worker is alive)."""
    result = session.execute(
        update(model).where(model.id == run_id, lapsed(model, running=running, lease_seconds=lease_seconds))
        .values(worker=None, **values).execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined]
