"""Health endpoints (issue 15, item 8): /health/live and /health/ready, as a load balancer uses them.

No sign-in, no CSRF, JSON, never a secret or a library's version, never a write. Readiness is 200
only when the database answers and the job queue's storage answers — each checked against a
part that really is unreachable (a closed port) — and it says when a real worker last ran the
periodic job, on both databases.
"""

from __future__ import annotations

import json
import time

import pytest

from jobs import enqueue, queue_of
from ops.heartbeat import HEARTBEAT_KEY
from testing.postgres import free_port
from tests.conftest import make_app, shared_app
from tests.job_fixtures import drain, real_queue_config, wait_for, worker_in_thread
from tests.test_get_never_writes import changed, snapshot

# A database nobody listens on: connecting is refused at once.
UNREACHABLE = "postgresql+psycopg://desk:s3cret-in-url@127.0.0.1:{port}/customer_desk"
NOTHING_TO_LEAK = ("s3cret", "127.0.0.1", "psycopg", "sqlalchemy", "Traceback", "python", "werkzeug",
                   "flask", "huey", "peewee")


def assert_says_nothing_internal(answer) -> None:
    body = answer.get_data(as_text=True)
    for word in NOTHING_TO_LEAK:
        assert word.lower() not in body.lower(), (word, body)
    assert "version" not in body.lower(), body


def test_liveness_needs_nobody_and_touches_nothing(tmp_path):
    # Its database cannot even be opened: the process still serves, so it is alive.
    app = make_app(f"sqlite:///{tmp_path / 'no-such-folder' / 'desk.db'}")
    client = app.test_client()
    answer = client.get("/health/live")
    assert answer.status_code == 200
    assert answer.json == {"status": "alive"}
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in answer.headers
    assert client.head("/health/live").status_code == 200
    assert_says_nothing_internal(answer)


@pytest.mark.postgres
def test_ready_when_database_and_queue_answer_and_nothing_is_written(database_url, tmp_path):
    app = make_app(database_url, **real_queue_config(tmp_path, database_url))
    drain(app)
    queue = queue_of(app)
    with app.app_context():
        before = snapshot()
    kept = queue.storage.result_items()
    answer = app.test_client().get("/health/ready")  # no session, no token
    assert answer.status_code == 200, answer.json
    assert answer.json == {"status": "ready", "checks": {"database": "ok", "job_queue": "ok"},
                           "last_periodic_job": None}
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in answer.headers
    assert_says_nothing_internal(answer)
    with app.app_context():
        assert changed(before, snapshot()) == []
    assert queue.storage.result_items() == kept
    assert queue.pending_count() == 0


@pytest.mark.postgres
def test_ready_says_when_a_worker_last_ran_a_periodic_job(database_url, tmp_path):
    app = make_app(database_url, **real_queue_config(tmp_path, database_url))
    drain(app)
    client = app.test_client()
    assert client.get("/health/ready").json["last_periodic_job"] is None
    started = time.time()
    with worker_in_thread(app):
        with app.app_context():
            enqueue("ops.heartbeat")  # what the worker's scheduler does every minute
        ran = wait_for(lambda: client.get("/health/ready").json["last_periodic_job"],
                       what="the worker's heartbeat")
    assert 0 <= ran["seconds_ago"] <= time.time() - started + 1
    assert ran["at"].endswith("Z")
    assert isinstance(queue_of(app).get(HEARTBEAT_KEY, peek=True), float)


def test_not_ready_while_the_database_does_not_answer(tmp_path):
    app = make_app(UNREACHABLE.format(port=free_port()), **real_queue_config(tmp_path, "sqlite://"))
    answer = app.test_client().get("/health/ready")
    assert answer.status_code == 503
    assert answer.json["status"] == "not ready"
    assert answer.json["checks"]["database"].startswith("failing")
    assert answer.json["checks"]["job_queue"] == "ok"
    assert_says_nothing_internal(answer)
    assert app.test_client().get("/health/live").status_code == 200


def test_not_ready_while_the_job_queue_storage_does_not_answer(sqlite_url):
    app = make_app(sqlite_url, JOB_QUEUE_IMMEDIATE=False, JOB_QUEUE_URL=UNREACHABLE.format(port=free_port()))
    answer = app.test_client().get("/health/ready")
    assert answer.status_code == 503
    assert answer.json["checks"] == {"database": "ok", "job_queue": "failing (OperationalError)"}
    assert "last_periodic_job" not in answer.json
    assert_says_nothing_internal(answer)


def test_health_is_open_to_probes_but_only_reads(sqlite_url):
    client = shared_app(sqlite_url).test_client()
    # A POST is not a way in (405), not a CSRF refusal (400) nor a sign-in page (302).
    assert client.post("/health/ready").status_code == 405
    assert client.post("/health/live").status_code == 405
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    json.dumps(ready.json)  # plain JSON
