"""Directory sources through the admin panel and the CLI: maintainers only, the password kept
encrypted and never shown, Test connection, a dry run and an import started from the page with
progress to poll, the runs' states in plain words, cancel and resume, schedules, and
`flask directory sync` for schedulers. (Jobs run at once here; real workers:
tests/test_directory_jobs.py.)"""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta
from html import unescape

from sqlalchemy import func, select

from jobs.directory import interrupt_dead_runs
from models import Customer, DirectorySource, DirectorySyncRun
from models.base import utcnow
from models.enums import SyncRunStatus
from services.directory.schedules import MINUTES_MESSAGE, TIME_MESSAGE, server_zone
from services.directory.sources import check_connection
from services.outbound_policy import Outcome, Reach
from services.secrets import SecretBox
from services.transactions import unit_of_work
from testing.postgres import free_port
from tests.conftest import ENCRYPTION_KEY, csrf_from
from tests.served_app import page_text
from tests.test_directory_import import BOX, make_source


def source_form(server, **overrides):
    data = {"name": "HQ directory", "server_urls": server.url, "use_starttls": "y", "verify_certificate": "y",
            "ca_file": server.ca_file, "bind_dn": server.service_dn, "bind_password": server.service_password,
            "base_dn": server.base_dn, "search_filter": "(&(objectClass=user)(!(sAMAccountName=*$)))",
            "page_size": "200", "attribute_mapping": "email = mail", "target": "persons",
            "company_rules_text": "", "office_maps_to": "site", "max_deactivate_percent": "10",
            "is_active": "y"}
    data.update(overrides)
    return data


def wait_for(session, after: DirectorySyncRun | None = None, timeout: float = 30):
    """The run started after `after`, once it has finished (it runs beside the request)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.expire_all()
        run = session.scalar(select(DirectorySyncRun).order_by(DirectorySyncRun.id.desc()))
        if run is not None and run is not after and not run.status.is_active:
            return run
        time.sleep(0.1)
    raise AssertionError("the import did not finish")


def test_a_maintainer_saves_a_source_with_the_password_encrypted_and_never_shown(
        maintainer_client, operator_client, session, ldap_server):
    refused = maintainer_client.submit("/admin/directory/new/", source_form(
        ldap_server, server_urls="http://dc1", page_size="0", attribute_mapping="shoe = size"))
    html = refused.get_data(as_text=True)
    assert refused.status_code == 200 and "starts with ldap://" in html and "From 1 to" in html
    assert "not a field" in html and session.query(DirectorySource).count() == 0

    saved = maintainer_client.submit("/admin/directory/new/", source_form(ldap_server))
    assert saved.status_code == 302
    source = session.query(DirectorySource).one()
    assert SecretBox(ENCRYPTION_KEY).decrypt(source.bind_password_encrypted) == ldap_server.service_password
    assert source.attribute_map == {}  # the defaults are not stored as overrides
    edit = maintainer_client.get(f"/admin/directory/edit/?id={source.id}").get_data(as_text=True)
    details = maintainer_client.get(f"/admin/directory/details/?id={source.id}").get_data(as_text=True)
    for page in (edit, details):
        assert ldap_server.service_password not in page and source.bind_password_encrypted not in page
    kept = maintainer_client.submit(f"/admin/directory/edit/?id={source.id}",
                                    source_form(ldap_server, bind_password="", name="HQ AD"))
    assert kept.status_code == 302
    session.expire_all()
    assert SecretBox(ENCRYPTION_KEY).decrypt(
        session.get(DirectorySource, source.id).bind_password_encrypted) == ldap_server.service_password
    assert operator_client.get(f"/admin/directory/details/?id={source.id}").status_code == 403
    token = csrf_from(operator_client.get("/admin/").get_data(as_text=True))
    assert operator_client.post(f"/admin/directory/start/{source.id}",
                                data={"csrf_token": token, "mode": "import"}).status_code == 403


def test_test_connection_then_a_dry_run_and_an_import_from_the_page(maintainer_client, maintainer, session,
                                                                     ldap_server):
    for n in range(3):
        ldap_server.add_user(f"page{n}", given="Page", sn=f"User{n}", mail=f"page{n}@example.com")
    source = make_source(session, maintainer, ldap_server)
    page = maintainer_client.get(f"/admin/directory/details/?id={source.id}").get_data(as_text=True)
    token = csrf_from(page)
    answer = maintainer_client.post(f"/admin/directory/test/{source.id}",
                                    data={"csrf_token": token}).get_json()
    assert answer["ok"] and answer["count"] == 3 and len(answer["sample"]) == 3
    with unit_of_work(session):  # a CA file that is not there: a message, not a 500
        source.ca_file = "/nonexistent/corporate-ca.pem"
    missing = maintainer_client.post(f"/admin/directory/test/{source.id}", data={"csrf_token": token})
    assert missing.status_code == 200 and missing.get_json()["ok"] is False
    assert "The CA file /nonexistent/corporate-ca.pem does not exist" in missing.get_json()["message"]
    with unit_of_work(session):
        source.ca_file = ldap_server.ca_file

    started = maintainer_client.post(f"/admin/directory/start/{source.id}",
                                     data={"csrf_token": token, "mode": "dry-run"})
    assert started.status_code == 302
    preview = wait_for(session)
    assert preview.dry_run and preview.status == SyncRunStatus.SUCCEEDED and preview.created == 3
    assert session.scalar(select(func.count()).select_from(Customer)) == 0

    maintainer_client.post(f"/admin/directory/start/{source.id}",
                           data={"csrf_token": token, "mode": "import"})
    run = wait_for(session, after=preview)
    assert not run.dry_run and run.created == 3 and run.started_by_id == maintainer.id
    progress = maintainer_client.get(f"/admin/directory/runs/{run.id}.json").get_json()
    assert (progress["status"], progress["processed"], progress["total"]) == ("succeeded", 3, 3)
    report = maintainer_client.get(f"/admin/directory/details/?id={source.id}").get_data(as_text=True)
    assert "created 3, updated 0, unchanged 0" in report and "Dry run" in report
    assert session.scalar(select(func.count()).select_from(Customer)) == 3


def test_cli_sync_prints_a_summary_and_fails_loudly(app, session, maintainer, ldap_server):
    ldap_server.add_user("cli1", given="Cli", sn="User", mail="cli1@example.com", title="Clerk")
    source = make_source(session, maintainer, ldap_server, name="cron-ad")
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["directory", "sync", "cron-ad", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Dry run of cron-ad: succeeded. Created 1" in dry.output
    assert session.scalar(select(func.count()).select_from(Customer)) == 0
    real = runner.invoke(args=["directory", "sync", str(source.id)])
    assert real.exit_code == 0 and "Created 1" in real.output
    listed = runner.invoke(args=["directory", "list"])
    assert "cron-ad" in listed.output and "succeeded" in listed.output
    with unit_of_work(session):
        source.server_urls = "ldap://127.0.0.1:9"
    failed = runner.invoke(args=["directory", "sync", "cron-ad"])
    assert failed.exit_code == 1 and "No directory server answered" in failed.output
    assert runner.invoke(args=["directory", "sync", "nonexistent"]).exit_code != 0


# --- Test connection: fixed answers, where it may connect, how often, and a CA file not there ------

def press_test(client, source, **data):
    page = client.get(f"/admin/directory/details/?id={source.id}").get_data(as_text=True)
    return client.post(f"/admin/directory/test/{source.id}", data={"csrf_token": csrf_from(page), **data})


def change(session, source, **values):
    with unit_of_work(session):
        for key, value in values.items():
            setattr(source, key, value)


def test_test_connection_answers_from_a_fixed_set_without_the_servers_words(maintainer_client, maintainer,
                                                                           session, ldap_server):
    source = make_source(session, maintainer, ldap_server)
    ok = press_test(maintainer_client, source).get_json()
    assert ok["ok"] and ok["outcome"] == "connected"

    cases = [
        ({"ca_file": None}, "untrusted_certificate",
         "certificate is not trusted or is not for this host name"),
        ({"server_urls": f"ldap://127.0.0.1:{free_port()}"}, "refused", "the connection was refused"),
        ({"server_urls": "ldap://127.0.0.1:99999"}, "invalid", "with a port from 1 to 65535"),
        ({"server_urls": "ldaps://"}, "invalid", "write the server URL as ldap://host"),
        ({"server_urls": "ldap://no-such-dc.invalid"}, "host_not_found", "could not be resolved"),
    ]
    for values, outcome, says in cases:
        change(session, source, ca_file=ldap_server.ca_file, server_urls=ldap_server.url)
        change(session, source, **values)
        response = press_test(maintainer_client, source)
        answer = response.get_json()
        assert response.status_code == 200 and answer["ok"] is False, (values, answer)
        assert answer["outcome"] == outcome and says in answer["message"], (values, answer)
        # Neither the TLS library's words nor a certificate's contents reach the page.
        for leaked in ("CERTIFICATE_VERIFY_FAILED", "self-signed", "subjectAltName", "Errno", "_ssl.c"):
            assert leaked not in answer["message"]

    change(session, source, ca_file=ldap_server.ca_file, server_urls=ldap_server.url)
    source.bind_password_encrypted = BOX.encrypt("wrong-password")
    change(session, source)
    wrong = press_test(maintainer_client, source).get_json()
    assert wrong["outcome"] == "wrong_password" and "wrong-password" not in wrong["message"]


def test_a_ca_file_that_is_not_there_is_a_message_on_every_door(app, maintainer_client, maintainer, session,
                                                                ldap_server):
    """Issue 16: a CA path that does not exist answered 500 (LDAPSSLConfigurationError) and the
    CLI printed a traceback."""
    source = make_source(session, maintainer, ldap_server, name="cron-ad")
    change(session, source, ca_file="/nonexistent/corporate-ca.pem")
    page = press_test(maintainer_client, source)
    assert page.status_code == 200 and page.get_json()["outcome"] == "invalid"
    assert "The CA file /nonexistent/corporate-ca.pem does not exist" in page.get_json()["message"]
    runner = app.test_cli_runner()
    for args in (["directory", "test", "cron-ad"], ["directory", "sync", "cron-ad", "--dry-run"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 1, (args, result.output)
        assert "The CA file /nonexistent/corporate-ca.pem does not exist" in result.output
        assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_cli_test_prints_what_the_page_shows(app, maintainer, session, ldap_server):
    ldap_server.add_user("anna", given="Anna", sn="Nová", department="Sales", mail="anna@example.com")
    make_source(session, maintainer, ldap_server, name="cron-ad")
    result = app.test_cli_runner().invoke(args=["directory", "test", "cron-ad"])
    assert result.exit_code == 0, result.output
    assert "the filter matches 1 entry" in result.output and "Nová, Anna · anna" in result.output


def test_an_operators_reach_would_not_include_the_directory_on_loopback(maintainer, session, ldap_server):
    """Directory sources are maintainers' (who reach any host and port); the rule an operator's test
    would meet is the one the mail servers' tests meet (services.outbound_policy)."""
    source = make_source(session, maintainer, ldap_server)
    own_port = check_connection(source, BOX, reach=Reach.LIMITED)
    assert own_port.outcome == Outcome.NOT_ALLOWED and f"Port {ldap_server.port} is not an LDAP port" \
        in own_port.message
    change(session, source, server_urls="ldap://127.0.0.1:389")
    loopback = check_connection(source, BOX, reach=Reach.LIMITED)
    assert loopback.outcome == Outcome.NOT_ALLOWED and "127.0.0.1 is a local address" in loopback.message
    change(session, source, server_urls="ldaps://169.254.169.254:636")
    metadata = check_connection(source, BOX)  # a maintainer's reach: not there either
    assert metadata.outcome == Outcome.NOT_ALLOWED


def test_the_directory_test_connects_to_the_address_it_checked(maintainer, session, ldap_server, monkeypatch):
    """DNS rebinding: `localhost` answers 127.0.0.1 when checked, the metadata address afterwards."""
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1"] + ["169.254.169.254"] * 10)
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **kw: real(
        next(answers) if host == "localhost" else host, *a, **kw))
    source = make_source(session, maintainer, ldap_server,
                         server_urls=f"ldaps://localhost:{ldap_server.ldaps_port}")
    report = check_connection(source, BOX)
    assert report.ok, report.message
    assert next(answers) == "169.254.169.254"  # resolved once only


def test_directory_tests_are_rate_limited_per_person(app, maintainer_client, maintainer, session,
                                                     ldap_server):
    app.config.update(RATELIMIT_ENABLED=True, TEST_CONNECTION_RATE_LIMIT="2 per minute")
    source = make_source(session, maintainer, ldap_server)
    assert [press_test(maintainer_client, source).status_code for _ in range(2)] == [200, 200]
    over = press_test(maintainer_client, source)
    assert over.status_code == 429 and over.get_json()["outcome"] == "too_many"
    assert "too many connection tests" in over.get_json()["message"]


def test_failover_tries_the_next_url_when_one_is_unreachable(maintainer, session, ldap_server):
    source = make_source(session, maintainer, ldap_server,
                         server_urls=f"ldap://127.0.0.1:{free_port()} {ldap_server.url}")
    report = check_connection(source, BOX)
    assert report.ok, report.message
    change(session, source, server_urls=f"ldap://127.0.0.1:{free_port()} ldap://127.0.0.1:{free_port()}")
    both = check_connection(source, BOX)
    assert both.outcome == Outcome.REFUSED
    assert "No directory server answered at ldap://127.0.0.1:" in both.message


# --- Runs on the queue: states in plain words, cancel, resume, schedules ----------------------------

def details(client, source) -> str:
    return page_text(client.get(f"/admin/directory/details/?id={source.id}").get_data(as_text=True))


def press(client, source, path: str, data: dict | None = None):
    page = client.get(f"/admin/directory/details/?id={source.id}").get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_from(page), **(data or {})})


def add_run(session, source, status: SyncRunStatus, **values) -> DirectorySyncRun:
    with unit_of_work(session):
        run = DirectorySyncRun(source_id=source.id, status=status, **values)
        session.add(run)
    return run


def test_schedules_are_set_on_the_form_in_the_servers_time_with_clear_messages(maintainer_client, session,
                                                                                ldap_server):
    form = maintainer_client.get("/admin/directory/new/").get_data(as_text=True)
    assert f"The server&#39;s local time: {server_zone()}" in form or \
        f"The server's local time: {server_zone()}" in form
    refused = maintainer_client.submit("/admin/directory/new/", source_form(
        ldap_server, full_sync_at="25:00", changes_every_minutes="2"))
    html = refused.get_data(as_text=True)
    assert refused.status_code == 200 and session.query(DirectorySource).count() == 0
    assert TIME_MESSAGE in unescape(html) and MINUTES_MESSAGE in unescape(html)

    saved = maintainer_client.submit("/admin/directory/new/", source_form(
        ldap_server, full_sync_at="2:30", changes_every_minutes="60"))
    assert saved.status_code == 302
    source = session.query(DirectorySource).one()
    assert (source.full_sync_at, source.changes_every_minutes) == ("02:30", 60)
    page = details(maintainer_client, source)
    assert (f"Schedule: full sync every night at 02:30 (server time, {server_zone()}), next within a "
            "minute; changes every 60 minutes, next within a minute") in page

    due = datetime(2027, 1, 15, 1, 30)
    change(session, source, full_sync_due_at=due, changes_due_at=due)
    edited = maintainer_client.submit(f"/admin/directory/edit/?id={source.id}", source_form(
        ldap_server, bind_password="", full_sync_at="02:30", changes_every_minutes="30"))
    assert edited.status_code == 302
    session.expire_all()
    source = session.get(DirectorySource, source.id)
    # A changed schedule is counted again from now; the unchanged one keeps its due time.
    assert (source.changes_every_minutes, source.changes_due_at, source.full_sync_due_at) == (30, None, due)


def test_the_runs_of_a_source_in_plain_words_and_a_get_writes_nothing(maintainer_client, maintainer, session,
                                                                      ldap_server):
    ldap_server.add_user("words", given="Wanda", sn="Words", mail="wanda@example.com")
    source = make_source(session, maintainer, ldap_server)
    long_ago = utcnow() - timedelta(hours=1)
    add_run(session, source, SyncRunStatus.SUCCEEDED, scheduled=True, created=5, processed=5, total=5)
    add_run(session, source, SyncRunStatus.INTERRUPTED, created=20, processed=20, total=100,
            message="Interrupted: the worker running it stopped answering.")
    add_run(session, source, SyncRunStatus.CANCELLED, message="Cancelled before a worker started it.")
    dead = add_run(session, source, SyncRunStatus.RUNNING, started_by_id=maintainer.id, processed=40,
                   total=100, created=40, worker="host:1:1", heartbeat_at=long_ago)
    page = details(maintainer_client, source)
    assert "started by: Mia Maintainer — Running — its worker has not answered since" in page
    assert "it will be marked interrupted" in page and "40 / 100" in page
    assert "Interrupted: its worker stopped" in page and "Cancelled" in page
    assert "started by: schedule — Finished" in page and "started by: command line" in page
    assert "Cancel" in page and "Resume" not in page  # only the latest run, when it ended early
    assert "A run of this source is queued or running" in page
    polled = maintainer_client.get(f"/admin/directory/runs/{dead.id}.json").get_json()
    assert polled["status"] == "running" and polled["state"].startswith("Running — its worker has not")
    session.expire_all()
    assert session.get(DirectorySyncRun, dead.id).status == SyncRunStatus.RUNNING  # the GETs wrote nothing

    # Start: the dead run is marked interrupted (its lease lapsed long ago), a new one runs.
    started = press(maintainer_client, source, f"/admin/directory/start/{source.id}", {"mode": "import"})
    assert started.status_code == 302
    session.expire_all()
    assert session.get(DirectorySyncRun, dead.id).status == SyncRunStatus.INTERRUPTED
    latest = session.scalar(select(DirectorySyncRun).order_by(DirectorySyncRun.id.desc()))
    assert latest.id != dead.id and latest.status == SyncRunStatus.SUCCEEDED and latest.created == 1

    # Cancel on a run whose worker stopped answering ends it at once (no worker will see the request).
    silent = add_run(session, source, SyncRunStatus.RUNNING, worker="host:2:2", heartbeat_at=long_ago)
    press(maintainer_client, source, f"/admin/directory/cancel/{silent.id}")
    session.expire_all()
    assert session.get(DirectorySyncRun, silent.id).status == SyncRunStatus.CANCELLED
    assert "The run was cancelled: its worker had stopped answering." in details(maintainer_client, source)

    # The lease check each minute: a run from before the leases (it never beat) is interrupted too.
    old_style = add_run(session, source, SyncRunStatus.RUNNING)
    interrupt_dead_runs()
    session.expire_all()
    assert session.get(DirectorySyncRun, old_style.id).status == SyncRunStatus.INTERRUPTED


def test_cancel_a_queued_run_and_resume_an_interrupted_one_from_the_page(maintainer_client, maintainer,
                                                                          session, ldap_server):
    for n in range(3):
        ldap_server.add_user(f"res{n}", given="Res", sn=f"Umed{n}", mail=f"res{n}@example.com")
    source = make_source(session, maintainer, ldap_server)
    waiting = add_run(session, source, SyncRunStatus.QUEUED)
    assert "Queued: waiting for a worker" in details(maintainer_client, source)
    again = press(maintainer_client, source, f"/admin/directory/start/{source.id}", {"mode": "import"})
    assert again.status_code == 302
    assert "An import of this source is already running." in details(maintainer_client, source)
    press(maintainer_client, source, f"/admin/directory/cancel/{waiting.id}")
    session.expire_all()
    assert session.get(DirectorySyncRun, waiting.id).status == SyncRunStatus.CANCELLED
    assert "The run was cancelled before it started." in details(maintainer_client, source)

    press(maintainer_client, source, f"/admin/directory/start/{source.id}", {"mode": "import"})
    first = wait_for(session, after=waiting)
    assert first.created == 3
    with unit_of_work(session):  # as the lease check leaves a run whose worker died after its batches
        first.status = SyncRunStatus.INTERRUPTED
    assert "Resume" in details(maintainer_client, source)
    press(maintainer_client, source, f"/admin/directory/resume/{waiting.id}")  # not the latest run
    assert "Only the latest run of a source" in details(maintainer_client, source)
    press(maintainer_client, source, f"/admin/directory/resume/{first.id}")
    resumed = wait_for(session, after=first)
    assert resumed.status == SyncRunStatus.SUCCEEDED and resumed.resumes_id == first.id
    assert (resumed.created, resumed.updated, resumed.unchanged) == (3, 0, 0)
    page = details(maintainer_client, source)
    assert f"continues run #{first.id}" in page and "the 3 entries it had written were found in place" in page
    assert session.scalar(select(func.count()).select_from(Customer)) == 3


def test_cli_sync_refuses_a_second_run_and_can_hand_one_to_the_workers(app, session, maintainer, ldap_server):
    ldap_server.add_user("cli1", given="Cli", sn="User", mail="cli1@example.com")
    source = make_source(session, maintainer, ldap_server, name="cron-ad")
    waiting = add_run(session, source, SyncRunStatus.QUEUED)
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["directory", "sync", "cron-ad"])
    assert refused.exit_code == 1 and refused.stderr.strip() == "An import of this source is already running."
    with unit_of_work(session):
        waiting.status = SyncRunStatus.CANCELLED
    queued = runner.invoke(args=["directory", "sync", "cron-ad", "--queue"])
    assert queued.exit_code == 0 and "Queued run #" in queued.output
    run = wait_for(session, after=waiting)  # here jobs run at once; a worker runs them otherwise
    assert run.status == SyncRunStatus.SUCCEEDED and run.created == 1 and run.started_by_id is None


def test_a_runs_report_shows_changes_as_the_history_does(maintainer_client, maintainer, session, ldap_server):
    source = make_source(session, maintainer, ldap_server)
    with unit_of_work(session):
        maintainer.time_zone = "America/New_York"
    add_run(session, source, SyncRunStatus.SUCCEEDED, dry_run=True,
            started_at=datetime(2025, 1, 15, 13, 45, 30),
            changes=[{"name": "Words, Wanda", "account": "words", "fields": [
                {"field": "primary_phone", "label": "Primary phone", "old": None, "new": "+421903123456"},
                {"field": "title", "label": "Title", "old": "Clerk", "new": "Senior Clerk"},
                {"field": "is_active", "label": "Active", "old": True, "new": False},
                {"label": "status (no longer found)"},
                "title",  # the oldest reports: a field's name alone
            ]}])
    page = details(maintainer_client, source)
    assert "Would change (1 shown) Words, Wanda (words)" in page
    assert "Primary phone: — → +421 903 123 456" in page and "Title: Clerk → Senior Clerk" in page
    assert "Active: Yes → No" in page and "Status: deactivated (no longer in the directory)" in page
    assert "Jan 15, 2025 08:45, started by: command line" in page and "UTC" not in page.split("Runs")[1]
