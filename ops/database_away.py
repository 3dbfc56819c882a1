"""The database briefly away: a page that says so and tries again, never a bare 500.

Any request that fails because the database (or the job queue's storage beside it) cannot be
reached, or its connection broke mid-request — a PostgreSQL restart, a failover, a SQLite file
that cannot be opened or stays locked — is answered 503 with Retry-After:

- a GET: a page in the desk's navigation bar that reloads itself after a few seconds;
- any other method: the same page saying that nothing was saved and that the browser's Back
  button returns to the form with everything typed still in it (no automatic retry: a form is
  never sent twice behind the user's back);
- the JSON API and the pages' JSON endpoints: the API's error shape with code 503.

The page is built without the database: no menu (each entry asks who is signed in), no flashed
messages (they stay for the page that works again). Connections broken by a restart do not come
back from the pool: the engine runs with pool_pre_ping (config.py), which replaces a stale
connection on checkout, and SQLAlchemy drops the whole pool when it sees a disconnect.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from typing import Any

import peewee
import psycopg
from flask import Flask, current_app, g, render_template_string, request
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from werkzeug.exceptions import InternalServerError

from extensions import db
from i18n import _, _l
from services.transactions import COMMITTED

log = logging.getLogger(__name__)
RETRY_SECONDS = 5
# The database's own errors for "cannot reach / lost the connection / cannot open or lock it":
# SQLAlchemy's wrappers, and the drivers' own when a library (the queue's peewee, SqliteHuey)
# raises them unwrapped.
DATABASE_AWAY: tuple[type[Exception], ...] = (
    sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
    psycopg.OperationalError, psycopg.InterfaceError,
    peewee.OperationalError, peewee.InterfaceError,
    sqlite3.OperationalError,
)
TITLE = _l("The database is not answering")
FALLBACK_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
{% if retry %}<meta http-equiv="refresh" content="{{ retry }}">{% endif %}
<title>{{ _('%(title)s – Customer Desk', title=title) }}</title></head>
<body><h1>{{ title }}</h1><p>{{ text }}</p></body></html>"""


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    """`exc`, then what it wraps or was raised from or while handling."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = getattr(exc, "original_exception", None) or exc.__cause__ or exc.__context__


def is_database_away(exc: BaseException | None) -> bool:
    """True when `exc`, or an exception it was raised from or while handling, is one of
    DATABASE_AWAY (a wrapper such as a 500's InternalServerError or peewee's re-raise)."""
    return any(isinstance(link, DATABASE_AWAY) for link in _chain(exc))


def connection_lost(exc: BaseException) -> bool:
    """True when the server could not be reached or dropped the connection (a restart, a
    failover): expected now and then, logged as a warning. Anything else that ends in the 503 —
    SQLite locked or unopenable, a missing table, a statement cancelled — is an ERROR with its
    traceback: somebody has to look."""
    for link in _chain(exc):
        if isinstance(link, sa_exc.DisconnectionError) or getattr(link, "connection_invalidated", False):
            return True
        if isinstance(link, psycopg.OperationalError | psycopg.InterfaceError):
            # No SQLSTATE: the client's own "connection failed", "the connection is closed";
            # class 08 connection exceptions; 57P01-03 shutdown and start-up of the server.
            state = link.sqlstate
            return state is None or state.startswith(("08", "57P"))
    return False


def _describe(exc: BaseException) -> str:
    """One line for the log: the driver's error class and its first line (no SQL, no values)."""
    original = getattr(exc, "orig", None) or exc
    first_line = (str(original).strip().splitlines() or [""])[0][:200]
    kind = type(original)
    return f"{kind.__module__}.{kind.__qualname__}: {first_line}"


def _forget_session() -> None:
    """Give the failed transaction back and keep the page from touching the database again:
    Flask-Login's template context would load the signed-in operator a second time."""
    manager = getattr(current_app, "login_manager", None)
    operator = g.get("_login_user")
    state = sa_inspect(operator, raiseerr=False) if operator is not None else None
    if state is not None and state.session is not None:
        if state.expired_attributes:
            g._login_user = manager.anonymous_user() if manager is not None else None
        else:
            # The rollback would expire the signed-in operator, and the answer's first word
            # (its language, i18n.select_locale) would load them again from the lost database:
            # a 500 instead of this page. Detached, they keep what was read.
            state.session.expunge(operator)
    try:
        db.session.rollback()
    except Exception:  # the connection is gone; the pool has dropped it
        log.debug("rollback after a lost connection failed", exc_info=True)
    if manager is not None and "_login_user" not in g:
        g._login_user = manager.anonymous_user()


def _wants_json() -> bool:
    if request.path.startswith("/api/") or request.path.endswith(".json"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def database_away_answer(exc: BaseException):
    """The 503 for a request the database could not serve (see the module)."""
    committed = bool(db.session.info.get(COMMITTED))  # before the session is given back
    _forget_session()
    if connection_lost(exc):
        log.warning("The database did not answer %s %s: %s — answered 503", request.method, request.path,
                    _describe(exc))
    else:
        log.error("The database failed %s %s — answered 503", request.method, request.path, exc_info=exc)
    saved_nothing = request.method not in ("GET", "HEAD", "OPTIONS")
    headers = {"Retry-After": str(RETRY_SECONDS), "Cache-Control": "no-store"}
    if _wants_json():
        message = _("The database is not answering just now. Try again in a few seconds.")
        if saved_nothing and committed:
            message = _("The change was saved, but the database stopped answering before the answer "
                        "was complete. Read the record again instead of repeating the request.")
        elif saved_nothing:
            message = _("The database is not answering just now: nothing was saved. Try again in a few "
                        "seconds.")
        return ({"code": 503, "status": "Service Unavailable", "message": message, "errors": {}},
                503, headers)
    if saved_nothing and committed:
        # The write went through; only what came after it failed. Sending it again would repeat it.
        text = _("Your changes were saved, but Customer Desk lost its database before it could show the "
                 "result. Do not send the form again: open the record in a few moments to see it.")
        return _page(text, None), 503, headers
    if saved_nothing:
        text = _("Nothing was saved: Customer Desk could not reach its database. Go back with your "
                 "browser's Back button — what you typed is still in the form — and send it again in a "
                 "few moments.")
    else:
        text = _("Customer Desk cannot reach its database just now — usually for a moment, while it "
                 "restarts. This page tries again by itself in %(seconds)s seconds.", seconds=RETRY_SECONDS)
    retry = None if saved_nothing else RETRY_SECONDS
    return _page(text, retry), 503, headers


def _page(text: str, retry: int | None) -> str:
    admin = current_app.extensions.get("admin", [None])[0]
    if admin is not None:
        try:
            return admin.index_view.render("ops/database_away.html", title=str(TITLE), text=text, retry=retry,
                                           saved_nothing=retry is None)
        except Exception:  # the plain page below still says what happened
            log.exception("The database-away page could not be rendered")
    return render_template_string(FALLBACK_PAGE, title=str(TITLE), text=text, retry=retry)


def init_database_away(app: Flask) -> None:
    """Answer DATABASE_AWAY errors with the 503 above, wherever in a request they happen."""
    for kind in DATABASE_AWAY:
        app.register_error_handler(kind, database_away_answer)

    _release_session_safely(app)

    # An error raised outside the view (an after_request hook), or wrapped in another exception,
    # reaches Flask's 500 handling: the same answer when the database is behind it.
    @app.errorhandler(InternalServerError)
    def server_error(exc: InternalServerError):
        if is_database_away(exc.original_exception):
            return database_away_answer(exc.original_exception)  # type: ignore[arg-type]
        return exc


def _release_session_safely(app: Flask) -> None:
    """Close the app context's session first when the context ends, before Flask-SQLAlchemy's own
    teardown does (teardown functions run newest first, and its is registered after this one).

    A connection the server dropped after the answer was made — a restart between a page's last
    query and the end of its request — fails the closing ROLLBACK, which Flask-SQLAlchemy's
    teardown would turn into a bare 500 after the page was ready. The answer stands (what was
    committed is committed); the session is closed again, now without the dead connection."""
    teardown = app.do_teardown_appcontext

    def do_teardown_appcontext(*args: Any) -> None:
        try:
            db.session.remove()
        except DATABASE_AWAY as exc:
            log.warning("The database connection was lost as the request ended: %s", _describe(exc))
            db.session.remove()
        teardown(*args)

    app.do_teardown_appcontext = do_teardown_appcontext  # type: ignore[method-assign, assignment]
