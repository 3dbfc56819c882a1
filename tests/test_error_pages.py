"""Error pages: 400, 403, 404, 405, 413, 429 and 500 in the panel's look (its bar, a way back, the
request id), in the portal's look under /portal, and the API's JSON shape under /api; a 500 with
PROPAGATE_EXCEPTIONS off renders even when the database cannot be asked anything, and a database
that is away still gets its own 503 page."""

from __future__ import annotations

import io
import re

import pytest
from flask import abort, g, has_app_context
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from extensions import db
from tests.conftest import PASSWORD, Browserless, csrf_from, make_app

CODES = (400, 403, 404, 405, 413, 429, 500)
TITLES = {400: "The request could not be understood", 403: "Not allowed", 404: "Page not found",
          405: "Not possible here", 413: "The upload is too large", 429: "Too many requests",
          500: "Something went wrong"}
_apps: dict[str, object] = {}


def _erring_app(url: str):
    """The desk with routes that fail on purpose, in the panel, the portal and the API; errors
    are not propagated (as in production)."""
    if url in _apps:
        return _apps[url]
    desk = make_app(url, PROPAGATE_EXCEPTIONS=False)

    def fail(code: int):
        if code == 500:
            raise RuntimeError("a bug in a page")
        if code == 503:
            raise sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        if code == 599:  # the database cannot be asked anything from here on
            g.database_gone = True
            raise RuntimeError("a bug, and the database is gone too")
        abort(code)

    for prefix in ("/admin", "/portal", "/api/v1"):
        desk.add_url_rule(f"{prefix}/test-error/<int:code>", f"fail{prefix.replace('/', '_')}", fail,
                          methods=["GET", "POST"])

    def refuse_queries(*_args, **_kw):
        if has_app_context() and g.get("database_gone"):
            raise RuntimeError("the 500 page asked the database")

    with desk.app_context():
        event.listen(db.engine, "before_cursor_execute", refuse_queries)
    _apps[url] = desk
    return desk


@pytest.fixture
def erring(app, maintainer):
    """A browser signed in to the erring desk as a maintainer (same database as `app`)."""
    browser = Browserless(_erring_app(app.config["SQLALCHEMY_DATABASE_URI"]).test_client())
    assert browser.login(maintainer.email, PASSWORD).status_code == 302
    return browser


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def is_panel_page(html: str) -> bool:
    return 'cd-navbar"' in html and 'aria-label="Main menu"' in html and "portal-bar" not in html


@pytest.mark.parametrize("code", CODES)
def test_each_error_of_the_panel_is_a_page_in_the_panel(erring, code):
    answer = erring.get(f"/admin/test-error/{code}", headers={"Referer": "http://localhost/admin/customers/"})
    html = answer.get_data(as_text=True)
    assert answer.status_code == code and answer.content_type.startswith("text/html")
    assert is_panel_page(html)
    assert TITLES[code] in text_of(answer)
    assert 'href="/admin/customers/"' in html and "Back to the previous page" in html  # a way back
    assert "Customer Desk home" in html
    assert f"Request id: {answer.headers['X-Request-ID']}" in text_of(answer)
    if code != 500:  # a 500 shows nobody's name: the database may be what failed
        assert "My API tokens" in html and "Mia Maintainer" in html


@pytest.mark.parametrize("code", CODES)
def test_each_error_under_the_portal_is_a_page_in_the_portal(erring, code):
    answer = erring.get(f"/portal/test-error/{code}")
    html = answer.get_data(as_text=True)
    assert answer.status_code == code
    assert 'class="portal-bar"' in html and "/static/portal.css" in html
    assert "cd-navbar" not in html and "My API tokens" not in html  # nothing of the panel
    assert TITLES[code] in text_of(answer) and "Back to the portal" in html
    assert f"Request id: {answer.headers['X-Request-ID']}" in text_of(answer)


@pytest.mark.parametrize("code", CODES)
def test_each_error_of_the_api_stays_json(erring, code):
    answer = erring.get(f"/api/v1/test-error/{code}")
    body = answer.get_json()
    assert answer.status_code == code and answer.content_type == "application/json"
    assert set(body) >= {"code", "status", "message", "errors"} and body["code"] == code
    assert "Traceback" not in answer.get_data(as_text=True) and "a bug" not in body["message"]


def test_a_panel_client_that_asks_for_json_gets_json(erring):
    answer = erring.get("/admin/test-error/404", headers={"Accept": "application/json"})
    assert answer.status_code == 404 and answer.get_json()["code"] == 404


def test_unknown_addresses_and_wrong_methods(maintainer_client, client):
    missing = maintainer_client.get("/admin/no-such-page/")
    assert missing.status_code == 404 and is_panel_page(missing.get_data(as_text=True))
    assert "Page not found" in text_of(missing) and "Mia Maintainer" in text_of(missing)
    anonymous = client.get("/admin/no-such-page/")
    assert anonymous.status_code == 404 and "Sign in" in text_of(anonymous)
    portal = client.get("/portal/no-such-page")
    assert portal.status_code == 404 and "portal-bar" in portal.get_data(as_text=True)
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.get_json()["code"] == 404
    wrong = maintainer_client.get("/admin/profile/preferences")  # a form's address, opened
    assert wrong.status_code == 405 and "Not possible here" in text_of(wrong)
    assert "POST" in wrong.headers["Allow"]
    api_wrong = client.open("/api/v1/customers", method="DELETE")
    assert api_wrong.status_code == 405 and api_wrong.get_json()["status"] == "Method Not Allowed"


def test_a_form_sent_without_its_token_says_so(maintainer_client):
    answer = maintainer_client.post("/admin/profile/", data={"current_password": "x"})
    assert answer.status_code == 400
    assert "The form has expired or did not come from this page" in text_of(answer)
    assert is_panel_page(answer.get_data(as_text=True))


def test_a_page_an_operator_may_not_open_is_a_403_page_with_the_menu(app, make_operator):
    make_operator("olga@example.com")
    browser = Browserless(app.test_client())
    browser.login("olga@example.com")
    answer = browser.get("/admin/operators/")
    assert answer.status_code == 403 and is_panel_page(answer.get_data(as_text=True))
    assert "Not allowed" in text_of(answer) and "Customer Desk home" in text_of(answer)


def test_an_upload_far_too_large_is_a_413_page_in_the_panel(app, maintainer_client):
    page = maintainer_client.get("/admin/customers/import/")
    answer = maintainer_client.post("/admin/customers/import/", data={
        "csrf_token": csrf_from(page.get_data(as_text=True)),
        "file": (io.BytesIO(b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)), "big.csv")})
    assert answer.status_code == 413
    assert "at most 5 MB" in text_of(answer) and is_panel_page(answer.get_data(as_text=True))


def test_refusals_of_the_domain_keep_their_own_pages(app, make_operator, new_customer):
    from models.enums import CustomerKind

    make_operator("olga@example.com")
    stranger = new_customer(kind=CustomerKind.PERSON, first_name="Jana", last_name="Cudzia")
    browser = Browserless(app.test_client())
    browser.login("olga@example.com")
    answer = browser.get(f"/admin/customers/edit/?id={stranger.id}")
    assert answer.status_code in (403, 404) and is_panel_page(answer.get_data(as_text=True))


def test_a_500_renders_without_the_database(erring):
    answer = erring.get("/admin/test-error/599")
    assert answer.status_code == 500 and "Something went wrong" in text_of(answer)
    assert is_panel_page(answer.get_data(as_text=True))
    assert "Mia Maintainer" not in text_of(answer)  # nobody loaded: no query
    portal = erring.get("/portal/test-error/599")
    assert portal.status_code == 500 and "portal-bar" in portal.get_data(as_text=True)
    # The next request finds the database again.
    assert erring.get("/admin/").status_code == 200


def test_a_500_caused_by_the_database_is_still_the_database_away_page(erring):
    answer = erring.get("/admin/test-error/503")
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert 'data-testid="database-away"' in answer.get_data(as_text=True)
    api = erring.get("/api/v1/test-error/503")
    assert api.status_code == 503 and api.get_json()["code"] == 503


def test_error_pages_speak_the_browsers_language(client):
    answer = client.get("/admin/no-such-page/", headers={"Accept-Language": "sk"})
    assert answer.status_code == 404 and '<html lang="sk">' in answer.get_data(as_text=True)
    portal = client.get("/portal/no-such-page", headers={"Accept-Language": "cs"})
    assert portal.status_code == 404
