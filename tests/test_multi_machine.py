"""A multi-machine rehearsal on one PostgreSQL: two app processes (gunicorn, each its own
machine as far as the desk can tell) and two job worker processes (`flask worker`), all on
127.0.0.1, sharing nothing but the database — its job_queue_* tables are the queue.

An import started through one app process is run by a worker, followed through the other app
process, survives a graceful reload of the first (`kill -HUP` of its gunicorn master, what every
deploy does), and when the worker running it is killed with SIGKILL it ends interrupted — never
"running" for ever — with what it committed, and is resumed through the other app process by the
surviving worker, every row imported exactly once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack, contextmanager

import pytest
from sqlalchemy import func, select

from extensions import db
from jobs.bulk_import import check_bulk_import_leases
from models import Customer
from models.bulk_import import BulkImport
from models.enums import OperatorRole
from services.operators import create_operator
from services.reference_data import ensure_reference_data
from services.transactions import unit_of_work
from testing.postgres import free_port
from testing.processes import listening
from tests.conftest import ENCRYPTION_KEY, PASSWORD, make_app, migrate_to_head
from tests.job_fixtures import ROOT, wait_for, worker_process
from tests.served_app import WebClient

pytestmark = pytest.mark.postgres
SECRET_KEY = "rehearsal-secret-key-not-for-production-0123456789"
ROWS = 800


@contextmanager
def gunicorn(env: dict[str, str], port: int, log):
    """One app process: gunicorn's master with one worker, as a machine of its own would run it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"], cwd=ROOT,
        env={**os.environ, **env, "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1",
             "GUNICORN_THREADS": "2"}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: listening(port) or process.poll() is not None, timeout=60, what="gunicorn")
        assert process.poll() is None, "gunicorn ended at start; see its log"
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def people(n: int) -> bytes:
    return ("Meno;Priezvisko;E-mail\n" + "".join(f"Stroj;Číslo {i};stroj{i}@example.sk\n"
                                                 for i in range(1, n + 1))).encode()


def suggested(client: WebClient, mapping_url: str) -> dict[str, str]:
    page = client.get(mapping_url).text
    return dict(re.findall(r'<select[^>]*name="(map-\d+)"[^>]*>.*?value="([a-z_]*)" selected', page, re.S))


def status(client: WebClient, token: str) -> dict:
    answer = client.get(f"/admin/customers/import/status/{token}.json")
    assert answer.status_code == 200, answer.text[:300]
    return answer.json()


def press(client: WebClient, action: str, token: str) -> None:
    answer = client.submit(f"/admin/customers/import/{action}/{token}")
    assert answer.status_code == 302, answer.text[:300]


def holder_pid(session, token: str) -> int | None:
    """The process id of the worker holding the run (services.run_leases.worker_name: host:pid:thread)."""
    session.expire_all()
    worker = session.scalar(select(BulkImport.worker).where(BulkImport.token == token))
    return int(worker.split(":")[1]) if worker else None


def test_two_app_processes_and_two_workers_on_one_postgresql(postgres_cluster, tmp_path):
    url = postgres_cluster.create_database(f"rehearsal_{uuid.uuid4().hex[:8]}")
    migrate_to_head(url)
    inspector = make_app(url, JOB_QUEUE_IMMEDIATE=False, JOB_LEASE_SECONDS=3)
    with inspector.app_context(), unit_of_work(db.session):
        ensure_reference_data(db.session)  # what `flask setup` gives a new database: a default status …
        create_operator(db.session, email="lead@example.sk", password=PASSWORD, first_name="Lea",
                        last_name="Dová", role=OperatorRole.MAINTAINER)
    env = {"DATABASE_URL": url, "SECRET_KEY": SECRET_KEY, "ENCRYPTION_KEY": ENCRYPTION_KEY,
           "JOB_LEASE_SECONDS": "3", "BULK_IMPORT_BATCH_SIZE": "5", "JOB_QUEUE_URL": "",
           "LOG_FORMAT": "text"}
    first_port, second_port = free_port(), free_port()
    with ExitStack() as stack, inspector.app_context():
        log = stack.enter_context(open(tmp_path / "processes.log", "ab"))
        first = stack.enter_context(gunicorn(env, first_port, log))
        stack.enter_context(gunicorn(env, second_port, log))
        workers = [stack.enter_context(worker_process(env, log=tmp_path / f"worker{n}.log")) for n in (1, 2)]
        one, other = WebClient(f"http://127.0.0.1:{first_port}"), WebClient(f"http://127.0.0.1:{second_port}")
        one.login("lead@example.sk")
        other.login("lead@example.sk")

        # Upload and map through the first machine; the preview is made by a worker.
        answer = one.submit("/admin/customers/import/", {"encoding": "auto"},
                            files={"file": ("stroje.csv", people(ROWS))})
        assert answer.status_code == 302, answer.text[:300]
        mapping_url = answer.headers["Location"]
        token = mapping_url.rsplit("/", 1)[1]
        answer = one.submit(mapping_url, {**suggested(one, mapping_url), "rule": ["email"],
                                          "on_match": "skip"})
        assert answer.status_code == 302, answer.text[:300]
        wait_for(lambda: status(other, token)["status"] == "previewed", timeout=90, what="the preview")

        # The import, started on the first machine, is followed on the second.
        press(one, "run", token)
        wait_for(lambda: status(other, token)["progress"].get("done", 0) >= 10, timeout=90,
                 what="the import to commit its first batches")
        # A deploy's graceful reload of the first machine's web server: the import goes on.
        before_reload = status(other, token)["progress"]["done"]
        first.send_signal(signal.SIGHUP)
        wait_for(lambda: status(other, token)["progress"]["done"] > before_reload, timeout=60,
                 what="progress after the web reload")
        assert status(one, token)["status"] in ("running", "done")  # the reloaded machine answers

        # The worker running it is killed outright.
        pid = holder_pid(db.session, token)
        holder = next(w for w in workers if w.pid == pid)
        survivor = next(w for w in workers if w.pid != pid)
        os.kill(pid, signal.SIGKILL)
        holder.wait(10)
        committed = status(other, token)["progress"]["done"]
        print(f"killed after {committed} of {ROWS} rows")
        assert 0 < committed < ROWS
        time.sleep(3.5)  # the lease (3 s) lapses …
        check_bulk_import_leases()  # … and the minute's lease check (any worker's) finds it
        db.session.remove()
        seen = status(other, token)
        assert seen["status"] == "interrupted", seen
        assert seen["progress"]["done"] == committed and f"{committed:,}" in seen["message"]
        press(other, "resume", token)  # through the other machine; the survivor takes it
        final = wait_for(lambda: (s := status(one, token))["status"] in ("done", "failed", "cancelled") and s,
                         timeout=120, what="the resumed import")
        assert survivor.poll() is None
        assert final["status"] == "done", final
        assert final["progress"] == {"done": ROWS, "total": ROWS}
        assert sum(final["counts"].values()) == ROWS and final["counts"].get("created") == ROWS
        db.session.expire_all()
        emails = db.session.scalar(select(func.count(Customer.id)).where(Customer.email.like("stroj%")))
        distinct = db.session.scalar(select(func.count(func.distinct(Customer.email)))
                                     .where(Customer.email.like("stroj%")))
        assert emails == distinct == ROWS
