"""The database briefly away (issue 15, item 6): a friendly 503 that retries, never a bare 500.

PostgreSQL: the app is served over real HTTP (tests/served_app.py) on a cluster of this module's
own, with signed-in browsers requesting pages from several threads and a probe asking
/health/ready. The cluster is stopped as a restart stops it (clients cut off): every page is
then a 503 in the desk's navigation bar with Retry-After and an automatic reload, a form sent
says nothing was saved, the API answers JSON, readiness says the database fails. The cluster
starts again: every request made from then on succeeds — the pooled connections the restart
broke are replaced (pool_pre_ping), also after a restart nobody noticed while it happened, and a
connection lost between a page's last query and the end of its request does not undo the page.

SQLite: a database file that cannot be opened, and one locked for good by another process, give
the same page.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests
from sqlalchemy import text

from extensions import db
from models import Customer
from models.enums import CustomerKind, OperatorRole
from services.api_tokens import create_token
from services.customers import SaveOptions, create_customer
from services.operators import create_operator
from services.reference_data import ensure_reference_data
from services.transactions import unit_of_work
from testing.postgres import PostgresCluster, PostgresUnavailable
from tests.conftest import PASSWORD, csrf_from, empty_all_tables, make_app, migrate_to_head, started
from tests.job_fixtures import real_queue_config, wait_for
from tests.served_app import WebClient, page_text, served

MAINTAINER = "away.boss@example.com"
BROWSERS = 4
REFRESH = '<meta http-equiv="refresh" content="5">'
NEW = "/admin/customers/new/"


class RestartableCluster(PostgresCluster):
    """The module's own cluster, stopped and started again in place (the session's cluster is
    shared by every other test and stays up)."""

    halted = False

    def halt(self) -> None:
        # "fast": what a restart does — open transactions are cut off, clients disconnected.
        self._run(self.bindir / "pg_ctl", "-D", self.datadir, "-m", "fast", "-w", "stop")
        self.halted = True

    def resume(self) -> None:
        # The options PostgresCluster.start() started it with.
        options = (f"-p {self.port} -h 127.0.0.1 -k {self.root} -F "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        self._run(self.bindir / "pg_ctl", "-D", self.datadir, "-o", options,
                  "-l", self.root / "server.log", "-w", "-t", "60", "start")
        self.halted = False


@pytest.fixture(scope="module")
def own_cluster():
    own = started(lambda: RestartableCluster().start(), PostgresUnavailable, "PostgreSQL")
    yield own
    own.stop()


@pytest.fixture(scope="module")
def desk_database(own_cluster) -> str:
    url = own_cluster.create_database("desk_away")
    migrate_to_head(url)
    return url


@pytest.fixture
def cluster(own_cluster):
    """The module's cluster, running again after each test, whatever the test did."""
    yield own_cluster
    if own_cluster.halted:
        own_cluster.resume()


def populate(app) -> tuple[int, str]:
    """Empty tables, then a maintainer, a customer (its id) and an API token of the maintainer."""
    with app.app_context():
        empty_all_tables()
        with unit_of_work(db.session):
            ensure_reference_data(db.session)
            boss = create_operator(db.session, email=MAINTAINER, password=PASSWORD, first_name="Mia",
                                   last_name="Away", role=OperatorRole.MAINTAINER)
            customer = create_customer(db.session, boss, SaveOptions("SK"), kind=CustomerKind.PERSON,
                                       first_name="Pavol", last_name="Pokojný", confirm_duplicate=True)
            _row, token = create_token(db.session, boss, "restart test")
        customer_id = customer.id
        db.session.remove()
    return customer_id, token


@dataclass
class Seen:
    phase: str
    path: str
    status: int
    retry_after: str | None
    text: str


def is_away_page(status: int, retry_after: str | None, text: str, *, get: bool) -> bool:
    """The 503 page: Retry-After, the desk's navigation bar, what happened, a reload for a GET only."""
    return (status == 503 and retry_after == "5" and 'class="navbar-brand"' in text
            and "The database is not answering" in text and (REFRESH in text) == get)


def away(seen: Seen) -> bool:
    return is_away_page(seen.status, seen.retry_after, seen.text, get=True)


def assert_no_500(seen: list[Seen], logged: list[str]) -> None:
    bare = [(s.phase, s.path, s.status, page_text(s.text)[:200]) for s in seen
            if s.status >= 500 and s.status != 503 or "Internal Server Error" in s.text]
    assert not bare, (bare, logged)


class Traffic:
    """Signed-in browsers requesting pages in a loop, each answer noted with the phase it was
    asked in, until stopped."""

    def __init__(self, clients: list[WebClient], paths: list[str], probe: WebClient) -> None:
        self.phase = "before"
        self.seen: list[Seen] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._browse, args=(client, paths), daemon=True)
                         for client in clients]
        self._threads.append(threading.Thread(target=self._browse, args=(probe, ["/health/ready"]),
                                              daemon=True))

    def _browse(self, client: WebClient, paths: list[str]) -> None:
        turn = 0
        while not self._stop.is_set():
            path = paths[turn % len(paths)]
            turn += 1
            phase = self.phase
            answer = client.get(path)
            self.seen.append(Seen(phase, path, answer.status_code, answer.headers.get("Retry-After"),
                                  answer.text))
            self._stop.wait(0.02)  # a browser's pace, not a flood on two shared cores

    def count(self, phase: str, path_prefix: str = "/admin") -> int:
        return sum(1 for s in self.seen if s.phase == phase and s.path.startswith(path_prefix))

    def wait(self, phase: str, at_least: int) -> None:
        wait_for(lambda: self.count(phase) >= at_least, timeout=120, what=f"{at_least} pages {phase}")

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


def test_a_postgresql_restart_under_load_shows_the_retry_page_then_every_request_succeeds(
        cluster, desk_database, tmp_path):
    url = desk_database
    app = make_app(url, **real_queue_config(tmp_path, url))  # the queue in the database too
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is True
    customer_id, token = populate(app)
    paths = ["/admin/customers/", f"/admin/customers/overview/?id={customer_id}", "/admin/"]
    with served(app) as server:
        clients = [WebClient(server.url) for _ in range(BROWSERS)]
        for client in clients:
            client.login(MAINTAINER)
        writer, script, probe = clients[0], WebClient(server.url, api_token=token), WebClient(server.url)
        form_token = writer.csrf()
        with Traffic(clients, paths, probe) as traffic:
            traffic.wait("before", 2 * len(paths))
            traffic.phase = "stopping"
            cluster.halt()
            traffic.phase = "down"
            traffic.wait("down", 3 * BROWSERS)

            # A form sent now: nothing saved, and the page says how to get the typed values back.
            sent = writer.post(NEW, data={"csrf_token": form_token, "kind": "company",
                                          "company_name": "Sent While Away s.r.o."})
            assert is_away_page(sent.status_code, sent.headers.get("Retry-After"), sent.text, get=False), \
                (sent.status_code, page_text(sent.text)[:300])
            assert "Nothing was saved" in sent.text and "Back button" in sent.text
            api = script.api("GET", "/customers")
            assert (api.status_code, api.headers.get("Retry-After")) == (503, "5")
            assert api.json()["code"] == 503
            ready = probe.get("/health/ready")
            assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("failing")
            assert probe.get("/health/live").status_code == 200

            traffic.phase = "starting"
            cluster.resume()
            traffic.phase = "after"
            traffic.wait("after", 3 * len(paths) + BROWSERS)
        seen = list(traffic.seen)
        errors = server.log.since(0)

    assert_no_500(seen, errors)
    down = [s for s in seen if s.phase == "down"]
    pages = [s for s in down if s.path.startswith("/admin")]
    assert pages and all(away(s) for s in pages), \
        [(s.path, s.status, page_text(s.text)[:200]) for s in pages if not away(s)]
    probes = [s for s in down if s.path == "/health/ready"]
    assert all(s.status == 503 for s in probes)
    after = [s for s in seen if s.phase == "after"]
    assert after and all(s.status == 200 for s in after), \
        [(s.path, s.status, page_text(s.text)[:200]) for s in after if s.status != 200]
    between = [s for s in seen if s.phase in ("before", "stopping", "starting")]
    assert [(s.path, s.status) for s in between if s.status not in (200, 503)] == []
    assert errors == [], errors  # nothing was logged at ERROR: no traceback, no 500

    with app.app_context():
        assert db.session.query(Customer).filter_by(company_name="Sent While Away s.r.o.").count() == 0


def test_a_restart_nobody_noticed_leaves_no_broken_connection_behind(cluster, desk_database, tmp_path):
    url = desk_database
    app = make_app(url, **real_queue_config(tmp_path, url))
    customer_id, _token = populate(app)
    paths = ["/admin/customers/", f"/admin/customers/overview/?id={customer_id}"]
    with served(app) as server:
        clients = [WebClient(server.url) for _ in range(BROWSERS)]
        for client in clients:
            client.login(MAINTAINER)

        def everyone(ask: Callable[[WebClient], requests.Response]) -> list[requests.Response]:
            answers: list[requests.Response] = []
            threads = [threading.Thread(target=lambda c=client: answers.append(ask(c))) for client in clients]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            return answers

        # The pool now holds connections opened before the restart.
        assert {a.status_code for a in everyone(lambda c: c.get(paths[0]))} == {200}
        cluster.halt()
        cluster.resume()
        answers = everyone(lambda c: c.get(paths[1])) + everyone(lambda c: c.get(paths[0]))
        assert [(a.status_code, page_text(a.text)[:200]) for a in answers if a.status_code != 200] == []
        ready = WebClient(server.url).get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert server.log.since(0) == []


def test_a_connection_dropped_after_the_answer_was_made_leaves_the_answer(desk_database):
    """The server ends the connection between a page's last query and the end of its request
    (what a restart does to one request in many): the closing ROLLBACK fails, the page stands."""
    app = make_app(desk_database)

    @app.route("/test-only/read-then-lose-the-connection")
    def read_then_lose_the_connection():
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()  # a transaction is open
        with db.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        return "read"

    with served(app) as server:
        answer = WebClient(server.url).get("/test-only/read-then-lose-the-connection")
        assert (answer.status_code, answer.text) == (200, "read")
        assert server.log.since(0) == []
        assert WebClient(server.url).get("/health/ready").status_code == 200


def test_a_sqlite_database_that_cannot_be_opened_gives_the_same_page(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'moved-away' / 'customer_desk.db'}")
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "1:0"  # a browser still signed in from before
    page = client.get("/admin/customers/?search=x")
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    text = page.get_data(as_text=True)
    assert REFRESH in text and 'class="navbar-brand"' in text and "The database is not answering" in text
    assert "Internal Server Error" not in text

    anonymous = app.test_client()
    token = csrf_from(anonymous.get("/login").get_data(as_text=True))  # the sign-in page needs no database
    signed = anonymous.post("/login", data={"email": MAINTAINER, "password": PASSWORD, "csrf_token": token})
    text = signed.get_data(as_text=True)
    assert signed.status_code == 503 and "Nothing was saved" in text and REFRESH not in text
    assert PASSWORD not in text

    api = app.test_client().get("/api/v1/customers", headers={"Authorization": "Bearer cd_nothing"})
    assert api.status_code == 503 and api.headers["Retry-After"] == "5" and api.json["code"] == 503
    polled = client.get("/admin/directory/runs/1.json")  # what a page's script polls: JSON too
    assert polled.status_code == 503 and polled.json["code"] == 503


def test_a_sqlite_database_locked_for_good_gives_the_same_page(sqlite_url, caplog):
    app = make_app(sqlite_url, SQLITE_BUSY_TIMEOUT_MS=200,
                   SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "connect_args": {"timeout": 0.2}})
    populate(app)
    client = app.test_client()

    def sign_in():
        token = csrf_from(client.get("/login").get_data(as_text=True))
        return client.post("/login", data={"email": MAINTAINER, "password": PASSWORD, "csrf_token": token})

    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another process that never lets go
        refused = sign_in()
        text = refused.get_data(as_text=True)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5", text[:500]
        assert "Nothing was saved" in text and 'class="navbar-brand"' in text
        # Not a restart that passes by itself: an ERROR with the traceback, for somebody to look.
        [logged] = [r for r in caplog.records if r.name == "ops.database_away"]
        assert logged.levelname == "ERROR" and "database is locked" in str(logged.exc_info[1])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert sign_in().status_code == 302  # once it lets go, the same sign-in works


def test_a_form_whose_change_was_committed_before_the_database_went_away_is_not_sent_again(sqlite_url):
    """The write committed, then the database failed (while queueing, while reading the answer):
    the page must not say "nothing was saved — send it again", or the change is made twice."""
    from sqlalchemy.exc import OperationalError

    from services.reference_data import ensure_reference_data
    from services.transactions import unit_of_work

    app = make_app(sqlite_url)
    app.config["WTF_CSRF_ENABLED"] = False

    @app.route("/test-only/commit-then-lose-the-database", methods=["POST"])
    def commit_then_lose_the_database():
        with unit_of_work(db.session):
            ensure_reference_data(db.session)
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    @app.route("/test-only/lose-the-database", methods=["POST"])
    def lose_the_database():
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    client = app.test_client()
    saved = client.post("/test-only/commit-then-lose-the-database")
    text = saved.get_data(as_text=True)
    assert saved.status_code == 503 and "Your changes were saved" in text
    assert "Do not send the form again" in text
    assert "Nothing was saved" not in text and REFRESH not in text
    lost = client.post("/test-only/lose-the-database")
    assert lost.status_code == 503 and "Nothing was saved" in lost.get_data(as_text=True)
    api = client.post("/test-only/commit-then-lose-the-database", headers={"Accept": "application/json"})
    assert api.status_code == 503 and "was saved" in api.json["message"]
