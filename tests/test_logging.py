"""Logs (issue 15, item 8): what a served desk writes to standard error, read back line by line.

The app is served over real HTTP (tests/served_app.py) with LOG_FORMAT=json, and real requests
go through it: a sign-in with a password, a list with a query string, the JSON API with a token,
a page that fails with a 500, a warning logged with an exception. Every line must be one JSON
object with time, level, logger, message and request_id; each request has one access line whose
request id is the one on its response; and no password, token, cookie, CSRF token or query
value appears anywhere. LOG_FORMAT=text stays a readable line with the same request id.
"""

from __future__ import annotations

import json
import logging
import re
import uuid

import pytest

from config import ConfigError
from extensions import db
from models.enums import OperatorRole
from ops.logs import StandardErrorHandler, configure_logging
from services.api_tokens import create_token
from services.operators import create_operator
from services.reference_data import ensure_reference_data
from services.transactions import unit_of_work
from tests.conftest import PASSWORD, empty_all_tables, make_app
from tests.served_app import WebClient, served

EMAIL = "log.reader@example.com"
QUERY_SECRET = "query-value-kept-out-of-logs"
FIELDS = {"time", "level", "logger", "message", "request_id"}
ACCESS_FIELDS = {"method", "path", "status", "duration_ms", "operator_id"}


@pytest.fixture
def keep_logging():
    """What the process's logging was before a test that reconfigures it, put back afterwards."""
    root = logging.getLogger()
    handler = next(h for h in root.handlers if isinstance(h, StandardErrorHandler))
    formatter, level = handler.formatter, root.level
    yield
    handler.setFormatter(formatter)
    root.setLevel(level)


def add_failing_pages(app) -> None:
    @app.route("/test-only/fails")
    def fails():
        raise RuntimeError("the monthly report could not be built")

    @app.route("/test-only/warns")
    def warns():
        try:
            int("not a number")
        except ValueError:
            logging.getLogger("tests.logging").warning("A value was ignored", exc_info=True)
        return "ok"


@pytest.fixture
def json_desk(sqlite_url, keep_logging):
    """A desk logging JSON behind one trusted proxy, with an operator and an API token."""
    app = make_app(sqlite_url, LOG_FORMAT="json", LOG_LEVEL="INFO", TRUSTED_PROXIES=1,
                   PROPAGATE_EXCEPTIONS=False)  # a 500 is handled and logged as in production
    add_failing_pages(app)
    with app.app_context():
        empty_all_tables()
        with unit_of_work(db.session):
            ensure_reference_data(db.session)
            operator = create_operator(db.session, email=EMAIL, password=PASSWORD, first_name="Lena",
                                       last_name="Logreader", role=OperatorRole.MAINTAINER)
            _row, token = create_token(db.session, operator, "log test")
        operator_id = operator.id
        db.session.remove()
    return app, operator_id, token


def json_lines(err: str) -> list[dict]:
    """Every line written to standard error, each parsed as one JSON object."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not one JSON object a line: {line!r}")
    return parsed


def test_json_logs_of_real_requests_carry_the_request_id_and_no_secret(json_desk, capsys):
    app, operator_id, token = json_desk
    with served(app) as server:
        browser = WebClient(server.url)
        browser.login(EMAIL)
        listed = browser.get(f"/admin/customers/?search={QUERY_SECRET}")
        failed = browser.get("/test-only/fails")
        warned = browser.get("/test-only/warns")
        script = WebClient(server.url, api_token=token)
        api = script.api("GET", "/customers")
        proxied = browser.get("/login", headers={"X-Request-ID": "edge-7f3a.42"})
        odd = browser.get("/login", headers={"X-Request-ID": "x" * 300})
        cookies = [c.value for c in browser.session.cookies]
        csrf = browser.csrf()
    statuses = [answer.status_code for answer in (listed, failed, warned, api)]
    assert statuses == [200, 500, 200, 200]
    err = capsys.readouterr().err
    lines = json_lines(err)

    for line in lines:
        assert FIELDS <= line.keys(), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]), line
    access = [line for line in lines if line["logger"] == "access"]
    for line in access:
        assert ACCESS_FIELDS <= line.keys(), line
        assert "?" not in line["path"] and "?" not in line["message"], line

    def lines_of(answer) -> list[dict]:
        request_id = answer.headers["X-Request-ID"]
        return [line for line in lines if line["request_id"] == request_id]

    # The list: one access line, path without its query string, the operator who asked.
    [line] = [x for x in lines_of(listed) if x["logger"] == "access"]
    assert (line["method"], line["path"], line["status"], line["operator_id"]) == \
        ("GET", "/admin/customers/", 200, operator_id)
    assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0

    # The sign-in: its access line knows who signed in; the password is nowhere.
    [sign_in] = [x for x in access if x["method"] == "POST" and x["path"] == "/login"]
    assert (sign_in["status"], sign_in["operator_id"]) == (302, operator_id)

    # The 500: its traceback on an ERROR line with the request's id, and an access line.
    failing = lines_of(failed)
    [error] = [x for x in failing if x["level"] == "ERROR"]
    assert "RuntimeError: the monthly report could not be built" in error["traceback"]
    assert [x["status"] for x in failing if x["logger"] == "access"] == [500]

    # A warning with an exception names it, without a traceback.
    [warning] = [x for x in lines_of(warned) if x["logger"] == "tests.logging"]
    assert warning["level"] == "WARNING" and warning["error"] == "ValueError"
    assert "traceback" not in warning and "Traceback" not in json.dumps(warning)
    assert all("traceback" not in x for x in lines if x["level"] not in ("ERROR", "CRITICAL"))

    # The API: the token's operator, the token itself never written.
    [api_line] = [x for x in lines_of(api) if x["logger"] == "access"]
    assert (api_line["path"], api_line["status"], api_line["operator_id"]) == \
        ("/api/v1/customers", 200, operator_id)

    # Behind the trusted proxy its sane request id is kept; an odd one is replaced by ours.
    assert proxied.headers["X-Request-ID"] == "edge-7f3a.42"
    assert lines_of(proxied)
    assert uuid.UUID(odd.headers["X-Request-ID"]).version == 4

    # Every request had an id of its own.
    ids = [answer.headers["X-Request-ID"] for answer in (listed, failed, warned, api, odd)]
    assert len(set(ids)) == len(ids)

    for secret in (PASSWORD, token, QUERY_SECRET, csrf, *cookies):
        assert secret and secret not in err, "a secret reached the log"
    assert "Authorization" not in err and "Cookie" not in err


def test_text_logs_are_readable_lines_and_ignore_a_request_id_from_anybody(sqlite_url, keep_logging, capsys):
    app = make_app(sqlite_url, LOG_FORMAT="text", LOG_LEVEL="INFO")  # no trusted proxy
    answer = app.test_client().get("/login?next=/admin/customers/", headers={"X-Request-ID": "forged-id"})
    assert answer.status_code == 200
    request_id = answer.headers["X-Request-ID"]
    assert request_id != "forged-id" and uuid.UUID(request_id).version == 4
    err = capsys.readouterr().err
    [line] = [x for x in err.splitlines() if " access: " in x]
    readable = r"\d{4}-\d\d-\d\dT[\d:.]+Z INFO \[{}\] access: GET /login 200 [\d.]+ ms"
    assert re.fullmatch(readable.replace("{}", re.escape(request_id)), line), line
    assert "forged-id" not in err and "next=" not in err

    # A line break in a path is written escaped: no second line can be forged.
    app.test_client().get("/login%0A2099-01-01T00:00:00.000Z INFO [-] access: GET /forged 200 1 ms")
    err = capsys.readouterr().err
    [line] = [x for x in err.splitlines() if "/forged" in x]
    assert "access: GET /login\\n2099-01-01" in line, line


def test_a_signed_links_token_never_reaches_the_access_log(sqlite_url, keep_logging, capsys):
    # Whoever reads the logs must not be able to use a link from a customer's e-mail.
    app = make_app(sqlite_url, LOG_FORMAT="text", LOG_LEVEL="INFO")
    token = "eyJyIjoxLCJlIjoiYUBiLmMiLCJpIjoieCJ9.aBcDeF.secret-signature-part"
    app.test_client().get(f"/portal/link/comment/{token}")
    err = capsys.readouterr().err
    [line] = [x for x in err.splitlines() if " access: " in x]
    assert "GET /portal/link/comment/… " in line, line
    assert token not in err and "secret-signature-part" not in err


def test_logging_is_configured_once_per_process(sqlite_url, keep_logging):
    make_app(sqlite_url, LOG_FORMAT="json")
    make_app(sqlite_url, LOG_FORMAT="text")
    ours = [h for h in logging.getLogger().handlers if isinstance(h, StandardErrorHandler)]
    assert len(ours) == 1
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        configure_logging("xml", "INFO")
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        configure_logging("json", "LOUD")
