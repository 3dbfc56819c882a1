"""Error pages in the desk's own look: 400, 403, 404, 405, 413, 429 and 500.

Who asked decides the answer:
- the JSON API (/api/…), a path ending in .json, a JSON body or a client that prefers JSON: the
  API's error shape (api.errors), as every API answer has;
- the customer portal (/portal/…): a page in the portal's look (templates/portal/base.html),
  nothing of the panel;
- everything else: a page of the panel, in its navigation bar, with a way back and the
  request id (X-Request-ID, ops.logs) to quote to whoever reads the logs.

A 500 is built without the database: its connection may be what failed. The session is given
back first, nobody is loaded (no menu, no name in the bar, no flashed messages — they stay for
the next page), and the language is the operator's only when it was already known. When the
database is behind the 500, ops.database_away answers instead (its 503 page). Should even the
500 page fail, a few lines of plain HTML say what happened.

The domain's refusals raised outside a write (admin_views.refusals) keep their own pages; the
portal's own 404 and expired-form pages (portal.views) answer what the portal's routes raise.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, current_app, g, render_template, render_template_string, request
from flask_babel import force_locale, get_locale
from werkzeug.exceptions import HTTPException, InternalServerError

from i18n import LANGUAGES, _l

log = logging.getLogger(__name__)

CODES = (400, 403, 404, 405, 413, 429, 500)

# What each answer says: a title and a sentence (the 413's limits are those of the services:
# photos and import files, services.photos / services.bulk_import_files).
TEXTS = {
    400: (_l("The request could not be understood"),
          _l("Something in what the browser sent was missing or malformed. Go back, reload the page "
             "and try again.")),
    403: (_l("Not allowed"), _l("You do not have the right to open this page or to do this.")),
    404: (_l("Page not found"),
          _l("There is no such page, or it is not one you may see. The address may be mistyped, or "
             "the record may have been deleted.")),
    405: (_l("Not possible here"),
          _l("This page cannot be used this way. Go back and use the page's own buttons.")),
    413: (_l("The upload is too large"),
          _l("The upload is too large: photos and import files may have at most 5 MB.")),
    429: (_l("Too many requests"),
          _l("Too many requests came in a short time. Wait a minute and try again.")),
    500: (_l("Something went wrong"),
          _l("Customer Desk could not finish this request. The error was recorded; if it happens "
             "again, tell your administrator the request id below.")),
}
RATE_LIMIT_HEADERS = ("retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
CSRF_TEXT = _l("The form has expired or did not come from this page. Go back, reload the page and send "
               "it again.")
FALLBACK_PAGE = """<!DOCTYPE html><html lang="{{ lang }}"><head><meta charset="utf-8">
<title>{{ title }} – Customer Desk</title></head><body><h1>{{ title }}</h1><p>{{ text }}</p>
{% if request_id %}<p>Request id: <code>{{ request_id }}</code></p>{% endif %}
<p><a href="/admin/">Customer Desk</a></p></body></html>"""


def wants_json() -> bool:
    """The API, JSON endpoints and clients that ask for JSON get the API's error shape."""
    if request.path.startswith("/api/") or request.path.endswith(".json") or request.is_json:
        return True
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def _in_portal() -> bool:
    return request.path == "/portal" or request.path.startswith("/portal/")


def _request_id() -> str | None:
    return g.get("request_id")


def _back_url() -> str | None:
    """The page the reader came from, when it is one of ours and not this one."""
    referrer = request.referrer or ""
    parts = urlsplit(referrer)
    if not referrer or parts.netloc != request.host or parts.scheme not in ("http", "https"):
        return None
    here = urlsplit(request.url)
    if (parts.path, parts.query) == (here.path, here.query):
        return None
    return urlunsplit(("", "", parts.path or "/", parts.query, ""))


def _headers(exc: HTTPException) -> list[tuple[str, str]]:
    """The exception's own headers (a 405's Allow, a limit's Retry-After), not its content type."""
    own = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
    response = getattr(exc, "response", None)
    if response is not None:
        own += [(k, v) for k, v in response.headers.items() if k.lower() in RATE_LIMIT_HEADERS]
    return own


def _texts(exc: HTTPException) -> tuple[str, str]:
    code = exc.code or 500
    title, text = TEXTS.get(code, TEXTS[500])
    if code == 400 and type(exc).__name__ == "CSRFError":
        text = CSRF_TEXT
    elif code == 403 and exc.description and exc.description != type(exc).description:
        text = exc.description  # a refusal's own sentence (admin_views.refusals.show_refusal)
    return str(title), str(text)


def json_answer(exc: HTTPException):
    """The API's error shape (api.errors) for `exc`."""
    from api.errors import json_error

    body, code, headers = json_error(exc)
    if code == 500:
        body["message"] = str(TEXTS[500][1])
        body["request_id"] = _request_id()
    return body, code, [*(headers or {}).items(), *_headers(exc)]


def error_page(exc: HTTPException):
    """The answer to an HTTP error of the panel or the portal (see the module)."""
    code = exc.code or 500
    if wants_json():
        return json_answer(exc)
    title, text = _texts(exc)
    context = {"code": code, "title": title, "text": text, "request_id": _request_id(),
               "back_url": _back_url()}
    try:
        if _in_portal():
            page = render_template("errors/portal.html", **context)
        else:
            page = _panel_page("errors/panel.html", context)
    except Exception:  # an error page must never be a second error
        log.exception("The %s page could not be rendered", code)
        page = render_template_string(FALLBACK_PAGE, lang="en", **context)
    return page, code, _headers(exc)


def _panel_page(template: str, context: dict) -> str:
    admin = current_app.extensions.get("admin", [None])[0]
    if admin is None:
        return render_template_string(FALLBACK_PAGE, lang=str(get_locale() or "en"), **context)
    return admin.index_view.render(template, **context)


def _language_without_database() -> str:
    """The reader's language for a 500: the one this request already chose (the operator's, when
    they were loaded before the error), otherwise the browser's — never a query."""
    chosen = getattr(g.get("_flask_babel"), "babel_locale", None)
    if chosen is not None and chosen.language in LANGUAGES:
        return chosen.language
    return request.accept_languages.best_match(list(LANGUAGES)) or "en"


def _give_back_the_session() -> None:
    """End the failed transaction and keep the page from loading anybody (see the module)."""
    from extensions import db

    try:
        db.session.rollback()
    except Exception:  # the connection is gone
        log.debug("rollback before the 500 page failed", exc_info=True)
    manager = getattr(current_app, "login_manager", None)
    if manager is not None and "_login_user" not in g:
        g._login_user = manager.anonymous_user()


def server_error(exc: InternalServerError):
    """A 500: the database-away answer when the database is behind it, otherwise our page."""
    from ops.database_away import database_away_answer, is_database_away

    original = getattr(exc, "original_exception", None)
    if original is not None and is_database_away(original):
        return database_away_answer(original)
    language = _language_without_database()
    _give_back_the_session()
    with force_locale(language):
        if wants_json():
            return json_answer(exc)
        title, text = _texts(exc)
        context = {"code": 500, "title": title, "text": text, "request_id": _request_id(), "lang": language,
                   "back_url": _back_url()}
        try:
            if _in_portal():
                # Not render_template: the portal's context processor would look up the account.
                page = current_app.jinja_env.get_template("errors/portal.html").render(
                    request=request, get_flashed_messages=lambda **_kw: [], **context)
            else:
                page = _panel_page("errors/server_error.html", context)
        except Exception:
            log.exception("The 500 page could not be rendered")
            page = render_template_string(FALLBACK_PAGE, **context)
    return page, 500, {"Cache-Control": "no-store"}


def init_error_pages(app: Flask) -> None:
    """Register the pages (after the API and ops: these handlers answer for every blueprint
    and hand the API's and the database's cases to them)."""
    for code in CODES:
        if code != 500:
            app.register_error_handler(code, error_page)
    app.register_error_handler(InternalServerError, server_error)
