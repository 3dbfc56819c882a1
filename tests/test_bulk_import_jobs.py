"""CSV/XLSX imports on real job workers: nothing of a preview or an import lives in a web process.

Web apps enqueue to a real queue (tests/job_fixtures.py: a queue file of the test's own on
SQLite, the database's job_queue_* tables on PostgreSQL); workers are Huey's consumer in a
thread, or a `flask worker` process that a test kills. Each app object stands for a process of
its own: what one queued, another runs and a third shows.
"""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, update

from extensions import db
from jobs import queue_of
from jobs.bulk_import import check_bulk_import_leases
from models import Customer
from models.bulk_import import BulkImport, BulkImportBatch, BulkImportStatus
from services import bulk_import_runs as runs
from services.bulk_import_files import read_table, suggest_mapping
from services.transactions import unit_of_work
from tests.conftest import ENCRYPTION_KEY, Browserless, make_app
from tests.job_fixtures import drain, real_queue_config, wait_for, worker_in_thread, worker_process
from tests.served_app import WebClient, page_text, served
from tests.test_bulk_import import count, people, press, run_of, suggested, upload

Status = BulkImportStatus
SECRET_KEY = "test-secret-key-not-for-production"


@pytest.fixture
def queue_config(database_url, tmp_path) -> dict:
    """Apps on the test's database whose jobs go through a real queue; leases of 2 seconds."""
    return {**real_queue_config(tmp_path, database_url), "JOB_LEASE_SECONDS": 2}


def signed_in(app, operator) -> Browserless:
    browser = Browserless(app.test_client())
    assert browser.login(operator.email).status_code == 302
    return browser


def status(browser, token: str) -> dict:
    return browser.get(f"/admin/customers/import/status/{token}.json").get_json()


def previewed_run(session, owner, text: str, *, batch_size: int) -> str:
    """An upload whose preview is done (made here: these tests are about the import job)."""
    data = text.encode()
    table = read_table(data)
    with unit_of_work(session):
        run = runs.new_upload(session, owner, file_name="lidia.csv", encoding="auto", data=data, table=table)
        assert runs.queue_preview(session, run, mapping=suggest_mapping(table.headers), rules=["email"],
                                  on_match="skip", batch_size=batch_size)
        session.execute(update(BulkImport).where(BulkImport.id == run.id)
                        .values(status=Status.PREVIEWED, preview_report={"counts": {}}))
        token = run.token
    return token


def lease_check(app) -> None:
    """The periodic lease check, as a worker of `app` runs it."""
    with app.app_context():
        try:
            check_bulk_import_leases()
        finally:
            db.session.remove()


def distinct_emails(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count(func.distinct(Customer.email))))


def test_a_run_queued_by_one_web_process_is_run_by_a_worker_of_another_and_followed_by_a_third(
        app, session, operator, database_url, queue_config):
    web, worker, follower_app = (make_app(database_url, **queue_config) for _ in range(3))
    drain(web)
    browser = signed_in(web, operator)
    mapping_url = upload(browser, people(12).encode()).headers["Location"]
    token = mapping_url.rsplit("/", 1)[1]
    answer = browser.submit(mapping_url, {**suggested(browser, mapping_url), "rule": ["email"],
                                          "on_match": "skip"})
    assert answer.status_code == 302
    # The request only queued the preview; the page follows it until a worker has made it.
    assert run_of(session, token).status == Status.PREVIEW_QUEUED
    page = browser.get(answer.headers["Location"]).get_data(as_text=True)
    assert "The preview waits for a background worker." in page and "data-import-status" in page

    follower = signed_in(follower_app, operator)  # another web process: the same run, from the database
    with worker_in_thread(worker):
        wait_for(lambda: status(follower, token)["status"] == "previewed", what="the preview")
        preview = follower.get(f"/admin/customers/import/preview/{token}").get_data(as_text=True)
        assert "Would create" in preview
        assert press(browser, "run", token).status_code == 302  # queued through the first
        seen = []

        def ended():
            seen.append(status(follower, token))
            return seen[-1]["done"]

        wait_for(ended, what="the import")
    assert {s["status"] for s in seen} <= {"queued", "running", "done"}
    progress = [s["progress"]["done"] for s in seen]
    assert progress == sorted(progress) and seen[-1]["progress"] == {"done": 12, "total": 12}
    assert seen[-1]["status"] == "done" and seen[-1]["counts"]["created"] == 12
    assert count(session) == 12
    assert "Import finished." in page_text(follower.get(f"/admin/customers/import/result/{token}")
                                           .get_data(as_text=True))


def test_a_worker_killed_mid_import_ends_interrupted_and_resume_imports_every_row_once(
        app, session, operator, database_url, queue_config, tmp_path):
    rows = 30
    web = make_app(database_url, **queue_config)
    drain(web)
    browser = signed_in(web, operator)
    token = previewed_run(session, operator, people(rows), batch_size=2)
    assert press(browser, "run", token).status_code == 302
    env = {"DATABASE_URL": database_url, "JOB_QUEUE_URL": queue_config["JOB_QUEUE_URL"],
           "JOB_LEASE_SECONDS": "2", "SECRET_KEY": SECRET_KEY, "ENCRYPTION_KEY": ENCRYPTION_KEY,
           "PHONE_DEFAULT_REGION": "SK", "PHOTO_DIR": str(tmp_path / "photos"), "LOG_LEVEL": "WARNING"}
    with worker_process(env, log=tmp_path / "worker.log") as process:
        wait_for(lambda: run_of(session, token).done >= 4 or process.poll() is not None, timeout=60,
                 what="a few committed batches")
        assert process.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        os.killpg(process.pid, signal.SIGKILL)  # kill -9, in the middle of a batch most likely
        process.wait(10)
    run = run_of(session, token)
    committed = run.done
    assert run.status == Status.RUNNING and 0 < committed < rows
    assert count(session) == committed  # `done` is what the database holds, never more or less

    # After the lease, the periodic check finds the dead run; the page says what is imported.
    wait_for(lambda: lease_check(web) or run_of(session, token).status == Status.INTERRUPTED, timeout=30,
             interval=0.3, what="the lease check to find the dead worker")
    page = page_text(browser.get(f"/admin/customers/import/result/{token}").get_data(as_text=True))
    assert (f"The import was interrupted after {committed} of {rows} rows: its background worker stopped. "
            f"Those {committed} rows are imported. Resume continues from row {committed + 1}.") in page
    assert "Resume" in page

    assert press(browser, "resume", token).status_code == 302
    with worker_in_thread(web):
        wait_for(lambda: run_of(session, token).status == Status.DONE, timeout=120, what="the resumed import")
    run = run_of(session, token)
    assert (run.done, run.data) == (rows, None)
    assert run.result_report["counts"] == {"created": rows, "updated": 0, "unchanged": 0, "skipped": 0,
                                           "duplicates": 0, "rejected": 0}  # both parts, each row once
    assert sorted(r["row"] for r in run.result_report["created"]) == list(range(2, rows + 2))
    assert count(session) == rows and distinct_emails(session) == rows  # every row once
    assert session.scalar(select(func.count()).select_from(BulkImportBatch)) == 0


def test_cancel_stops_a_running_import_at_its_next_batch(app, session, operator, database_url, queue_config):
    rows = 60
    web, worker = (make_app(database_url, **queue_config) for _ in range(2))
    drain(web)
    browser = signed_in(web, operator)
    token = previewed_run(session, operator, people(rows), batch_size=2)
    press(browser, "run", token)
    with worker_in_thread(worker):
        wait_for(lambda: run_of(session, token).done >= 4, what="the import to commit a few batches")
        assert press(browser, "cancel", token).status_code == 302
        wait_for(lambda: run_of(session, token).status in runs.ENDED, what="the import to stop")
    assert run_of(session, token).status == Status.CANCELLED, run_of(session, token).status
    run = run_of(session, token)
    assert 4 <= run.done < rows and run.data is None
    assert count(session) == run.done == run.result_report["counts"]["created"]
    page = page_text(browser.get(f"/admin/customers/import/result/{token}").get_data(as_text=True))
    assert (f"The import was cancelled after {run.done} of {rows} rows. Those {run.done} rows are "
            "imported.") in page


def test_two_run_import_posts_at_once_queue_one_import_and_two_resumes_one_resume(
        app, session, operator, database_url, queue_config):
    rounds = 4
    web = make_app(database_url, **queue_config)
    drain(web)
    queue = queue_of(web)
    tokens = [previewed_run(session, operator, people(2, start=10 * n), batch_size=2) for n in range(rounds)]
    with served(web) as server:
        tabs = [WebClient(server.url) for _ in range(2)]
        for tab in tabs:  # two tabs (or a double click) of the operator who uploaded the files
            tab.login(operator.email)
            tab.csrf()

        def both_press(action: str, token: str) -> None:
            together = threading.Barrier(len(tabs))

            def press_once(tab):
                together.wait()
                return tab.submit(f"/admin/customers/import/{action}/{token}").status_code

            with ThreadPoolExecutor(len(tabs)) as pool:
                assert list(pool.map(press_once, tabs)) == [302, 302]

        for token in tokens:
            both_press("run", token)
        assert queue.pending_count() == rounds  # one import per file (no worker runs them here)
        assert {run_of(session, t).status for t in tokens} == {Status.QUEUED}

        with unit_of_work(session):  # as the lease check leaves runs whose worker was killed
            session.execute(update(BulkImport).where(BulkImport.token.in_(tokens))
                            .values(status=Status.INTERRUPTED, done=0))
        for token in tokens:
            both_press("resume", token)
        assert queue.pending_count() == 2 * rounds
        for tab in tabs:
            tab.close()
    drain(web)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the same job on PostgreSQL above
def test_a_preview_of_20000_rows_is_made_by_a_worker_not_the_request(app, session, operator, database_url,
                                                                     queue_config):
    """The largest file allowed (20,000 rows): its preview took minutes inside the request (a 500
    at gunicorn's timeout). Rows refused at once keep it short; each row is tried all the same."""
    web = make_app(database_url, **queue_config)
    drain(web)
    browser = signed_in(web, operator)
    text = "Druh;E-mail\n" + "".join(f"robot;r{i}@example.sk\n" for i in range(20_000))
    mapping_url = upload(browser, text.encode()).headers["Location"]
    token = mapping_url.rsplit("/", 1)[1]
    answer = browser.submit(mapping_url, {"map-0": "kind", "map-1": "email", "rule": ["email"],
                                          "on_match": "skip"})
    assert answer.status_code == 302 and run_of(session, token).status == Status.PREVIEW_QUEUED
    with worker_in_thread(web):
        wait_for(lambda: run_of(session, token).status == Status.PREVIEWED, timeout=240, interval=0.5,
                 what="the preview of 20,000 rows")
    page = page_text(browser.get(answer.headers["Location"]).get_data(as_text=True))
    assert "20,000 rows. This is what the import would do" in page
    assert run_of(session, token).preview_report["counts"]["rejected"] == 20_000
