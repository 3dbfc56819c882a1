"""Directory imports on the job queue with real workers (tests/job_fixtures.py) against a real
slapd, on SQLite and PostgreSQL: a worker killed with -9 mid-import leaves an interrupted run
that resumes to every person once; Cancel stops at a batch boundary keeping what was written;
one run of a source at a time whichever door starts it (page, command line, two clicks at
once); the schedule queues a due run once, and once only after downtime.

An import caught mid-way is held after a committed batch — in a worker process by
tests.slow_directory_app (a pause after each batch), in this process by a batch that waits for
the test — so the test acts at a known point, never by racing the clock."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from extensions import db
from jobs.directory import queue_scheduled_runs
from models import Customer, DirectorySource, DirectorySyncRun
from models.base import utcnow
from models.enums import OperatorRole, SyncRunStatus
from services.directory import pipeline
from services.directory.runs import interrupt_lapsed
from services.directory.sources import save_source
from services.operators import create_operator
from services.transactions import unit_of_work
from tests.conftest import ENCRYPTION_KEY, PASSWORD, Browserless, fresh_app, make_app
from tests.job_fixtures import drain, real_queue_config, wait_for, worker_in_thread, worker_process
from tests.served_app import WebClient, page_text, served
from tests.test_directory_import import BOX, make_source

PEOPLE = 60
PAGE = 10
_apps: dict[str, object] = {}


@pytest.fixture
def queued_app(database_url, tmp_path_factory):
    """The app on empty tables whose jobs go to a real queue and wait for a worker."""
    with fresh_app(database_url):  # empties the tables, puts the reference rows back
        pass
    if database_url not in _apps:
        folder = tmp_path_factory.mktemp("queue")
        _apps[database_url] = make_app(database_url, **real_queue_config(folder, database_url))
    app = _apps[database_url]
    drain(app)
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def boss(queued_app):
    with unit_of_work(db.session):
        return create_operator(db.session, email="boss@example.com", password=PASSWORD, first_name="Mia",
                               last_name="Maintainer", role=OperatorRole.MAINTAINER)


@pytest.fixture
def panel(queued_app, boss):
    client = Browserless(queued_app.test_client())
    assert client.login(boss.email).status_code == 302
    return client


@pytest.fixture
def people(ldap_server):
    for n in range(PEOPLE):
        ldap_server.add_user(f"p{n:03d}", given="Pat", sn=f"Person{n:03d}", mail=f"p{n:03d}@example.com")
    return ldap_server


def worker_env(app, **extra) -> dict[str, str]:
    """A separate process on this test's database and queue, with its keys."""
    return {"DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "JOB_QUEUE_URL": app.config["JOB_QUEUE_URL"],
            "JOB_LEASE_SECONDS": str(app.config["JOB_LEASE_SECONDS"]), "ENCRYPTION_KEY": ENCRYPTION_KEY,
            "SECRET_KEY": "test-secret-key-not-for-production", "PHONE_DEFAULT_REGION": "SK",
            "DIRECTORY_TEST_PAUSE": "0.3", **extra}


def run_row(run_id: int | None = None) -> DirectorySyncRun | None:
    db.session.rollback()  # a fresh look at what the other threads and processes committed
    query = select(DirectorySyncRun).order_by(DirectorySyncRun.id.desc())
    if run_id is not None:
        query = query.where(DirectorySyncRun.id == run_id)
    return db.session.scalars(query).first()


def customers() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Customer))


def start(panel, source, mode: str = "import") -> str:
    answer = panel.submit(f"/admin/directory/details/?id={source.id}", {"mode": mode},
                            post_url=f"/admin/directory/start/{source.id}")
    assert answer.status_code == 302
    return page_text(panel.get(f"/admin/directory/details/?id={source.id}").get_data(as_text=True))


def test_a_worker_killed_mid_import_leaves_an_interrupted_run_that_resumes_to_everyone_once(
        queued_app, panel, boss, people, tmp_path):
    source = make_source(db.session, boss, people, page_size=PAGE)
    with worker_process(worker_env(queued_app), app_module="tests.slow_directory_app",
                        log=tmp_path / "worker.log") as worker:
        page = start(panel, source)
        assert "Import queued" in page and "started by: Mia Maintainer" in page
        running = wait_for(lambda: (run := run_row()) and run.processed >= 2 * PAGE and run,
                           what="the worker to commit two batches")
        os.killpg(worker.pid, signal.SIGKILL)  # mid-import: the worker pauses after each batch
        worker.wait(10)
    killed = run_row(running.id)
    assert killed.status == SyncRunStatus.RUNNING and killed.processed < PEOPLE  # nobody said anything

    # The lease check (the periodic job, here one lease later) finds it dead.
    with unit_of_work(db.session):
        assert interrupt_lapsed(db.session, lease_seconds=5, now=utcnow() + timedelta(seconds=6)) == 1
    interrupted = run_row(running.id)
    assert interrupted.status == SyncRunStatus.INTERRUPTED and "Resume continues" in interrupted.message
    # Its counts are what it committed: each batch's records and counts went in together.
    assert interrupted.created == interrupted.processed == customers() >= 2 * PAGE
    page = page_text(panel.get(f"/admin/directory/details/?id={source.id}").get_data(as_text=True))
    assert "Interrupted: its worker stopped" in page and "Resume" in page

    with worker_in_thread(queued_app):
        resumed = panel.submit(f"/admin/directory/details/?id={source.id}", {},
                                 post_url=f"/admin/directory/resume/{interrupted.id}")
        assert resumed.status_code == 302
        done = wait_for(lambda: (run := run_row()) and run.id != interrupted.id
                        and not run.status.is_active and run, what="the resumed run to end")
    assert done.status == SyncRunStatus.SUCCEEDED, done.message
    assert done.resumes_id == interrupted.id and done.total == PEOPLE
    assert (done.created, done.updated, done.unchanged, done.failed) == (PEOPLE, 0, 0, 0)
    assert f"the {interrupted.created} entries it had written were found in place" in done.message
    assert customers() == PEOPLE  # each person once
    assert db.session.scalar(select(func.count(func.distinct(Customer.directory_guid)))) == PEOPLE


def test_cancel_stops_at_a_batch_boundary_and_keeps_what_was_written(queued_app, panel, boss, people,
                                                                     monkeypatch):
    after_batch = pipeline.Import._after_batch
    proceed, batches = threading.Event(), []

    def held(self, stop):  # the worker waits after its second batch until the test has cancelled
        batches.append(self.tally.processed)
        if len(batches) == 2:
            proceed.wait(30)
        after_batch(self, stop)

    monkeypatch.setattr(pipeline.Import, "_after_batch", held)
    source = make_source(db.session, boss, people, page_size=PAGE)
    with worker_in_thread(queued_app):
        start(panel, source)
        wait_for(lambda: len(batches) == 2, what="two committed batches")
        running = run_row()
        assert running.status == SyncRunStatus.RUNNING and running.processed == batches[1]
        page = page_text(panel.get(f"/admin/directory/details/?id={source.id}").get_data(as_text=True))
        assert "Running" in page and "Cancel" in page
        answer = panel.submit(f"/admin/directory/details/?id={source.id}", {},
                              post_url=f"/admin/directory/cancel/{running.id}")
        assert answer.status_code == 302
        asked = page_text(panel.get(f"/admin/directory/details/?id={source.id}").get_data(as_text=True))
        assert "Cancel requested: the run stops after the batch" in asked
        proceed.set()
        ended = wait_for(lambda: (run := run_row(running.id)) and not run.status.is_active and run,
                         what="the run to stop")
    assert ended.status == SyncRunStatus.CANCELLED, ended.message
    assert "Cancelled after" in ended.message
    # The batch it was writing when asked was committed; nothing after it.
    assert len(batches) == 3 and ended.processed == batches[2] < PEOPLE
    assert ended.created == ended.processed == customers()
    page = page_text(panel.get(f"/admin/directory/details/?id={source.id}").get_data(as_text=True))
    assert "Cancelled" in page and "Resume" in page


def test_a_run_beats_while_it_reads_the_directory(queued_app, panel, boss, people, monkeypatch):
    """Counting a large directory takes a while before the first batch: the run beats meanwhile, so
    the lease check does not take a live run for a dead one."""
    monkeypatch.setitem(queued_app.config, "JOB_LEASE_SECONDS", 2)
    keys, counted, resume = pipeline.account_keys, threading.Event(), threading.Event()

    def slow_keys(attributes, mapping):  # a slow directory: 60 entries take 3 s to page through
        time.sleep(0.05)
        return keys(attributes, mapping)

    count = pipeline.Import.count_accounts

    def count_then_wait(self, conn):
        found = count(self, conn)
        counted.set()
        resume.wait(30)
        return found

    monkeypatch.setattr(pipeline, "account_keys", slow_keys)
    monkeypatch.setattr(pipeline.Import, "count_accounts", count_then_wait)
    source = make_source(db.session, boss, people, page_size=PAGE)
    with worker_in_thread(queued_app):
        start(panel, source)
        try:
            assert counted.wait(60), "the directory was not counted"
            with unit_of_work(db.session):  # the lease check, right after 3 s of counting
                assert interrupt_lapsed(db.session, lease_seconds=2) == 0
        finally:
            resume.set()
        done = wait_for(lambda: (run := run_row()) and not run.status.is_active and run, what="the run")
    assert done.status == SyncRunStatus.SUCCEEDED and done.created == PEOPLE


def test_one_run_of_a_source_at_a_time_from_the_page_and_the_command_line(queued_app, panel, boss, people,
                                                                         monkeypatch):
    source = make_source(db.session, boss, people, name="cron-ad", page_size=PAGE)
    page = start(panel, source)  # queued: no worker runs here
    queued = run_row()
    assert queued.status == SyncRunStatus.QUEUED and "Queued: waiting for a worker" in page
    cron = queued_app.test_cli_runner().invoke(args=["directory", "sync", "cron-ad"])
    assert cron.exit_code == 1 and "An import of this source is already running." in cron.stderr
    again = start(panel, source, "dry-run")
    assert "An import of this source is already running." in again
    assert db.session.scalar(select(func.count()).select_from(DirectorySyncRun)) == 1
    panel.submit(f"/admin/directory/details/?id={source.id}", {},
                   post_url=f"/admin/directory/cancel/{queued.id}")
    assert run_row(queued.id).status == SyncRunStatus.CANCELLED

    # The command line doing a run itself (cron), held after its first batch: the page sees its run
    # and starts none.
    after_batch, proceed, cli_result = pipeline.Import._after_batch, threading.Event(), []

    def held(self, stop):
        proceed.wait(30)
        after_batch(self, stop)

    monkeypatch.setattr(pipeline.Import, "_after_batch", held)
    cron = threading.Thread(target=lambda: cli_result.append(
        queued_app.test_cli_runner().invoke(args=["directory", "sync", "cron-ad"])))
    cron.start()
    try:
        by_cron = wait_for(lambda: (run := run_row()) and run.id != queued.id and run.processed and run,
                           what="the command line's run")
        page = start(panel, source)
        assert "An import of this source is already running." in page
        assert "started by: command line" in page and "Running" in page
    finally:
        proceed.set()
        cron.join(60)
    assert cli_result[0].exit_code == 0, cli_result[0].output
    assert run_row(by_cron.id).status == SyncRunStatus.SUCCEEDED and customers() == PEOPLE
    assert "Import queued" in start(panel, source)  # free again


def test_two_clicks_at_once_make_one_run(queued_app, boss, ldap_server):
    source_id = make_source(db.session, boss, ldap_server).id
    with served(queued_app) as server:
        clients = [WebClient(server.url) for _ in range(2)]
        for client in clients:
            client.login(boss.email)
            client.csrf()
        gate = threading.Barrier(2)
        answers: list[int] = []

        def click(client):
            gate.wait()
            answer = client.submit(f"/admin/directory/start/{source_id}", {"mode": "import"})
            answers.append(answer.status_code)

        threads = [threading.Thread(target=click, args=(client,)) for client in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert answers == [302, 302], server.log.since(0)
        assert server.log.since(0) == []
        pages = [page_text(client.get(f"/admin/directory/details/?id={source_id}").text)
                 for client in clients]
        for client in clients:
            client.close()
    assert db.session.scalar(select(func.count()).select_from(DirectorySyncRun)) == 1
    assert sum("An import of this source is already running." in page for page in pages) == 1


def local(year, month, day, hour, minute) -> datetime:
    """The server's wall-clock time as UTC (what the scheduler is given)."""
    return datetime(year, month, day, hour, minute).astimezone().astimezone(UTC).replace(tzinfo=None)


def test_the_schedule_queues_a_due_run_once_and_once_after_downtime(queued_app, panel, boss, ldap_server,
                                                                   caplog):
    ldap_server.add_user("sched", given="Sam", sn="Scheduled", mail="sam@example.com")
    source = make_source(db.session, boss, ldap_server)
    source.full_sync_at, source.changes_every_minutes = "02:00", 15
    with unit_of_work(db.session):
        save_source(db.session, boss, source, BOX)

    def tick(moment):
        with queued_app.app_context():  # as the periodic job: a context of its own
            return queue_scheduled_runs(now=moment)

    assert tick(local(2027, 1, 15, 1, 0)) == []  # due times worked out: 02:00, and 01:15
    assert tick(local(2027, 1, 15, 1, 14)) == []
    first = tick(local(2027, 1, 15, 1, 15))
    assert len(first) == 1 and tick(local(2027, 1, 15, 1, 15)) == []  # queued once
    run = run_row(first[0])
    assert run.scheduled and run.status == SyncRunStatus.QUEUED and run.started_by_id is None
    with worker_in_thread(queued_app):
        wait_for(lambda: run_row(first[0]).status == SyncRunStatus.SUCCEEDED, what="the scheduled run")
    page = page_text(panel.get(f"/admin/directory/details/?id={source.id}").get_data(as_text=True))
    assert "started by: schedule" in page and "full sync every night at 02:00" in page

    # A source busy with a run (here one a maintainer started) is skipped, logged, and stays due.
    start(panel, source)
    with caplog.at_level(logging.INFO, logger="jobs.directory"):
        assert tick(local(2027, 1, 15, 2, 0)) == []
    assert "skipped: a run of it is queued or running" in caplog.text
    busy = run_row()
    with unit_of_work(db.session):
        db.session.get(DirectorySyncRun, busy.id).status = SyncRunStatus.CANCELLED

    # Two schedulers at the same minute (two workers' periodic jobs): one run.
    found: list[list[int]] = []
    gate = threading.Barrier(2)

    def racing():
        gate.wait()
        found.append(tick(local(2027, 1, 15, 2, 1)))

    threads = [threading.Thread(target=racing) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    nightly = [ids for ids in found if ids]
    assert len(nightly) == 1 and len(nightly[0]) == 1
    assert run_row(nightly[0][0]).incremental is False  # the nightly full run
    with unit_of_work(db.session):
        db.session.get(DirectorySyncRun, nightly[0][0]).status = SyncRunStatus.CANCELLED

    # Three days without workers: one run when they come back, not one per missed slot.
    assert len(tick(local(2027, 1, 18, 9, 30))) == 1
    with unit_of_work(db.session):
        run_row().status = SyncRunStatus.CANCELLED
    assert tick(local(2027, 1, 18, 9, 31)) == []
    db.session.rollback()
    assert db.session.get(DirectorySource, source.id).full_sync_due_at == local(2027, 1, 19, 2, 0)


def test_a_queued_run_whose_message_was_lost_is_delivered_again_and_frees_its_source(
        queued_app, panel, boss, people):
    """A web process that died between its commit and the enqueue (or a worker killed between
    taking the message and claiming the run) leaves a queued run nobody will take: it would block
    the source and its schedule for ever. The minute's check delivers it again."""
    from jobs.directory import interrupt_dead_runs
    from services.directory.runs import queue_run

    source = make_source(db.session, boss, people, name="lost-message", page_size=PAGE)
    with unit_of_work(db.session):
        lost = queue_run(db.session, source, boss)  # committed, never put on the queue
    drain(queued_app)
    interrupt_dead_runs()  # a fresh queued run is left alone: a worker may be about to take it
    assert len(queued_app.extensions["job_queue"]) == 0
    db.session.execute(db.update(DirectorySyncRun).where(DirectorySyncRun.id == lost.id)
                       .values(started_at=utcnow() - timedelta(minutes=10)))
    db.session.commit()
    interrupt_dead_runs()
    assert len(queued_app.extensions["job_queue"]) == 1  # delivered again …
    interrupt_dead_runs()
    assert len(queued_app.extensions["job_queue"]) == 1  # … once per period
    with worker_in_thread(queued_app):
        wait_for(lambda: run_row(lost.id).status == SyncRunStatus.SUCCEEDED, what="the delivered run")
    assert customers() == PEOPLE
    assert "Import queued" in start(panel, source)  # the source is free again
