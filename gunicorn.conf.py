"""gunicorn settings for Customer Desk: `gunicorn -c gunicorn.conf.py "app:create_app()"`.

Every setting comes from the environment, with defaults for one machine behind a reverse proxy
on the same host (docs/deploy.md):

  GUNICORN_BIND           127.0.0.1:8000  where to listen (several: separate with commas)
  WEB_CONCURRENCY         2 × cores + 1, at most 8 — worker processes
  GUNICORN_THREADS        4       threads per worker (gthread); requests served at once = workers × threads
  GUNICORN_TIMEOUT        60      seconds a request may take before its worker is killed (long
                                  work — imports, previews, directory syncs — runs in `flask worker`)
  GUNICORN_GRACEFUL_TIMEOUT 30    seconds running requests get to finish on a reload or stop
  GUNICORN_KEEPALIVE      5       seconds a proxy's idle connection is kept
  GUNICORN_MAX_REQUESTS   0       restart a worker after this many requests (0: never), ± 10 % jitter
  FORWARDED_ALLOW_IPS     127.0.0.1,::1  proxies whose X-Forwarded-Proto gunicorn believes (https);
                                  the client address is the app's business: TRUSTED_PROXIES
  LOG_FORMAT, LOG_LEVEL   as the app's (ops/logs.py): gunicorn's own lines in the same shape
  GUNICORN_ACCESS_LOG     empty   "1": gunicorn's access log too (the app already writes one
                                  access line per request, with its request id)
  GUNICORN_CONTROL_SOCKET empty   a path: gunicorn's control socket for `gunicornc` (off by default)

The application is not preloaded: each worker imports the code itself, so a graceful reload
(`kill -HUP` of the master) starts workers on the code now on disk while the old ones finish
their requests. For the same reason this file imports nothing of the project. Background jobs
do not live here: they run in `flask --app app worker` processes, which a web reload never touches.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
from datetime import UTC, datetime

from gunicorn import glogging


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = [part.strip() for part in os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",") if part.strip()]
workers = _int("WEB_CONCURRENCY", min(2 * (os.cpu_count() or 1) + 1, 8))
threads = _int("GUNICORN_THREADS", 4)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10
preload_app = False
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
proc_name = "customer-desk"
# Heartbeat files in memory, not on a disk that may stall (gunicorn's advice for containers).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# gunicorn's control socket (`gunicornc`) defaults to one path per user: a second instance on the
# host (another port, a benchmark) would take it over. Off unless GUNICORN_CONTROL_SOCKET names one.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True
loglevel = os.environ.get("LOG_LEVEL", "INFO").lower()
errorlog = "-"
accesslog = "-" if os.environ.get("GUNICORN_ACCESS_LOG") == "1" else None


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _JsonLine(logging.Formatter):
    """The app's JSON line (ops/logs.py JsonLines) for the master's lines, which come before and
    outside any app: time, level, logger, message, request_id (none)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": _timestamp(record), "level": record.levelname, "logger": record.name,
                "message": record.getMessage(), "request_id": None}
        if record.exc_info and record.levelno >= logging.ERROR:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class _TextLine(logging.Formatter):
    """The app's text line (ops/logs.py TextLines)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s [-] %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return _timestamp(record)


_SIGNED_LINK = re.compile(r"(/portal/link/[^/\s\"]*/)[^\s\"?]+")


class AppLogging(glogging.Logger):
    """gunicorn's own lines (start, reload, worker boot, exit and timeout) in the app's format:
    JSON when LOG_FORMAT=json. In a worker, once the app has set up its logging, they go through
    the app's handler instead (see post_worker_init)."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        formatter = _JsonLine() if os.environ.get("LOG_FORMAT", "text") == "json" else _TextLine()
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(formatter)

    def atoms(self, resp, req, environ, request_time):
        # A signed link's token (in the request line and the Referer of its page's stylesheet)
        # acts for a customer: the optional access log never carries it (ops/logs.py does the same).
        found = super().atoms(resp, req, environ, request_time)
        return {key: _SIGNED_LINK.sub(r"\1…", value) if isinstance(value, str) else value
                for key, value in found.items()}


logger_class = AppLogging


def post_worker_init(worker) -> None:
    """The app is loaded in this worker: when it configured logging (a handler on the root
    logger, ops/logs.py), gunicorn's lines here go through it — same format, same stream."""
    # What the worker loaded stays for its life: frozen out of the cyclic collector's sight, a
    # full collection no longer walks it during requests (bench/measure.py does the same).
    gc.freeze()
    if not logging.getLogger().handlers:
        return
    for log in (logging.getLogger("gunicorn.error"), logging.getLogger("gunicorn.access")):
        for handler in list(log.handlers):
            if getattr(handler, "_gunicorn", False):
                log.removeHandler(handler)
        log.propagate = True
