"""What an import does to values, against a real Active Directory (Samba AD DC, ~3,000 users in
OU=Staff), on SQLite and PostgreSQL: AD's own lengths stored whole (a 128-character title and
office) and a value no field takes skipping that account alone, named, with the run's counts what
it committed; the first link of a record an operator typed keeping (or, as the source says,
clearing) what the directory has no value for; a dry run's report with old → new values; and
every changed field — the manager included — in the audit trail, whichever door changed it."""

from __future__ import annotations

import ldap3
import pytest
from sqlalchemy import func, select

from models import AuditEvent, Customer, DirectorySource
from models.enums import CustomerKind, PhoneType, SyncRunStatus
from services.contact_info import format_phone
from services.customers import update_customer
from services.directory.sources import save_source
from services.errors import ValidationFailed
from testing.samba_population import LONG_OFFICE, LONG_TITLE
from tests.conftest import written
from tests.samba_fixtures import fresh_samba_dc, samba_dc  # noqa: F401
from tests.served_app import page_text
from tests.test_directory_import import BOX, OPTIONS, counts, person, sync

TYPED = {"title": "Typed title", "middle_name": "T", "primary_phone": "+421 2 5941 1234",
         "primary_phone_type": PhoneType.WORK, "secondary_phone": "+421 905 111 222",
         "secondary_phone_type": PhoneType.MOBILE}


def samba_source(session, actor, dc, **overrides) -> DirectorySource:
    """A source reading the people of OU=Staff (the domain's built-in and service accounts are
    another item's business)."""
    source = DirectorySource(**dc.source_fields(**{"base_dn": dc.staff_dn, **overrides}))
    return written(session, lambda: save_source(session, actor, source, BOX, bind_password=dc.password))


def only(*sams: str) -> str:
    return f"(&(objectClass=user)(|{''.join(f'(sAMAccountName={sam})' for sam in sams)}))"


def name_of(dc, sam: str) -> str:
    """"Last, First" of an account without initials (as a customer's name shows it)."""
    entry = dc.people[sam]
    assert entry.initials is None
    return f"{entry.sn}, {entry.given}"


def typed_by_an_operator(new_customer, dc, sam: str, manager: Customer) -> Customer:
    """A person an operator registered by hand before the directory was connected: the same
    e-mail as the account, and what the directory may not know."""
    entry = dc.people[sam]
    return new_customer(kind=CustomerKind.PERSON, first_name=entry.given, last_name=entry.sn,
                        email=entry.mail, manager=manager, notes="typed at the desk", **TYPED)


def audit_of(session, record: Customer) -> dict[str, list]:
    """The changes of the record's update events, field → [old, new] (the last one wins)."""
    found: dict[str, list] = {}
    for event in session.scalars(select(AuditEvent).where(
            AuditEvent.entity_type == "customer", AuditEvent.entity_id == record.id,
            AuditEvent.action == "update").order_by(AuditEvent.id)):
        found.update(event.changes or {})
    return found


def test_ad_lengths_are_stored_whole_and_a_value_no_field_takes_skips_that_account_alone(
        session, maintainer, fresh_samba_dc):  # noqa: F811
    dc = fresh_samba_dc
    # Department read from `description` (AD allows 1,024 characters there; a department name
    # holds 120): one account's description is longer.
    talker, description = "u0022", ("Shared services " * 12).strip()
    with dc.connection() as conn:
        conn.modify(dc.people[talker].dn, {"description": [(ldap3.MODIFY_REPLACE, [description])]})
    source = samba_source(session, maintainer, dc, office_maps_to="location",
                          attribute_map={"department": "description"})
    run = sync(session, source)
    assert run.status == SyncRunStatus.SUCCEEDED, run.message
    assert run.processed == dc.count
    # Nothing stopped the run: the long title and office were imported, the one account whose
    # value fits no field is skipped with its name and why, the rest written.
    assert [(e["account"], e["name"], e["message"], e["skipped"]) for e in run.errors] == [
        (talker, name_of(dc, talker),
         f"Department (description) has {len(description)} characters, at most 120", True)]
    assert counts(run) == (dc.count - 1, 0, 0, 0, 1)
    session.expire_all()
    # The report is what was committed.
    assert session.scalar(select(func.count()).select_from(Customer)) == run.created
    assert person(session, talker) is None
    assert person(session, dc.long_title_sam).title == LONG_TITLE
    assert person(session, dc.long_office_sam).location_code == LONG_OFFICE

    assert person(session, "u0001").department is None  # no description: no department


def test_the_first_link_keeps_what_an_operator_typed_or_clears_it_as_the_source_says(
        session, maintainer, fresh_samba_dc, new_customer):  # noqa: F811
    dc = fresh_samba_dc
    keep_sam, clear_sam = "u0005", "u0007"  # neither has a mobile or initials in the directory
    with dc.connection() as conn:
        for sam in (keep_sam, clear_sam):  # … and now no title, phone or manager either
            conn.modify(dc.people[sam].dn, {attribute: [(ldap3.MODIFY_DELETE, [])]
                                            for attribute in ("title", "telephoneNumber", "manager")})
    boss = new_customer(kind=CustomerKind.PERSON, first_name="Oskar", last_name="Operátorov")
    kept = typed_by_an_operator(new_customer, dc, keep_sam, boss)
    cleared = typed_by_an_operator(new_customer, dc, clear_sam, boss)
    with pytest.raises(ValidationFailed) as refused:
        samba_source(session, maintainer, dc, name="Unclear", empty_values="sometimes")
    assert "empty_values" in refused.value.errors
    keeping = samba_source(session, maintainer, dc, name="Keeping", search_filter=only(keep_sam))
    clearing = samba_source(session, maintainer, dc, name="Clearing", search_filter=only(clear_sam),
                            empty_values="clear")
    assert keeping.empty_values == "keep"  # the default

    assert counts(sync(session, keeping)) == (0, 1, 0, 0, 0)
    assert counts(sync(session, clearing)) == (0, 1, 0, 0, 0)
    session.expire_all()
    kept, cleared = session.get(Customer, kept.id), session.get(Customer, cleared.id)
    assert kept.sam_account_name == keep_sam and kept.directory_guid is not None  # linked by e-mail
    assert kept.department.name == dc.people[keep_sam].ou  # what the directory has, it gives
    assert (kept.title, kept.middle_name, kept.primary_phone, kept.secondary_phone, kept.manager) == (
        "Typed title", "T", "+421259411234", "+421905111222", boss)
    assert (kept.primary_phone_type, kept.secondary_phone_type) == (PhoneType.WORK, PhoneType.MOBILE)
    assert cleared.sam_account_name == clear_sam and cleared.department.name == dc.people[clear_sam].ou
    assert (cleared.title, cleared.middle_name, cleared.primary_phone, cleared.secondary_phone,
            cleared.manager) == (None, None, None, None, None)
    assert cleared.notes == "typed at the desk"  # never the directory's
    # What was cleared is in the audit trail, the manager with its name.
    changes = audit_of(session, cleared)
    assert changes["manager"] == ["Operátorov, Oskar", None]
    assert changes["title"] == ["Typed title", None]
    assert "manager" not in audit_of(session, kept) and "title" not in audit_of(session, kept)

    again = sync(session, keeping)  # later runs keep them too
    assert counts(again) == (0, 0, 1, 0, 0)
    session.expire_all()
    assert session.get(Customer, kept.id).title == "Typed title"


def test_a_dry_run_shows_old_and_new_values_and_the_manager_change_is_audited(
        app, session, maintainer, maintainer_client, samba_dc, new_customer):  # noqa: F811
    dc = samba_dc
    sam = "u0005"
    entry = dc.people[sam]
    boss = new_customer(kind=CustomerKind.PERSON, first_name="Oskar", last_name="Operátorov")
    typed = typed_by_an_operator(new_customer, dc, sam, boss)
    # The office goes to the site (the default): a site name takes AD's 128 characters too.
    source = samba_source(session, maintainer, dc, search_filter=only(sam, entry.manager, dc.long_office_sam))
    manager = name_of(dc, entry.manager)

    preview = sync(session, source, dry_run=True)
    assert counts(preview) == (2, 1, 0, 0, 0)  # the manager and u0017 are new, the typed record linked
    assert not [e for e in preview.errors if e["skipped"]]
    [change] = preview.changes
    assert change["account"] == sam
    values = {f["field"]: (f["label"], f["old"], f["new"]) for f in change["fields"]}
    assert values["title"] == ("Title", "Typed title", entry.title)
    assert values["department"] == ("Department", None, entry.ou)  # a lookup by its name
    assert values["manager"] == ("Manager", "Operátorov, Oskar", manager)  # a person by name
    assert values["primary_phone"] == ("Primary phone", format_phone("+421259411234"),
                                       format_phone(entry.phone.replace(" ", "")))
    assert values["sam_account_name"] == ("sAMAccountName", None, sam)
    assert "middle_name" not in values and "secondary_phone" not in values  # kept: no value in AD
    html = maintainer_client.get(f"/admin/directory/details/?id={source.id}").get_data(as_text=True)
    page = page_text(html)
    assert f"Would change (1 shown) {typed.display_name} ({sam})" in page
    assert f"Title: Typed title → {entry.title}" in page
    assert f"Manager: Operátorov, Oskar → {manager}" in page and "Department: — → " in page
    session.expire_all()
    assert session.get(Customer, typed.id).title == "Typed title"  # a dry run writes nothing
    said = app.test_cli_runner().invoke(args=["directory", "sync", str(source.id), "--dry-run"])
    assert said.exit_code == 0, said.output  # the command line says the same
    assert f"would update {typed.display_name}: " in said.output
    assert f"Title: Typed title → {entry.title}" in said.output
    assert f"Manager: Operátorov, Oskar → {manager}" in said.output
    form = page_text(maintainer_client.get(f"/admin/directory/edit/?id={source.id}").get_data(as_text=True))
    assert "When the directory has no value for a field" in form and "Keep the value in Customer Desk" in form

    run = sync(session, source)
    assert counts(run) == counts(preview) and run.changes == preview.changes
    changes = audit_of(session, typed)
    assert changes["manager"] == ["Operátorov, Oskar", manager]
    assert changes["title"] == ["Typed title", entry.title]
    session.expire_all()
    assert person(session, dc.long_office_sam).site.name == LONG_OFFICE


def test_every_manager_change_is_audited_with_both_names_however_it_was_made(session, operator, new_customer):
    """The one rule that computes an event's changes (services.audit.changes_of) names the old and
    the new manager whether the old one was ever loaded or not, set by the relationship (forms,
    imports) or by its key (a merge), and a manager removed too."""
    first = new_customer(operator, kind=CustomerKind.PERSON, first_name="Prvý", last_name="Šéf")
    second = new_customer(operator, kind=CustomerKind.PERSON, first_name="Druhý", last_name="Šéf")
    report = new_customer(operator, kind=CustomerKind.PERSON, first_name="Ema", last_name="Podriadená",
                          manager=first)

    def change(**values) -> None:
        session.expire_all()  # as a new request finds it: the old manager not loaded
        record = session.get(Customer, report.id)
        written(session, lambda: update_customer(session, record, operator, OPTIONS, values,
                                                 seen_version=record.version))

    change(manager=session.get(Customer, second.id))
    change(manager=None)
    change(manager_id=first.id)
    events = session.scalars(select(AuditEvent).where(
        AuditEvent.entity_type == "customer", AuditEvent.entity_id == report.id,
        AuditEvent.action == "update").order_by(AuditEvent.id)).all()
    assert [e.changes.get("manager") for e in events] == [
        ["Šéf, Prvý", "Šéf, Druhý"], ["Šéf, Druhý", None], [None, "Šéf, Prvý"]]
