"""Fixtures: the app on SQLite and on a real PostgreSQL cluster, clients, small factories.

Every integration test that takes `app` runs twice, once per database. The schema is built by
the migrations (not create_all) once per database per session; each test starts from empty
tables plus the reference rows. In CI (CI=true) a database that cannot start fails the run;
elsewhere its tests are skipped with the reason printed.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from contextlib import contextmanager

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from app import create_app
from extensions import db
from services.reference_data import ensure_reference_data
from services.transactions import unit_of_work
from testing.postgres import PostgresCluster, PostgresUnavailable

pytest_plugins = ["tests.mail_fixtures", "tests.ldap_fixtures"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ENCRYPTION_KEY = Fernet.generate_key().decode()
PASSWORD = "correct horse battery"


def unavailable(reason: str):
    """Fail in CI, skip loudly elsewhere: no tier is ever skipped silently."""
    if IN_CI:
        pytest.fail(f"CI=true and a required service is unavailable: {reason}", pytrace=False)
    warnings.warn(f"SKIPPING a test tier: {reason}", pytest.PytestWarning, stacklevel=2)
    pytest.skip(reason)


def started(start, errors, label: str):
    """What `start()` returns, or — when it raises one of `errors` — a failed run in CI and a
    loud skip elsewhere (`unavailable`), said outside the except block for a clean report."""
    try:
        return start()
    except errors as exc:
        reason = str(exc)
    unavailable(f"{label}: {reason}")


@pytest.fixture(scope="session")
def postgres_cluster():
    cluster = started(lambda: PostgresCluster().start(), PostgresUnavailable, "PostgreSQL")
    yield cluster
    cluster.stop()


def make_app(url: str, **extra):
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "PHONE_DEFAULT_REGION": "SK",
        "RATELIMIT_ENABLED": False,
        "PHOTO_DIR": tempfile.mkdtemp(prefix="cd-photos-"),
        # Not the instance folder: test workers running side by side must not share these.
        "BULK_IMPORT_DIR": tempfile.mkdtemp(prefix="cd-import-"),
        # Jobs run at once in the thread that enqueues them; tests of real workers turn this off.
        "JOB_QUEUE_IMMEDIATE": True,
    }
    config.update(extra)
    return create_app(config)


def migrate_to_head(url: str) -> None:
    from flask_migrate import upgrade

    app = make_app(url)
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    migrate_to_head(url)
    return url


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster):
    url = postgres_cluster.create_database("customer_desk_test")
    migrate_to_head(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request):
    return request.getfixturevalue(f"{request.param}_url")


def empty_all_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        for name in tables:
            db.session.execute(text(f"DELETE FROM {name}"))
    db.session.commit()


def scratch_database_url(backend: str, tmp_path, request, prefix: str) -> str:
    """An empty database of the test's own ("sqlite" or "postgres"), for a test that migrates it
    step by step (an upgrade from an old revision with rows the old code wrote)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return request.getfixturevalue("postgres_cluster").create_database(f"{prefix}_{tmp_path.name[-20:]}")


_shared_apps: dict[str, object] = {}


def shared_app(url: str):
    """One app per database for the whole session: building one (Flask-Admin's views, the
    API's OpenAPI document) costs far more than a test's own work."""
    if url not in _shared_apps:
        _shared_apps[url] = make_app(url)
    return _shared_apps[url]


@contextmanager
def fresh_app(url: str):
    """The app on `url`, inside its app context, with empty tables plus the reference rows.
    What a test changes of the app's configuration or extensions is put back afterwards."""
    app = shared_app(url)
    config, extensions = dict(app.config), dict(app.extensions)
    try:
        with app.app_context():
            empty_all_tables()
            with unit_of_work(db.session):
                ensure_reference_data(db.session)
            yield app
            db.session.remove()
    finally:
        app.config.clear()
        app.config.update(config)
        app.extensions.clear()
        app.extensions.update(extensions)


@pytest.fixture
def app(database_url):
    with fresh_app(database_url) as app:
        yield app


@pytest.fixture(autouse=True)
def mail_servers_forgotten():
    """Each test starts without the sender's memory of servers that did not answer (tests reuse
    ports: a silent server of one test is not another's)."""
    from services import mail_send

    mail_send._SILENT.clear()
    yield


@pytest.fixture
def session(app):
    return db.session


CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


VERSION_SEEN = re.compile(r'<input[^>]*name="version_seen"[^>]*>')


def version_on(html: str) -> str:
    """The version the first form of a page that carries one was rendered with (its hidden
    version_seen): what a browser sends back."""
    match = VERSION_SEEN.search(html)
    assert match, "page has no version_seen"
    value = re.search(r'value="(\d*)"', match.group(0))
    assert value, match.group(0)
    return value.group(1)


class Browserless:
    """A test client that signs in and posts forms with their CSRF token, like a browser.

    Each request runs in an application context of its own, as in production: the test's
    context (and its `g`, where Flask-Login caches the signed-in user, and its database
    session) is never shared with the requests, so two clients never see each other's user.
    """

    def __init__(self, client):
        self.client = client

    def open(self, url, **kw):
        with self.client.application.app_context():
            return self.client.open(url, **kw)

    def get(self, url, **kw):
        return self.open(url, method="GET", **kw)

    def post(self, url, **kw):
        return self.open(url, method="POST", **kw)

    def login(self, email: str, password: str = PASSWORD):
        token = csrf_from(self.get("/login").get_data(as_text=True))
        return self.post("/login", data={"email": email, "password": password, "csrf_token": token})

    def submit(self, form_url: str, data: dict, post_url: str | None = None, **kw):
        """GET the form page, take its token, POST `data` (to `post_url` or the same URL)."""
        page = self.get(form_url)
        payload = {"csrf_token": csrf_from(page.get_data(as_text=True)), **data}
        return self.post(post_url or form_url, data=payload, **kw)


@pytest.fixture
def make_operator(session):
    from models.enums import OperatorRole
    from services.operators import create_operator

    def make(email="op@example.com", role=OperatorRole.OPERATOR, **kw):
        with unit_of_work(session):
            return create_operator(session, email=email, password=PASSWORD,
                                   first_name=kw.get("first_name", "Olga"),
                                   last_name=kw.get("last_name", email.split("@")[0].title()),
                                   role=role)

    return make


@pytest.fixture
def maintainer(make_operator):
    from models.enums import OperatorRole

    return make_operator("boss@example.com", OperatorRole.MAINTAINER, first_name="Mia",
                         last_name="Maintainer")


@pytest.fixture
def operator(make_operator):
    return make_operator("olga@example.com", first_name="Olga", last_name="Operator")


@pytest.fixture
def client(app):
    return Browserless(app.test_client())


@pytest.fixture
def maintainer_client(app, maintainer):
    browser = Browserless(app.test_client())
    assert browser.login(maintainer.email).status_code == 302
    return browser


@pytest.fixture
def operator_client(app, operator):
    browser = Browserless(app.test_client())
    assert browser.login(operator.email).status_code == 302
    return browser


@pytest.fixture
def new_customer(session):
    """Create a customer through the domain service, as every path does (a company with a main
    contact unless the test gives its own contacts; namesakes allowed unless the test says)."""
    from models.enums import CustomerKind
    from services.customers import SaveOptions, create_customer

    def make(actor=None, **fields):
        if fields.get("kind") in ("company", CustomerKind.COMPANY) and "contacts" not in fields:
            # A company comes with a contact to receive e-mail (services.customers).
            slug = re.sub(r"[^a-z0-9]+", "", str(fields.get("company_name") or "x").lower())[:60] or "x"
            fields["contacts"] = [{"first_name": "Main", "last_name": "Contact",
                                   "email": f"main.contact.{slug}@example.com", "is_main": True}]
        fields.setdefault("confirm_duplicate", True)
        with unit_of_work(session):
            return create_customer(session, actor, SaveOptions("SK"), **fields)

    return make


@pytest.fixture
def company(new_customer, operator):
    """Acme, assigned to `operator`: a main contact (Mia), a contact (Cyril) and another (Dana) —
    the company of the discussion and mail tests (a module may define its own `company`)."""
    from models.enums import CustomerKind

    return new_customer(kind=CustomerKind.COMPANY, company_name="Acme", operators=[operator], contacts=[
        {"first_name": "Mia", "last_name": "Main", "email": "mia@acme.sk", "is_main": True},
        {"first_name": "Cyril", "last_name": "Contact", "email": "cyril@acme.sk"},
        {"first_name": "Dana", "last_name": "Other", "email": "dana@acme.sk"}])


def contact(customer, first_name: str):
    """The contact of `customer` with this first name."""
    return next(c for c in customer.contacts if c.first_name == first_name)


def written(session, call):
    """Run a domain command as a door does: in its own unit of work (committed on success)."""
    with unit_of_work(session):
        return call()


def refusal(session, call, kind=None) -> dict[str, list[str]]:
    """The messages per field of a command's refusal; its unit of work rolled everything back."""
    from services.errors import ValidationFailed

    with pytest.raises(kind or ValidationFailed) as caught:
        with unit_of_work(session):
            call()
    return getattr(caught.value, "errors", {})
