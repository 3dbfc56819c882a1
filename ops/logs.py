"""Logs: one configuration for every process (web, `flask worker`, the CLI), a request id on every
line written while a request is served, and one access line per request.

LOG_FORMAT=json writes one JSON object a line (python-json-logger) with `time` (UTC, ISO 8601),
`level`, `logger`, `message` and `request_id`, plus the fields a line carries of its own (the
access line: `method`, `path`, `status`, `duration_ms`, `operator_id`); LOG_FORMAT=text writes
the same as a readable line. Both go to standard error, where gunicorn, systemd or a container
runtime collect them.

What never reaches a log line: query strings (the access line has the path only), form values,
cookies and Authorization headers (nothing here reads them), bound SQL parameters (the engine runs
with hide_parameters). Tracebacks are written for ERROR and above only: a warning says what went
wrong in one line.
"""

from __future__ import annotations

import copy
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from flask_login import AnonymousUserMixin
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy import inspect as orm_inspect

from config import ConfigError

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy's request id may look like (nginx's $request_id, a uuid, a load balancer's trace
# id); anything else (too long, spaces, line breaks) is replaced by an id of ours.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/=@-]{0,127}")
FORMATS = ("json", "text")
access_log = logging.getLogger("access")
# Probes of a load balancer or an orchestrator come every few seconds: their access lines are
# DEBUG while they answer "fine", so they do not bury the requests of people.
QUIET_PATHS = ("/health/live", "/health/ready")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def current_request_id() -> str | None:
    """The id of the request this thread is serving, or None outside a request."""
    if has_request_context():
        return g.get("request_id")
    return None


class _RequestIdRecords:
    """Log record factory: every record made while a request is served carries its id, whichever
    handler (ours, gunicorn's, a test's) writes it. Chained to the factory found before."""

    def __init__(self, previous) -> None:
        self.previous = previous

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
        record.request_id = current_request_id()
        return record


def _install_record_factory() -> None:
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RequestIdRecords):
        logging.setLogRecordFactory(_RequestIdRecords(factory))


def _without_traceback_below_error(record: logging.LogRecord) -> logging.LogRecord:
    """A record below ERROR keeps its message and names its exception in one line."""
    if record.levelno >= logging.ERROR or not (record.exc_info or record.exc_text or record.stack_info):
        return record
    shown = copy.copy(record)
    if record.exc_info and record.exc_info[1] is not None:
        shown.error = type(record.exc_info[1]).__name__
    shown.exc_info = None
    shown.exc_text = None
    shown.stack_info = None
    return shown


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLines(JsonFormatter):
    """One JSON object a line: time, level, logger, message, request_id, then the record's own
    fields; a traceback (ERROR and above) under `traceback`."""

    def __init__(self) -> None:
        super().__init__(rename_fields={"exc_info": "traceback", "stack_info": "stack"},
                         json_ensure_ascii=False)

    def format(self, record: logging.LogRecord) -> str:
        return super().format(_without_traceback_below_error(record))

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        log_data["time"] = _timestamp(record)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        log_data["request_id"] = getattr(record, "request_id", None)
        super().add_fields(log_data, record, message_dict)


class TextLines(logging.Formatter):
    """`2025-01-31T10:00:00.123Z INFO [request id] logger: message`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return _timestamp(record)

    def format(self, record: logging.LogRecord) -> str:
        shown = _without_traceback_below_error(record)
        if getattr(shown, "request_id", None) is None:
            shown = copy.copy(shown)
            shown.request_id = "-"
        text = super().format(shown)
        error = getattr(shown, "error", None) if shown.exc_info is None and record.exc_info else None
        return f"{text} ({error})" if error else text


class StandardErrorHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is written (a test's capture included)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr


def configure_logging(log_format: str, level: str) -> logging.Handler:
    """Set up the process's logging: our handler on the root logger (added once, its format and
    level updated when called again), the request id on every record. Returns the handler."""
    if log_format not in FORMATS:
        raise ConfigError(f"LOG_FORMAT must be one of {', '.join(FORMATS)} (got {log_format!r}).")
    numeric = logging.getLevelName(str(level).upper())
    if not isinstance(numeric, int):
        raise ConfigError(f"LOG_LEVEL must be a level name such as INFO or WARNING (got {level!r}).")
    _install_record_factory()
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, StandardErrorHandler)), None)
    if handler is None:
        handler = StandardErrorHandler()
        root.addHandler(handler)
    handler.setFormatter(JsonLines() if log_format == "json" else TextLines())
    root.setLevel(numeric)
    return handler


def _incoming_request_id(app: Flask) -> str | None:
    """A proxy's request id, used only behind trusted proxies (TRUSTED_PROXIES): anybody else
    could put anything there. None when absent or not sane."""
    if not app.config.get("TRUSTED_PROXIES"):
        return None
    value = request.headers.get(REQUEST_ID_HEADER, "")
    return value if SANE_REQUEST_ID.fullmatch(value) else None


def _printable(text: str) -> str:
    """Control characters escaped: a path with an encoded line break ("%0A") cannot forge a line."""
    return CONTROL_CHARACTERS.sub(lambda match: repr(match.group())[1:-1], text)


# A signed link from an e-mail carries its token in the path (services.mail_links): whoever reads
# the logs must not be able to use it.
SIGNED_LINK = re.compile(r"^(/portal/link/[^/]*/).+$")


def _without_tokens(path: str) -> str:
    return SIGNED_LINK.sub(r"\1…", path)


def _operator_id() -> int | None:
    """The signed-in operator's id (panel session or API token) if this request loaded one — read
    from the identity key, so the access line never queries the database, nor loads a user the
    request did not need."""
    # Flask-Login keeps the session's user in g._login_user; the API's token check in g.api_actor.
    for user in (g.get("_login_user"), g.get("api_actor")):
        if user is None or isinstance(user, AnonymousUserMixin):
            continue
        state = orm_inspect(user, raiseerr=False)
        identity = state.identity if state is not None else None
        if identity:
            return identity[0]
    return None


def init_request_logs(app: Flask) -> None:
    """A request id for every request (response header X-Request-ID) and one access line each."""

    @app.before_request
    def start_request() -> None:
        g.request_started = time.perf_counter()
        g.request_id = _incoming_request_id(app) or str(uuid.uuid4())

    @app.after_request
    def end_request(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        started = g.get("request_started")
        duration = round((time.perf_counter() - started) * 1000, 1) if started else None
        status = response.status_code
        level = logging.WARNING if status >= 500 else logging.INFO
        if request.path in QUIET_PATHS and status < 400:
            level = logging.DEBUG
        operator_id = _operator_id()
        method, path = _printable(request.method), _printable(_without_tokens(request.path))
        access_log.log(
            level, "%s %s %s %s ms%s", method, path, status, duration,
            f" operator {operator_id}" if operator_id is not None else "",
            extra={"method": method, "path": path, "status": status, "duration_ms": duration,
                   "operator_id": operator_id},
        )
        return response
