"""Directory sources through the admin panel and the CLI: maintainers only, the password kept
encrypted and never shown, Test connection, a dry run and an import started from the page with
progress to poll, and `flask directory sync` for schedulers."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from models import Customer, DirectorySource, DirectorySyncRun
from models.enums import SyncRunStatus
from services.secrets import SecretBox
from services.transactions import unit_of_work
from tests.conftest import ENCRYPTION_KEY, csrf_from
from tests.test_directory_import import make_source


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
        if run is not None and run is not after and run.status != SyncRunStatus.RUNNING:
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
