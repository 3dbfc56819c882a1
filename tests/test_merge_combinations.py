"""Every kind of merge a desk meets, through the panel as a person does it, on SQLite and on
PostgreSQL: two persons; companies with VAT IDs on both, on one or on none, with and without a
company ID; companies with contacts on both; a person and their manager, either way round; an
inactive and an active record. After each, the audit trail, the customer's History tab and the
survivor's page answer 200 (issue 18: the merge page and the audit trail answered 500)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from models import AuditEvent, Contact, Customer, CustomerStatus
from models.enums import CustomerKind
from tests.conftest import written

MERGE = "/admin/customers/merge/"


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden {name} on the merge page"
    return match.group(1)


def aged(session, customer: Customer, days: int) -> Customer:
    """Make a record `days` older than now (what a duplicate created later is not)."""
    customer.created_at = customer.created_at - timedelta(days=days)
    session.commit()
    return customer


def open_merge(client, started_from: Customer, picked: Customer) -> str:
    page = client.get(f"{MERGE}?survivor={started_from.id}&other={picked.id}")
    assert page.status_code == 200, page.get_data(as_text=True)[-2000:]
    return page.get_data(as_text=True)


def merge_in_panel(client, started_from: Customer, picked: Customer, **fields: str) -> tuple[str, str]:
    """Open the merge page from `started_from`, pick `picked`, keep what the page proposes
    (but `fields`: field → "survivor" / "other"), press Merge. (merge page, result page)."""
    html = open_merge(client, started_from, picked)
    form = {name: hidden(html, name) for name in ("survivor", "other", "keep", "survivor_version",
                                                  "other_version")}
    for name in re.findall(r'name="(field_[a-z_]+)" value="survivor"', html):
        checked = re.search(rf'name="{name}" value="(survivor|other)"\s+id="[^"]+"\s+checked', html)
        form[name] = checked.group(1) if checked else "survivor"
    form.update({f"field_{name}": side for name, side in fields.items()})
    done = client.submit(f"{MERGE}?survivor={started_from.id}&other={picked.id}", form)
    assert done.status_code == 302 and "/merge/done/" in done.headers["Location"], \
        done.get_data(as_text=True)[-3000:]
    result = client.get(done.headers["Location"])
    assert result.status_code == 200
    return html, result.get_data(as_text=True)


def pages_answer(client, session, survivor_id: int, other_id: int) -> None:
    """What a person opens after a merge: the audit trail (and the merge's entry), the
    survivor's History and page, and the merged record's old link (to the survivor)."""
    assert client.get("/admin/audit/").status_code == 200
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "merge")
                           .order_by(AuditEvent.id.desc()))
    assert client.get(f"/admin/audit/details/?id={event.id}").status_code == 200
    history = client.get(f"/admin/customers/history/?id={survivor_id}")
    assert history.status_code == 200
    for page in ("overview", "details"):
        url = f"/admin/customers/{page}/?id={survivor_id}"
        answer = client.get(url)
        if answer.status_code == 302:
            answer = client.get(answer.headers["Location"])
        assert answer.status_code == 200
    old_link = client.get(f"/admin/customers/overview/?id={other_id}")
    assert old_link.status_code == 302 and old_link.headers["Location"].endswith(f"id={survivor_id}")


def test_two_persons_the_older_more_complete_stays_whatever_page_it_started_from(
        maintainer_client, session, new_customer):
    older = aged(session, new_customer(kind=CustomerKind.PERSON, first_name="Ján", last_name="Šťastný",
                                       email="jan@example.sk", title="Accountant"), 400)
    newer = new_customer(kind=CustomerKind.PERSON, first_name="Ján", last_name="Šťastný",
                         primary_phone="0903 123 456")
    page = open_merge(maintainer_client, newer, older)  # started from the newer duplicate
    assert hidden(page, "survivor") == str(older.id) and hidden(page, "keep") == str(older.id)
    assert "E-mail" in page and "Primary phone" in page
    assert "+421 903 123 456" in page  # formatted, the empty side "—"
    # A filled value over an empty one: the phone from the newer record is proposed.
    assert re.search(r'name="field_primary_phone" value="other"\s+id="[^"]+"\s+checked', page)
    assert f"keep={newer.id}" in page.replace("&amp;", "&")  # a person can swap
    swapped = maintainer_client.get(f"{MERGE}?survivor={older.id}&other={newer.id}&keep={newer.id}")
    assert hidden(swapped.get_data(as_text=True), "survivor") == str(newer.id)

    _page, result = merge_in_panel(maintainer_client, newer, older)
    # Equal names: the confirmation tells the two apart by number and creation date, linked.
    confirmation = re.search(r'data-testid="merge-confirmation">(.*?)</p>', result, re.S).group(1)
    assert f"no. {newer.id}" in confirmation and f"no. {older.id}" in confirmation
    assert f"/admin/customers/overview/?id={older.id}" in confirmation
    assert confirmation.index(f"no. {newer.id}") < confirmation.index(f"no. {older.id}")
    session.expire_all()
    kept = session.get(Customer, older.id)
    assert (kept.email, kept.title, kept.primary_phone) == ("jan@example.sk", "Accountant", "+421903123456")
    assert session.get(Customer, newer.id).merged_into_id == older.id
    pages_answer(maintainer_client, session, older.id, newer.id)
    history = maintainer_client.get(f"/admin/customers/history/?id={older.id}").get_data(as_text=True)
    assert "Primary phone" in history


def test_the_more_complete_record_stays_even_when_newer(maintainer_client, session, new_customer):
    bare = aged(session, new_customer(kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá"), 30)
    full = new_customer(kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá", email="eva@example.sk",
                        title="Head of accounting", primary_phone="0903 111 222", notes="VIP")
    assert hidden(open_merge(maintainer_client, bare, full), "survivor") == str(full.id)


def test_both_set_keeps_the_survivors_value_and_both_values_are_offered(maintainer_client, session,
                                                                         new_customer):
    older = aged(session, new_customer(kind=CustomerKind.PERSON, first_name="Peter", last_name="Horák",
                                       title="Accountant", email="peter@example.sk"), 10)
    newer = new_customer(kind=CustomerKind.PERSON, first_name="Peter", last_name="Horák",
                         title="Head of accounting")
    _page, _result = merge_in_panel(maintainer_client, newer, older)
    session.expire_all()
    assert session.get(Customer, older.id).title == "Accountant"
    newer2 = new_customer(kind=CustomerKind.PERSON, first_name="Peter", last_name="Horák", title="CFO")
    _page, result = merge_in_panel(maintainer_client, newer2, older, title="other")
    assert "Title" in result  # the values taken, by their labels
    session.expire_all()
    assert session.get(Customer, older.id).title == "CFO"


@pytest.mark.parametrize("with_company_id", [True, False], ids=["company-id", "no-company-id"])
@pytest.mark.parametrize("vat", ["both", "survivor", "other", "none"])
def test_companies_with_and_without_vat_and_company_ids(maintainer_client, session, new_customer, vat,
                                                        with_company_id):
    ids_old = {"vat_id": "SK2020111222" if vat in ("both", "survivor") else None,
               "registration_number": "50111222" if with_company_id else None}
    ids_new = {"vat_id": "SK2020333444" if vat in ("both", "other") else None,
               "registration_number": "50333444" if with_company_id and vat != "none" else None}
    older = aged(session, new_customer(kind=CustomerKind.COMPANY, company_name="Beta Trade", **ids_old,
                                       email="office@beta.sk"), 100)
    newer = new_customer(kind=CustomerKind.COMPANY, company_name="Beta Trade", **ids_new)
    page, result = merge_in_panel(maintainer_client, newer, older)
    assert hidden(page, "survivor") == str(older.id)
    for value in (*ids_old.values(), *ids_new.values()):
        if value:
            assert value in page
    if vat != "none":
        assert "VAT ID" in page
    session.expire_all()
    kept, gone = session.get(Customer, older.id), session.get(Customer, newer.id)
    for field in ("vat_id", "registration_number"):  # the survivor's when both are set, else the one set
        assert getattr(kept, field) == (ids_old[field] or ids_new[field])
        if ids_new[field] and not ids_old[field]:
            assert getattr(gone, field) is None  # the tombstone gave the unique key up
    assert len(kept.contacts) == 2
    pages_answer(maintainer_client, session, older.id, newer.id)


def test_different_vat_ids_taken_from_the_other_record(maintainer_client, session, new_customer):
    older = aged(session, new_customer(kind=CustomerKind.COMPANY, company_name="Gama", vat_id="SK1111111111",
                                       registration_number="11111111"), 5)
    newer = new_customer(kind=CustomerKind.COMPANY, company_name="Gama", vat_id="SK2222222222",
                         registration_number="22222222")
    merge_in_panel(maintainer_client, older, newer, vat_id="other", registration_number="other")
    session.expire_all()
    kept, gone = session.get(Customer, older.id), session.get(Customer, newer.id)
    assert (kept.vat_id, kept.registration_number) == ("SK2222222222", "22222222")
    assert (gone.vat_id, gone.registration_number) == (None, None)
    pages_answer(maintainer_client, session, older.id, newer.id)


def test_a_company_with_contacts_into_one_with_contacts_keeps_their_roles(maintainer_client, session,
                                                                          new_customer):
    older = aged(session, new_customer(
        kind=CustomerKind.COMPANY, company_name="Delta", contacts=[
            {"first_name": "Zuzana", "last_name": "Stará", "email": "stara@delta.sk", "is_main": True},
            {"first_name": "Ivan", "last_name": "Ďalší", "email": "dalsi@delta.sk"}]), 50)
    newer = new_customer(kind=CustomerKind.COMPANY, company_name="Delta", contacts=[
        {"first_name": "Nora", "last_name": "Nová", "email": "nova@delta.sk", "is_main": True},
        {"first_name": "Oto", "last_name": "Bez", "email": None}])
    page, result = merge_in_panel(maintainer_client, newer, older)
    assert "main contacts of both records stay main contacts" in page
    assert "Contacts moved: 2" in result
    session.expire_all()
    contacts = session.scalars(select(Contact).where(Contact.customer_id == older.id)).all()
    assert {(c.last_name, c.is_main) for c in contacts} == {("Stará", True), ("Ďalší", False), ("Nová", True),
                                                           ("Bez", False)}
    assert session.scalar(select(Contact.id).where(Contact.customer_id == newer.id)) is None
    pages_answer(maintainer_client, session, older.id, newer.id)
    contacts_tab = maintainer_client.get(f"/admin/customers/contacts-tab/?id={older.id}")
    assert contacts_tab.status_code == 200 and "Nová" in contacts_tab.get_data(as_text=True)


@pytest.mark.parametrize("kept", ["manager", "employee"])
def test_a_person_and_their_manager_never_manage_themselves(maintainer_client, session, new_customer, kept):
    boss = new_customer(kind=CustomerKind.PERSON, first_name="Marek", last_name="Šéf", email="sef@example.sk")
    big_boss = new_customer(kind=CustomerKind.PERSON, first_name="Vera", last_name="Vedúca")
    employee = new_customer(kind=CustomerKind.PERSON, first_name="Marek", last_name="Šéf",
                            manager_id=boss.id)
    report = new_customer(kind=CustomerKind.PERSON, first_name="Ria", last_name="Podriadená",
                          manager_id=employee.id)
    boss_report = new_customer(kind=CustomerKind.PERSON, first_name="Sam", last_name="Druhý",
                               manager_id=boss.id)
    if kept == "employee":
        employee.manager_id = boss.id
        employee.email, employee.title, employee.notes = "marek@example.sk", "Lead", "from the directory"
        session.commit()
    survivor, other = (boss, employee) if kept == "manager" else (employee, boss)
    page = open_merge(maintainer_client, other, survivor)
    assert hidden(page, "survivor") == str(survivor.id)
    assert 'data-testid="merge-manager-note"' in page
    # Neither side offers one of the two as the manager.
    row = re.search(r'data-testid="merge-field-manager_id">(.*?)</tr>', page, re.S)
    assert row is None or "Šéf" not in row.group(1)
    merge_in_panel(maintainer_client, other, survivor, manager_id="other")
    session.expire_all()
    alive = session.get(Customer, survivor.id)
    assert alive.manager_id != alive.id and alive.manager_id != other.id
    assert alive.manager_id is None
    for person in (report, boss_report):  # their manager is the one person that is left
        assert session.get(Customer, person.id).manager_id == survivor.id
    pages_answer(maintainer_client, session, survivor.id, other.id)
    assert maintainer_client.get(f"/admin/customers/overview/?id={report.id}").status_code == 200

    # Someone else's manager is offered and kept when chosen.
    someone = new_customer(kind=CustomerKind.PERSON, first_name="Marek", last_name="Šéf",
                           manager_id=big_boss.id)
    merge_in_panel(maintainer_client, someone, alive, manager_id="other")
    session.expire_all()
    assert session.get(Customer, survivor.id).manager_id == big_boss.id


def test_undo_of_a_manager_merge_puts_everyone_back(maintainer_client, session, new_customer):
    boss = new_customer(kind=CustomerKind.PERSON, first_name="Marek", last_name="Šéf", email="sef@example.sk")
    employee = new_customer(kind=CustomerKind.PERSON, first_name="Marek", last_name="Šéf", manager_id=boss.id)
    report = new_customer(kind=CustomerKind.PERSON, first_name="Ria", last_name="Podriadená",
                          manager_id=employee.id)
    html = open_merge(maintainer_client, employee, boss)
    form = {name: hidden(html, name) for name in ("survivor", "other", "keep", "survivor_version",
                                                  "other_version")}
    done = maintainer_client.submit(f"{MERGE}?survivor={employee.id}&other={boss.id}", form)
    undo_url = done.headers["Location"].replace("/done/", "/undo/")
    assert maintainer_client.submit(done.headers["Location"], {}, post_url=undo_url).status_code == 302
    session.expire_all()
    assert session.get(Customer, employee.id).manager_id == boss.id
    assert session.get(Customer, report.id).manager_id == employee.id
    assert session.get(Customer, employee.id).merged_into_id is None


@pytest.mark.parametrize("inactive", ["older", "newer"])
def test_an_inactive_and_an_active_record_make_an_active_customer(maintainer_client, session, new_customer,
                                                                  inactive):
    closed = session.scalar(select(CustomerStatus).where(CustomerStatus.is_active.is_(False)))
    older = aged(session, new_customer(kind=CustomerKind.COMPANY, company_name="Epsilon",
                                       email="office@epsilon.sk"), 20)
    newer = new_customer(kind=CustomerKind.COMPANY, company_name="Epsilon")
    (older if inactive == "older" else newer).status = closed
    session.commit()
    page, _result = merge_in_panel(maintainer_client, newer, older)
    assert hidden(page, "survivor") == str(older.id)
    session.expire_all()
    kept, gone = session.get(Customer, older.id), session.get(Customer, newer.id)
    assert kept.status.is_active and not gone.status.is_active
    pages_answer(maintainer_client, session, older.id, newer.id)


def test_lookups_read_by_name_and_a_photo_as_an_image(maintainer_client, session, new_customer):
    from models import Department, Site

    site, department = Site(name="Bratislava HQ"), Department(name="Finance")
    session.add_all([site, department])
    session.commit()
    older = aged(session, new_customer(kind=CustomerKind.PERSON, first_name="Ida", last_name="Krátka",
                                       site_id=site.id, department_id=department.id), 3)
    newer = new_customer(kind=CustomerKind.PERSON, first_name="Ida", last_name="Krátka",
                         employee_type="full_time")
    newer.photo = "abc123.png"
    session.commit()
    page = open_merge(maintainer_client, newer, older)
    assert "Bratislava HQ" in page and "Finance" in page and "Full-Time" in page
    assert ">Site</th>" in page and ">Department</th>" in page and ">Employee type</th>" in page
    assert "abc123.png" not in page
    assert f"/admin/customers/photo-file/{newer.id}/thumb" in page


def test_the_merge_records_the_survivors_changes_for_history(session, maintainer, new_customer):
    from services.merge import merge_customers
    from tests.test_merge import BOX

    older = aged(session, new_customer(kind=CustomerKind.COMPANY, company_name="Zeta"), 3)
    newer = new_customer(kind=CustomerKind.COMPANY, company_name="Zeta", vat_id="SK3333333333")
    event = written(session, lambda: merge_customers(session, maintainer, older, newer, BOX, choices={},
                                                     decisions={}))
    assert event.changes["vat_id"] == [None, "SK3333333333"]
    assert event.changes["merged"] == ["Zeta", "Zeta"] and "undo" in event.changes


def test_a_manager_who_reports_to_one_of_the_two_is_not_proposed_and_refused_on_its_field(
        maintainer_client, session, new_customer):
    """A loop of managers (which the edit form forbids) is never made: the page proposes the
    other value, and taking the looping manager anyway is refused on the Manager row."""
    survivor = aged(session, new_customer(kind=CustomerKind.PERSON, first_name="Ema", last_name="Vrchná",
                                          email="ema@example.sk", title="Director"), 30)
    other = new_customer(kind=CustomerKind.PERSON, first_name="Ema", last_name="Vrchná")
    deputy = new_customer(kind=CustomerKind.PERSON, first_name="Ivo", last_name="Zástupca",
                          manager_id=survivor.id)
    other.manager_id = deputy.id
    session.commit()
    html = open_merge(maintainer_client, other, survivor)
    assert re.search(r'name="field_manager_id" value="survivor"\s+id="[^"]+"\s+checked', html)
    form = {name: hidden(html, name) for name in ("survivor", "other", "keep", "survivor_version",
                                                  "other_version")}
    answer = maintainer_client.submit(f"{MERGE}?survivor={other.id}&other={survivor.id}",
                                      {**form, "field_manager_id": "other"})
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    error = re.search(r'data-testid="merge-field-error-manager_id">(.*?)</div>', page, re.S)
    assert error and "Zástupca" in error.group(1) and "manage themselves" in error.group(1)
    assert re.search(r'name="field_manager_id" value="other"\s+id="[^"]+"\s+checked', page)  # as picked
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "merge")).all() == []
    merge_in_panel(maintainer_client, other, survivor)  # the proposal goes through
    session.expire_all()
    assert session.get(Customer, survivor.id).manager_id is None
    assert session.get(Customer, deputy.id).manager_id == survivor.id


def test_the_result_page_says_where_the_record_went_and_offers_undo_only_while_possible(
        maintainer_client, session, new_customer):
    first = aged(session, new_customer(kind=CustomerKind.PERSON, first_name="Rudo", last_name="Reťaz",
                                       email="rudo@example.sk"), 10)
    second = new_customer(kind=CustomerKind.PERSON, first_name="Rudo", last_name="Reťaz")
    third = new_customer(kind=CustomerKind.PERSON, first_name="Rudo", last_name="Reťaz",
                         email="rudo.novy@example.sk", title="Chief")
    _page, result = merge_in_panel(maintainer_client, second, first)
    assert "Undo the merge" in result
    done = re.search(r'action="([^"]+)/merge/undo/(\d+)"', result)
    assert done
    done_url = f"/admin/customers/merge/done/{done.group(2)}"
    merge_in_panel(maintainer_client, first, third)  # `first` merged on (into the fuller one)
    session.expire_all()
    now_id = session.get(Customer, first.id).merged_into_id
    assert now_id == third.id
    answer = maintainer_client.get(done_url)
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    assert "was later merged into" in page and f"/admin/customers/overview/?id={third.id}" in page
    assert "Undo the merge" not in page and 'data-testid="merge-no-undo"' in page
