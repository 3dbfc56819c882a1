"""The directory import against a real OpenLDAP server shaped like AD, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from models import (
    AuditEvent,
    Contact,
    Customer,
    CustomerStatus,
    Department,
    DirectorySource,
    DirectorySyncRun,
    SlaLevel,
)
from models.enums import CustomerKind, DirectoryTarget, SyncRunStatus
from services.contacts import CONTACT_EMAIL_NEEDED, delete_contact
from services.customers import SaveOptions
from services.directory.mapping import DEFAULT_FILTER
from services.directory.pipeline import SyncOptions, run_queued, sync_directory
from services.directory.runs import resume_run
from services.directory.sources import check_connection, save_source
from services.limits import max_length
from services.secrets import SecretBox
from services.transactions import unit_of_work
from testing.ldap_server import LdapServer, LdapUnavailable
from tests.conftest import ENCRYPTION_KEY, unavailable, written

BOX = SecretBox(ENCRYPTION_KEY)
OPTIONS = SaveOptions("SK")
MAIN_CONTACT = {"first_name": "Main", "last_name": "Contact", "email": "main@example.com", "is_main": True}


def make_source(session, actor, server, **overrides) -> DirectorySource:
    password = overrides.pop("password", server.service_password)
    rules = overrides.pop("rules", None)
    fields = {"name": "Corporate AD", "server_urls": server.url, "use_starttls": True,
              "verify_certificate": True, "ca_file": server.ca_file, "bind_dn": server.service_dn,
              "base_dn": server.base_dn, "search_filter": DEFAULT_FILTER, "page_size": 300,
              "attribute_map": {}, "target": DirectoryTarget.PERSONS, "office_maps_to": "site",
              "max_deactivate_percent": 10}
    source = DirectorySource(**{**fields, **overrides})
    return written(session, lambda: save_source(session, actor, source, BOX, bind_password=password,
                                                rules=rules))


def sync(session, source, **options):
    return sync_directory(session, source, BOX, None, SyncOptions(**options), OPTIONS)


def counts(run) -> tuple[int, int, int, int, int]:
    return run.created, run.updated, run.unchanged, run.deactivated, run.failed


def person(session, sam: str) -> Customer:
    return session.scalar(select(Customer).where(Customer.sam_account_name == sam))


def test_a_big_directory_is_imported_through_paged_search_with_forward_managers(
        session, maintainer, big_directory):
    source = make_source(session, maintainer, big_directory.server)
    run = sync(session, source)
    assert run.status == SyncRunStatus.SUCCEEDED, run.message
    assert run.total == big_directory.count and run.processed == big_directory.count
    assert counts(run) == (big_directory.count, 0, 0, 0, 0)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Customer)) == big_directory.count
    first = person(session, "u0001")
    assert first.manager is not None  # its manager came 2,000 entries later in the listing
    assert first.manager.sam_account_name == big_directory.managers["u0001"]
    assert person(session, big_directory.head_sam).manager is None
    assert person(session, big_directory.disabled_sam).status.is_active is False
    stastna = person(session, big_directory.non_ascii_sam)
    assert (stastna.first_name, stastna.last_name) == ("Ľubica", "Šťastná")
    assert first.email == "u0001@example.com" and first.primary_phone.startswith("+4212")
    assert first.department is not None and first.department.name in {d.name for d in session.scalars(
        select(Department))}

    again = sync(session, source)  # idempotent: nothing written the second time
    assert counts(again) == (0, 0, big_directory.count, 0, 0)
    assert session.scalar(select(func.count()).select_from(Customer)) == big_directory.count


def test_changes_removals_local_edits_and_re_enabling(session, maintainer, ldap_server):
    server = ldap_server
    boss_dn = server.add_user("boss", given="Bea", sn="Boss", mail="boss@example.com", title="Director")
    worker_dn = server.add_user("worker", given="Walter", sn="Worker", mail="walter@example.com",
                                title="Clerk", department="Finance", manager_dn=boss_dn,
                                office="Bratislava HQ")
    leaver_dn = server.add_user("leaver", given="Lea", sn="Leaver", mail="lea@example.com")
    for n in range(10):  # so that one deactivation at a time stays under the 10 % hold
        server.add_user(f"extra{n}", given="Extra", sn=f"Person{n}")
    source = make_source(session, maintainer, server)
    assert counts(sync(session, source)) == (13, 0, 0, 0, 0)
    worker = person(session, "worker")
    assert (worker.manager.last_name, worker.site.name, worker.department.name) == ("Boss", "Bratislava HQ",
                                                                                   "Finance")
    with unit_of_work(session):
        gold = SlaLevel(name="Gold")
        session.add(gold)
        worker.notes, worker.sla_level = "Prefers phone calls", gold  # local fields
        worker.title = "Edited locally"  # a directory field: the directory wins

    server.modify(worker_dn, {"title": "Senior Clerk"})
    server.delete(leaver_dn)
    run = sync(session, source)
    assert counts(run) == (0, 1, 11, 1, 0), run.errors
    assert {"name": "Worker, Walter", "account": "worker", "fields": [
        {"field": "title", "label": "Title", "old": "Edited locally", "new": "Senior Clerk"}]} in run.changes
    session.expire_all()
    worker = person(session, "worker")
    assert worker.title == "Senior Clerk"
    assert worker.notes == "Prefers phone calls" and worker.sla_level.name == "Gold"
    leaver = person(session, "leaver")
    assert leaver is not None and leaver.status.is_active is False  # kept, never deleted

    server.modify(worker_dn, {"userAccountControl": 514})
    assert counts(sync(session, source))[3] == 1
    session.expire_all()
    assert person(session, "worker").status.is_active is False
    server.modify(worker_dn, {"userAccountControl": 512})
    reenabled = sync(session, source)
    assert reenabled.created == 0 and reenabled.updated == 1
    session.expire_all()
    assert person(session, "worker").status.is_active is True
    assert session.scalar(select(func.count()).select_from(Customer)) == 13  # nobody duplicated
    history = session.scalars(select(AuditEvent).where(AuditEvent.entity_type == "customer",
                                                       AuditEvent.entity_id == worker.id)).all()
    # The import saves through the customers' command: its audit events, a status change too.
    assert {e.action for e in history} == {"create", "update", "status_change"}
    assert all(e.actor_label == "system" for e in history)


def test_the_dry_run_writes_nothing_and_reports_what_the_import_would_do(session, maintainer, ldap_server):
    ldap_server.add_user("anna", given="Anna", sn="Nová", mail="anna@example.com")
    nameless = ldap_server.add_user("nameless", given="No", sn="Nobody")
    ldap_server.modify(nameless, {"givenName": None})
    source = make_source(session, maintainer, ldap_server)
    preview = sync(session, source, dry_run=True)
    assert preview.status == SyncRunStatus.SUCCEEDED and preview.dry_run
    assert counts(preview) == (1, 0, 0, 0, 1)
    assert "no first name" in preview.errors[0]["message"]
    assert session.scalar(select(func.count()).select_from(Customer)) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.entity_type == "customer")) == 0
    real = sync(session, source)
    assert counts(real) == counts(preview)  # preview and import cannot disagree


def test_matching_by_sam_account_name_then_email_links_hand_made_records(session, maintainer, ldap_server,
                                                                          new_customer):
    ldap_server.add_user("jkral", given="Ján", sn="Kráľ", mail="jan.kral@example.com", title="CFO")
    ldap_server.add_user("mnova", given="Mária", sn="Nová", mail="Maria.Nova@Example.com")
    by_sam = new_customer(kind=CustomerKind.PERSON, first_name="Jan", last_name="Kral",
                          sam_account_name="jkral", notes="entered by hand")
    by_mail = new_customer(kind=CustomerKind.PERSON, first_name="Maria", last_name="Nova",
                           email="maria.nova@example.com")
    run = sync(session, make_source(session, maintainer, ldap_server))
    assert counts(run) == (0, 2, 0, 0, 0)
    session.expire_all()
    assert session.get(Customer, by_sam.id).directory_guid is not None
    assert session.get(Customer, by_sam.id).last_name == "Kráľ"
    assert session.get(Customer, by_sam.id).notes == "entered by hand"
    assert session.get(Customer, by_mail.id).sam_account_name == "mnova"


def test_a_run_that_would_deactivate_too_many_holds_until_confirmed(session, maintainer, ldap_server):
    dns = [ldap_server.add_user(f"user{n}", given="User", sn=f"Number{n}") for n in range(5)]
    source = make_source(session, maintainer, ldap_server)
    sync(session, source)
    ldap_server.delete(dns[0])
    ldap_server.delete(dns[1])
    held = sync(session, source)
    assert held.status == SyncRunStatus.FAILED and "2 of the source's 5" in held.message
    assert counts(held) == (0, 0, 0, 0, 0)
    active = select(func.count()).select_from(Customer).join(CustomerStatus).where(CustomerStatus.is_active)
    assert session.scalar(active) == 5
    confirmed = sync(session, source, confirm_deactivation=True)
    assert confirmed.status == SyncRunStatus.SUCCEEDED and confirmed.deactivated == 2
    assert session.scalar(active) == 3


def test_incremental_runs_fetch_only_what_changed(session, maintainer, ldap_server):
    dns = [ldap_server.add_user(f"inc{n}", given="Inc", sn=f"Person{n}", title="Old") for n in range(4)]
    source = make_source(session, maintainer, ldap_server)
    sync(session, source)
    ldap_server.modify(dns[2], {"title": "New"})
    run = sync(session, source, full=False)
    assert run.incremental and run.total == 1 and counts(run) == (0, 1, 0, 0, 0)
    assert sync(session, source, full=False).total == 0


def test_people_as_contacts_of_companies_chosen_by_rules(session, maintainer, ldap_server, new_customer):
    acme = new_customer(kind=CustomerKind.COMPANY, company_name="ACME s.r.o.", contacts=[MAIN_CONTACT])
    beta = new_customer(kind=CustomerKind.COMPANY, company_name="Beta a.s.", contacts=[MAIN_CONTACT])
    ldap_server.add_user("sales1", given="Sára", sn="Predajná", department="Sales", mail="sara@example.com")
    ldap_server.add_user("con1", given="Karol", sn="Externý", ou="Contractors", mail="karol@example.com")
    ldap_server.add_user("it1", given="Igor", sn="Technik", department="IT")
    source = make_source(session, maintainer, ldap_server, target=DirectoryTarget.CONTACTS,
                         rules=f"ou = Contractors -> {beta.id}\ndepartment = sales -> {acme.id}")
    run = sync(session, source)
    assert counts(run) == (2, 0, 0, 0, 1) and "no company rule matches" in run.errors[0]["message"]
    contacts = {c.last_name: c.customer.company_name
                for c in session.scalars(select(Contact).where(Contact.directory_guid.is_not(None)))}
    assert contacts == {"Predajná": "ACME s.r.o.", "Externý": "Beta a.s."}
    assert counts(sync(session, source)) == (0, 0, 2, 0, 1)
    # A title longer than the contact's column (AD's 128): that account alone is refused, field named.
    ldap_server.add_user("sales2", given="Dlhý", sn="Titul", department="Sales", mail="dlhy@example.com",
                         title="T" * 129)
    run = sync(session, source)
    assert counts(run) == (0, 0, 2, 0, 2)
    refused = {e["account"]: e["message"] for e in run.errors}
    assert refused["sales2"] == "Title has 129 characters, at most 128"
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Contact).where(Contact.last_name == "Titul")) == 0
    assert len(session.get(Customer, acme.id).contacts) == 2  # its main contact and Sára


@pytest.mark.parametrize(("change", "message"), [
    ({"password": "wrong-password"}, "refused the bind DN or password"),
    ({"server_urls": "ldap://127.0.0.1:9"}, "No directory server answered"),
    ({"base_dn": "ou=Missing,dc=example,dc=test"}, "does not exist"),
    ({"ca_file": None}, "TLS"),
    ({"ca_file": "/nonexistent/ca.pem"}, "The CA file /nonexistent/ca.pem does not exist"),
])
def test_clear_errors_and_a_report_instead_of_a_500(session, maintainer, ldap_server, change, message):
    ldap_server.add_user("anna", given="Anna", sn="Nová")
    change = dict(change)  # the parameter is shared by the SQLite and PostgreSQL runs
    password = change.pop("password", None)
    source = make_source(session, maintainer, ldap_server, **({"password": password} if password else {}))
    with unit_of_work(session):
        for key, value in change.items():
            setattr(source, key, value)
    run = sync(session, source)
    assert run.status == SyncRunStatus.FAILED and message in run.message, run.message
    assert session.scalar(select(func.count()).select_from(Customer)) == 0
    tested = check_connection(source, BOX)
    assert tested.ok is False and message in tested.message


def test_test_connection_explains_a_ca_file_that_is_no_certificate(session, maintainer, ldap_server,
                                                                    tmp_path):
    not_pem = tmp_path / "corporate-ca.pem"
    not_pem.write_text("not a certificate\n")
    source = make_source(session, maintainer, ldap_server, ca_file=str(not_pem))
    report = check_connection(source, BOX)
    assert report.ok is False and f"The CA file {not_pem} holds no certificate" in report.message


def test_test_connection_counts_and_samples(session, maintainer, ldap_server):
    ldap_server.add_user("anna", given="Anna", sn="Nová", department="Sales", mail="anna@example.com")
    ldap_server.add_user("boris", given="Boris", sn="Malý")
    source = make_source(session, maintainer, ldap_server)
    report = check_connection(source, BOX)
    assert report.ok and report.count == 2 and "matches 2 entries" in report.message
    assert {s["name"] for s in report.sample} == {"Nová, Anna", "Malý, Boris"}
    one = check_connection(source, BOX, account="anna)(sAMAccountName=*")  # escaped, matches nobody
    assert one.ok and one.count == 0
    assert check_connection(source, BOX, account="anna").count == 1


def test_a_page_size_above_the_servers_limit_is_a_clear_error(session, maintainer):
    server = LdapServer(page_limit=100)  # the most entries this server gives per page
    try:
        server.start()
    except LdapUnavailable as exc:
        unavailable(f"LDAP: {exc}")
    try:
        for n in range(3):
            server.add_user(f"lim{n}", given="Lim", sn=f"It{n}")
        run = sync(session, make_source(session, maintainer, server, page_size=500))
        assert run.status == SyncRunStatus.FAILED
        assert "size limit" in run.message and "page size" in run.message
        assert session.scalar(select(func.count()).select_from(Customer)) == 0
    finally:
        server.stop()


def test_a_failure_part_way_keeps_the_written_batches_and_a_rerun_completes(session, maintainer, ldap_server,
                                                                            monkeypatch):
    from services.directory import targets

    for n in range(10):
        ldap_server.add_user(f"part{n:02d}", given="Part", sn=f"Way{n:02d}")
    source = make_source(session, maintainer, ldap_server, page_size=4)
    save = targets.PersonTarget.save

    def broken(self, record, actor):  # the database goes away while the third page is written
        if record.last_name == "Way09":
            raise RuntimeError("connection to the database lost")
        return save(self, record, actor)

    monkeypatch.setattr(targets.PersonTarget, "save", broken)
    with pytest.raises(RuntimeError):
        sync(session, source)
    failed = session.scalars(select(DirectorySyncRun)).one()
    assert failed.status == SyncRunStatus.FAILED and "Resume completes the rest" in failed.message
    written = session.scalar(select(func.count()).select_from(Customer))
    assert written == 8  # two whole pages; nothing of the third
    assert (failed.processed, failed.created) == (8, 8)  # the counts of what it committed
    monkeypatch.setattr(targets.PersonTarget, "save", save)
    # Resume: the directory is read again; what the failed run wrote is found in place and
    # counted as that run counted it, the rest is written.
    with unit_of_work(session):
        resumed = resume_run(session, failed, maintainer)
    done = run_queued(session, resumed.id, BOX, OPTIONS)
    assert done.status == SyncRunStatus.SUCCEEDED, done.message
    assert counts(done) == (10, 0, 0, 0, 0) and done.resumes_id == failed.id
    assert f"Continued run #{failed.id}: the 8 entries it had written" in done.message
    assert session.scalar(select(func.count()).select_from(Customer)) == 10
    rerun = sync(session, source)  # a plain rerun finds everyone in place
    assert (rerun.created, rerun.unchanged) == (0, 10)


def test_a_value_longer_than_its_column_refuses_that_account_and_the_import_goes_on(
        session, maintainer, ldap_server):
    title_limit, location_limit = max_length(Customer.title), max_length(Customer.location_code)
    assert (title_limit, location_limit) == (128, 128)  # as long as AD allows: OpenLDAP allows more
    ldap_server.add_user("longtitle", given="Dlhý", sn="Titul", title="T" * 129)
    ldap_server.add_user("longoffice", given="Dlhá", sn="Kancelária", office="O" * (location_limit + 1))
    ldap_server.add_user("longdept", given="Dlhé", sn="Oddelenie", department="D" * 121)
    ldap_server.add_user("fine", given="Dobrý", sn="Účet", title="Clerk", office="HQ", department="IT")
    source = make_source(session, maintainer, ldap_server, office_maps_to="location")
    expected = {"longtitle": "Title has 129 characters, at most 128",
                "longoffice": "Location ID (physicalDeliveryOfficeName) has 129 characters, at most 128",
                "longdept": "Department has 121 characters, at most 120"}
    for dry_run in (True, False):  # the preview says the same as the import
        run = sync(session, source, dry_run=dry_run)
        assert run.status == SyncRunStatus.SUCCEEDED, run.message
        assert counts(run) == (1, 0, 0, 0, 3)
        assert {e["account"]: e["message"] for e in run.errors} == expected
        assert all(e["skipped"] and e["dn"].startswith("cn=") for e in run.errors)
        assert {e["account"]: e["name"] for e in run.errors}["longtitle"] == "Titul, Dlhý"
    session.expire_all()
    fine = person(session, "fine")
    assert [c.sam_account_name for c in session.scalars(select(Customer))] == ["fine"]
    assert (fine.title, fine.location_code, fine.department.name) == ("Clerk", "HQ", "IT")
    assert [d.name for d in session.scalars(select(Department))] == ["IT"]  # none cut to 120


def test_a_contact_keeps_its_companys_last_email_as_on_every_door(session, maintainer, ldap_server,
                                                                  new_customer):
    acme = new_customer(kind=CustomerKind.COMPANY, company_name="ACME s.r.o.", contacts=[MAIN_CONTACT])
    dn = ldap_server.add_user("sales1", given="Sára", sn="Predajná", department="Sales",
                              mail="sara@example.com")
    # "clear": an e-mail removed in the directory is removed here too (the default keeps it)
    source = make_source(session, maintainer, ldap_server, target=DirectoryTarget.CONTACTS,
                         rules=f"department = sales -> {acme.id}", empty_values="clear")
    assert counts(sync(session, source)) == (1, 0, 0, 0, 0)
    main = session.scalar(select(Contact).where(Contact.directory_guid.is_(None)))
    written(session, lambda: delete_contact(session, main, None))  # Sára: the only e-mail left
    ldap_server.modify(dn, {"mail": None, "title": "Seller"})
    run = sync(session, source)
    assert counts(run) == (0, 0, 0, 0, 1)
    assert run.errors[0]["account"] == "sales1" and CONTACT_EMAIL_NEEDED in run.errors[0]["message"]
    session.expire_all()
    sara = session.scalar(select(Contact).where(Contact.sam_account_name == "sales1"))
    assert (sara.email, sara.title) == ("sara@example.com", None)
