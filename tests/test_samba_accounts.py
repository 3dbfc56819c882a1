"""Which accounts of a real Active Directory (the Samba AD DC tier) an import takes, on SQLite and
PostgreSQL: built-in, computer and service accounts are left out — neither failed nor imported, on
every run — as are the OUs and account names a source lists; expired accounts count as disabled;
disabled and expired accounts become inactive contacts and the next run is not held for them; Test
connection's sample says which accounts an import would leave out, and why."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import ldap3
from sqlalchemy import func, select

from models import Contact, Customer, DirectorySource, DirectorySyncRun
from models.enums import CustomerKind, DirectoryTarget, SyncRunStatus
from services.customers import SaveOptions
from services.directory.mapping import BUILT_IN, SERVICE, filetime
from services.directory.pipeline import SyncOptions, sync_directory
from services.directory.sources import check_connection, save_source
from services.secrets import SecretBox
from tests.conftest import ENCRYPTION_KEY, csrf_from, written
from tests.samba_fixtures import fresh_samba_dc, samba_dc  # noqa: F401
from tests.served_app import page_text

BOX = SecretBox(ENCRYPTION_KEY)
OPTIONS = SaveOptions("SK")
# Every account but the people after u0999 (a third of the DC: runs cost seconds per thousand),
# computers too: a filter a maintainer may well write.
EVERY_USER = "(&(objectClass=user)(|(sAMAccountName=u0*)(!(sAMAccountName=u*))))"
BUILT_INS = {"Administrator", "Guest", "krbtgt"}
MAIN_CONTACT = {"first_name": "Main", "last_name": "Contact", "email": "main@example.com", "is_main": True}


def make_source(session, actor, dc, **overrides) -> DirectorySource:
    source = DirectorySource(**dc.source_fields(**overrides))
    return written(session, lambda: save_source(session, actor, source, BOX, bind_password=dc.password))


def sync(session, source, **options) -> DirectorySyncRun:
    return sync_directory(session, source, BOX, None, SyncOptions(**options), OPTIONS)


def reported(run: DirectorySyncRun) -> set[str]:
    """The accounts a run reports as failed or warned."""
    return {e["account"] for e in run.errors or [] if e.get("account")}


def accounts_outside_staff(dc) -> set[str]:
    """Every account (objectClass=user) of the DC that is not one of the people under OU=Staff."""
    conn = dc.connection()
    try:
        found = conn.extend.standard.paged_search(dc.base_dn, EVERY_USER, attributes=["sAMAccountName"],
                                                  paged_size=1000, generator=False)
        sams = {e["raw_attributes"]["sAMAccountName"][0].decode() for e in found
                if e.get("type") == "searchResEntry"}
    finally:
        conn.unbind()
    return {sam for sam in sams if sam not in dc.people}


def first_thousand(dc) -> list:
    """The people EVERY_USER reads: u0001 … u0999."""
    return [p for p in dc.people.values() if p.sam.startswith("u0")]


def modify(dc, sam: str, changes: dict) -> None:
    conn = dc.connection()
    try:
        conn.modify(dc.people[sam].dn, {k: [(ldap3.MODIFY_REPLACE, v)] for k, v in changes.items()})
    finally:
        conn.unbind()


def last_run(session, timeout: float = 300) -> DirectorySyncRun:
    """The latest run, once it has ended (started from the page: jobs run at once in tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.expire_all()
        run = session.scalar(select(DirectorySyncRun).order_by(DirectorySyncRun.id.desc()))
        if run is not None and not run.status.is_active:
            return run
        time.sleep(0.2)
    raise AssertionError("the run did not end")


def customer(session, sam: str) -> Customer | None:
    return session.scalar(select(Customer).where(Customer.sam_account_name == sam))


def enabled_people(people) -> list[str]:
    return [p.sam for p in people if not p.disabled and not p.expired]


def test_built_in_computer_and_service_accounts_are_left_out_on_every_run_and_expired_is_disabled(
        session, maintainer, fresh_samba_dc):  # noqa: F811
    dc = fresh_samba_dc
    outside = accounts_outside_staff(dc)
    assert BUILT_INS | set(dc.service_sams) | set(dc.computer_sams) <= outside
    source = make_source(session, maintainer, dc, search_filter=EVERY_USER)
    first = sync(session, source)
    assert first.status == SyncRunStatus.SUCCEEDED, first.message
    # Left out: neither failed (as the built-ins and computers without names were, on every
    # run) nor imported (as svc-backup, who has a name, was) — and counted.
    assert first.left_out == len(outside) and not reported(first) & outside
    people = first_thousand(dc)
    assert first.total == len(people) + len(outside)
    assert first.created == len(people) - first.failed
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Customer).where(
        Customer.sam_account_name.in_(outside))) == 0
    # accountExpires in the past: imported inactive, like a disabled account.
    expired = [p.sam for p in people if p.expired]
    assert expired and all(not customer(session, sam).status.is_active for sam in expired)
    assert all(not customer(session, p.sam).status.is_active for p in people if p.disabled)
    expiring, serving, staying = enabled_people(people)[1:4]
    assert customer(session, expiring).status.is_active and customer(session, serving).status.is_active

    # An account expires since; another gets a servicePrincipalName (a service account now).
    modify(dc, expiring, {"accountExpires": [str(filetime(datetime.now(UTC) - timedelta(hours=1)))]})
    modify(dc, serving, {"servicePrincipalName": ["HTTP/intranet.cd.test"]})
    second = sync(session, source)
    assert second.status == SyncRunStatus.SUCCEEDED, second.message  # 2 of some 900: not held
    assert (second.created, second.deactivated, second.left_out) == (0, 2, len(outside) + 1)
    assert not reported(second) & (outside | {serving})
    name = str(customer(session, serving))
    said = [str(f) for c in second.changes for f in c["fields"] if c["name"] == name]
    assert len(said) == 1 and "left out by the source's rule" in said[0]
    session.expire_all()
    assert not customer(session, expiring).status.is_active
    assert not customer(session, serving).status.is_active
    assert customer(session, staying).status.is_active

    third = sync(session, source)  # and again: nothing more to do, the same accounts left out
    assert third.status == SyncRunStatus.SUCCEEDED, third.message
    assert (third.created, third.updated, third.deactivated, third.left_out) == (0, 0, 0, len(outside) + 1)
    assert not reported(third) & (outside | {serving})


def test_disabled_and_expired_accounts_become_inactive_contacts_and_the_next_run_is_not_held(
        session, maintainer, new_customer, samba_dc):  # noqa: F811
    dc = samba_dc
    company = new_customer(maintainer, kind=CustomerKind.COMPANY, company_name="Example s.r.o.",
                           contacts=[MAIN_CONTACT])
    source = make_source(session, maintainer, dc, target=DirectoryTarget.CONTACTS,
                         target_company_id=company.id)
    first = sync(session, source)
    assert first.status == SyncRunStatus.SUCCEEDED, first.message
    assert first.left_out == len(BUILT_INS) + len(dc.service_sams)  # the default filter has no computers
    session.expire_all()
    contacts = {c.sam_account_name: c for c in session.scalars(select(Contact).where(
        Contact.directory_source_id == source.id))}
    assert not set(contacts) & (BUILT_INS | set(dc.service_sams))
    inactive = set(dc.disabled_sams) | set(dc.expired_sams)
    assert len(dc.disabled_sams) * 100 > 10 * dc.count  # more than the 10 % a run may deactivate
    assert {sam for sam, c in contacts.items() if not c.is_active} == inactive
    assert all(contacts[sam].is_active for sam in enabled_people(dc.people.values()) if sam in contacts)

    second = sync(session, source)  # not held: those contacts are inactive already
    assert second.status == SyncRunStatus.SUCCEEDED, second.message
    assert (second.created, second.deactivated, second.left_out) == (0, 0, first.left_out)
    assert second.unchanged == len(contacts)


def test_the_page_edits_the_rule_and_test_connection_and_a_dry_run_show_what_is_left_out(
        app, maintainer_client, maintainer, session, samba_dc):  # noqa: F811
    dc = samba_dc
    form = {"name": "Samba AD", "server_urls": dc.url, "verify_certificate": "y", "ca_file": dc.ca_file,
            "bind_dn": dc.admin_dn, "bind_password": dc.password, "base_dn": dc.base_dn,
            "search_filter": f"(&{EVERY_USER}(!(sAMAccountName=*$)))", "page_size": "500",
            "attribute_mapping": "", "target": "persons", "company_rules_text": "", "office_maps_to": "site",
            "max_deactivate_percent": "10", "is_active": "y", "exclude_system_accounts": "y"}
    new = maintainer_client.get("/admin/directory/new/").get_data(as_text=True)
    checkbox = re.search(r'<input[^>]*name="exclude_system_accounts"[^>]*>', new)
    assert checkbox is not None and "checked" in checkbox.group(0)  # on for a new source
    refused = maintainer_client.submit("/admin/directory/new/", {
        **form, "exclude_ous": "OU=Legal\nLegal people", "exclude_accounts": "OU=Service Accounts"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 200 and "Line 2: write an OU or part of a DN" in html
    assert "Line 1: write an account name" in html
    assert session.scalar(select(func.count()).select_from(DirectorySource)) == 0
    saved = maintainer_client.submit("/admin/directory/new/", {
        **form, "exclude_ous": " OU=Legal,OU=Staff \n\n", "exclude_accounts": "u000?"})
    assert saved.status_code == 302
    source = session.scalar(select(DirectorySource))
    assert (source.exclude_system_accounts, source.exclude_ous, source.exclude_accounts) == (
        True, "OU=Legal,OU=Staff", "u000?")
    people = first_thousand(dc)
    legal = {p.sam for p in people if p.ou == "Legal"}
    named = {f"u000{n}" for n in range(1, 10)}

    page = maintainer_client.get(f"/admin/directory/details/?id={source.id}").get_data(as_text=True)
    token = csrf_from(page)

    def tested(account: str) -> dict:
        answer = maintainer_client.post(f"/admin/directory/test/{source.id}",
                                        data={"csrf_token": token, "account": account}).get_json()
        assert answer["ok"] and answer["count"] == 1, answer
        return answer["sample"][0]

    assert tested("Administrator")["left_out"] == f"left out: {BUILT_IN}"
    assert tested("svc-backup")["left_out"] == f"left out: {SERVICE}"
    assert tested(sorted(legal - named)[0])["left_out"] == "left out: in OU=Legal,OU=Staff"
    assert tested("u0002")["left_out"] == "left out: account name matches u000?"
    expired = tested(sorted({p.sam for p in people if p.expired} - legal)[0])
    assert "left_out" not in expired and expired["expired"] and expired["disabled"]
    everyone = check_connection(source, BOX)
    assert everyone.ok and "leaves out" in everyone.message
    said = app.test_cli_runner().invoke(args=["directory", "test", "Samba AD", "--account", "krbtgt"])
    assert said.exit_code == 0 and f"krbtgt: left out: {BUILT_IN}" in said.output, said.output

    maintainer_client.post(f"/admin/directory/start/{source.id}",
                           data={"csrf_token": token, "mode": "dry-run"})
    preview = last_run(session)
    assert preview.dry_run and preview.status == SyncRunStatus.SUCCEEDED, preview.message
    left_out = len(BUILT_INS) + len(dc.service_sams) + len(legal | named)
    assert preview.left_out == left_out and not reported(preview) & (legal | named | BUILT_INS)
    assert preview.created == len(people) - len(legal | named) - preview.failed
    assert session.scalar(select(func.count()).select_from(Customer)) == 0
    report = page_text(maintainer_client.get(f"/admin/directory/details/?id={source.id}")
                       .get_data(as_text=True))
    assert f"left out {left_out}" in report
    progress = maintainer_client.get(f"/admin/directory/runs/{preview.id}.json").get_json()
    assert progress["left_out"] == left_out
