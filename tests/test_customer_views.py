"""The Customers and Contacts screens through the test client, on SQLite and PostgreSQL."""

import csv
import io
import json
import re
from html import unescape

import openpyxl
import pytest
from sqlalchemy import event

from extensions import db
from models import AuditEvent, Building, Contact, Customer, Department, Site, SlaLevel
from models.enums import CustomerKind, PhoneType
from tests.conftest import csrf_from, version_on


@pytest.fixture
def lookups(session):
    hq, branch = Site(name="Bratislava HQ"), Site(name="Košice")
    rows = {
        "hq": hq, "branch": branch,
        "tower": Building(name="Tower A", site=hq),
        "hall": Building(name="Hall", site=branch),
        "gold": SlaLevel(name="Gold"), "bronze": SlaLevel(name="Bronze"),
        "finance": Department(name="Finance"), "sales": Department(name="Sales"),
    }
    session.add_all(rows.values())
    session.commit()
    return rows


@pytest.fixture
def people(new_customer, lookups, operator):
    boss = new_customer(kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá",
                        department=lookups["finance"], sla_level=lookups["gold"], site=lookups["hq"],
                        email="eva.mala@example.sk", primary_phone="+421905123456",
                        primary_phone_type=PhoneType.MOBILE, operators=[operator])
    kovac = new_customer(kind=CustomerKind.PERSON, first_name="Peter", last_name="Kováč",
                         department=lookups["sales"], sla_level=lookups["bronze"],
                         site=lookups["branch"], email="peter.kovac@example.sk", manager=boss)
    acme = new_customer(kind=CustomerKind.COMPANY, company_name="Žilinská strojáreň s.r.o.",
                        email="office@zst.example.sk", sla_level=lookups["gold"],
                        contacts=[{"first_name": "Ján", "last_name": "Šimko",
                                   "email": "jan.simko@zst.example.sk", "is_main": True}])
    return {"boss": boss, "kovac": kovac, "acme": acme}


def names_in(html: str) -> list[str]:
    """The names in the list, each a link to the customer's page."""
    cells = re.findall(r'<td class="col-display_name">\s*(.*?)\s*</td>', html, re.S)
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in cells]


def test_list_shows_the_columns_a_desk_needs(maintainer_client, people):
    html = maintainer_client.get("/admin/customers/").get_data(as_text=True)
    assert names_in(html) == ["Kováč, Peter", "Malá, Eva", "Žilinská strojáreň s.r.o."]
    for header in ("Name", "Kind", "Status", "E-mail", "Primary phone", "SLA level",
                   "Responsible operators"):
        assert header in html
    assert "+421 905 123 456" in html and "Olga Operator" in html and "Company" in html


@pytest.mark.parametrize("typed,expected", [
    ("kovac", ["Kováč, Peter"]),
    ("KOVÁČ peter", ["Kováč, Peter"]),
    ("mala example", ["Malá, Eva"]),  # every word, from any field: a name and an e-mail
    ("peter eva", []),  # each word is someone's, both words nobody's
    ("zilinska", ["Žilinská strojáreň s.r.o."]),
    ("eva.mala@example", ["Malá, Eva"]),
    ("0905 123", ["Malá, Eva"]),
    ("+421 905 123 456", ["Malá, Eva"]),
    ("nobody", []),
])
def test_search_ignores_case_and_diacritics(maintainer_client, people, typed, expected):
    html = maintainer_client.get("/admin/customers/", query_string={"search": typed}).get_data(as_text=True)
    assert names_in(html) == expected


def filter_url(html: str, title: str) -> str:
    """The URL argument Flask-Admin gives the filter named `title` (index and operation)."""
    data = re.search(r'id="filter-groups-data"[^>]*>(.*?)</div>', html, re.S).group(1)
    return json.loads(unescape(data))[title][0]["arg"]


@pytest.mark.parametrize("title,value,expected", [
    ("Kind", lambda p, lk: "company", ["Žilinská strojáreň s.r.o."]),
    ("SLA level", lambda p, lk: lk["gold"].id, ["Malá, Eva", "Žilinská strojáreň s.r.o."]),
    ("Site", lambda p, lk: lk["branch"].id, ["Kováč, Peter"]),
    ("Department", lambda p, lk: lk["finance"].id, ["Malá, Eva"]),
    ("Status", lambda p, lk: p["boss"].status_id, ["Kováč, Peter", "Malá, Eva", "Žilinská strojáreň s.r.o."]),
    ("Responsible operator", lambda p, lk: p["boss"].operators[0].id, ["Malá, Eva"]),
])
def test_filters(maintainer_client, people, lookups, title, value, expected):
    html = maintainer_client.get("/admin/customers/").get_data(as_text=True)
    arg = filter_url(html, title)
    filtered = maintainer_client.get(f"/admin/customers/?flt1_{arg}={value(people, lookups)}")
    assert names_in(filtered.get_data(as_text=True)) == expected


def test_a_malformed_filter_value_is_ignored_not_an_error(maintainer_client, people):
    html = maintainer_client.get("/admin/customers/").get_data(as_text=True)
    arg = filter_url(html, "Site")
    assert maintainer_client.get(f"/admin/customers/?flt1_{arg}=abc").status_code == 200


def test_sorting_by_name_descending(maintainer_client, people):
    html = maintainer_client.get("/admin/customers/?sort=1&desc=1").get_data(as_text=True)  # 0 = photo
    assert names_in(html) == ["Žilinská strojáreň s.r.o.", "Malá, Eva", "Kováč, Peter"]


def test_export_csv_and_xlsx(maintainer_client, people):
    response = maintainer_client.get("/admin/customers/export/csv/")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    kovac = next(r for r in rows if r["Name"] == "Kováč, Peter")
    assert kovac["Manager"] == "Malá, Eva" and kovac["Site"] == "Košice" and kovac["Kind"] == "Person"
    workbook = openpyxl.load_workbook(io.BytesIO(maintainer_client.get("/admin/customers/export/xlsx/").data))
    values = [cell.value for row in workbook.active.iter_rows() for cell in row]
    assert "Žilinská strojáreň s.r.o." in values and "Malá, Eva" in values


def count_statements(url, client):
    statements = []

    def record(*args):
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return len(statements)


def test_list_queries_do_not_grow_with_rows(maintainer_client, new_customer, operator):
    for i in range(3):
        new_customer(kind=CustomerKind.COMPANY, company_name=f"Few {i}", operators=[operator])
    few = count_statements("/admin/customers/", maintainer_client)
    for i in range(20):
        new_customer(kind=CustomerKind.COMPANY, company_name=f"Many {i}", operators=[operator])
    assert count_statements("/admin/customers/", maintainer_client) == few
    assert count_statements("/admin/customers/?search=many", maintainer_client) <= few


def form_of(customer_kind: str, **fields) -> dict:
    """Form data as a browser posts it: the status select always sends its (default) choice."""
    from services.customers import default_status

    data = {"kind": customer_kind, "status": str(default_status(db.session).id)}
    data.update(fields)
    return data


def test_create_company_with_main_contact_inline(maintainer_client, session, lookups):
    response = maintainer_client.submit("/admin/customers/new/", form_of(
        "company", company_name="Tatra Logistics a.s.", registration_number="44 987 654",
        sla_level=str(lookups["gold"].id), site=str(lookups["hq"].id),
        building=str(lookups["tower"].id), email="it@tatra.example.sk",
        **{"contacts-0-first_name": "Ján", "contacts-0-last_name": "Šimko",
           "contacts-0-email": "jan@tatra.example.sk", "contacts-0-phone": "0903 111 222",
           "contacts-0-phone_type": "mobile", "contacts-0-is_main": "y"}))
    assert response.status_code == 302
    company = session.query(Customer).one()
    assert company.display_name == "Tatra Logistics a.s." and company.building.name == "Tower A"
    contact = company.contacts[0]
    assert (contact.display_name, contact.is_main, contact.phone) == ("Ján Šimko", True, "+421903111222")
    contacts_page = maintainer_client.get("/admin/contacts/?search=simko").get_data(as_text=True)
    assert "Ján Šimko" in contacts_page and "Main contact" in contacts_page


def test_create_person_with_manager_and_edit(maintainer_client, session, people, lookups):
    response = maintainer_client.submit("/admin/customers/new/", form_of(
        "person", first_name="Ľubica", middle_name="M", last_name="Čierna", employee_type="part_time",
        title="Analyst", department=str(lookups["sales"].id), manager=str(people["boss"].id),
        primary_phone="0911 222 333", primary_phone_type="work", email="lubica@example.sk",
        secondary_email="lubica@home.example", location_code="B-4", notes="VIP"))
    assert response.status_code == 302
    person = session.query(Customer).filter_by(last_name="Čierna").one()
    assert person.display_name == "Čierna, Ľubica M." and person.manager.id == people["boss"].id
    assert person.employee_type.label == "Part-Time" and person.primary_phone == "+421911222333"

    edit_url = f"/admin/customers/edit/?id={person.id}"
    page = maintainer_client.get(edit_url).get_data(as_text=True)
    assert 'value="+421 911 222 333"' in page  # shown formatted
    response = maintainer_client.submit(edit_url, form_of(
        "person", first_name="Ľubica", middle_name="", last_name="Čierna-Nová",
        primary_phone="+421 911 222 333",
        primary_phone_type="work", manager=str(people["boss"].id), version_seen=str(person.version)))
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Customer, person.id).display_name == "Čierna-Nová, Ľubica"


def test_invalid_input_gets_field_messages_and_keeps_what_was_typed(maintainer_client, session, people,
                                                                     lookups):
    response = maintainer_client.submit("/admin/customers/new/", form_of(
        "person", first_name="Typed Name", last_name="", email="not-an-email",
        primary_phone="12345", site=str(lookups["hq"].id), building=str(lookups["hall"].id)))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for message in ("A person needs a last name.", "Not a valid e-mail address", "Not a valid phone number",
                    "Hall is not a building of Bratislava HQ"):
        assert message in html
    assert 'value="Typed Name"' in html and 'value="not-an-email"' in html and 'value="12345"' in html
    assert session.query(Customer).count() == 3


def test_manager_picker_refuses_a_posted_company(maintainer_client, session, people):
    response = maintainer_client.submit("/admin/customers/new/", form_of(
        "person", first_name="Typed", last_name="Name", manager=str(people["acme"].id)))
    html = response.get_data(as_text=True)
    # The picker only offers (and accepts) persons; the domain refuses a company as well
    # (tests/test_customer_rules.py) on paths without the picker.
    manager_group = html.split('id="manager"')[1].split('form-group')[0]
    assert "Not one of the records you can choose here." in manager_group
    assert 'value="Typed"' in html and session.query(Customer).count() == 3


def test_duplicate_company_id_from_the_form_is_a_field_message_not_a_500(maintainer_client, people,
                                                                         new_customer):
    new_customer(kind=CustomerKind.COMPANY, company_name="First", registration_number="111")
    response = maintainer_client.submit("/admin/customers/new/", form_of(
        "company", company_name="Second", registration_number="111"))
    assert response.status_code == 200  # the customer that has the company ID is named first
    assert "First (same company ID)" in response.get_data(as_text=True)
    confirmed = maintainer_client.submit("/admin/customers/new/", form_of(
        "company", company_name="Second", registration_number="111", confirm_duplicate="y"))
    assert confirmed.status_code == 200  # "create anyway" cannot share a unique company ID
    assert "Another customer already has this company ID." in confirmed.get_data(as_text=True)


def test_contact_list_search_and_edit(maintainer_client, people, session):
    contact = session.query(Contact).one()
    html = maintainer_client.get("/admin/contacts/?search=jan simko").get_data(as_text=True)
    assert "Ján Šimko" in html and "Žilinská strojáreň s.r.o." in html
    response = maintainer_client.submit(f"/admin/contacts/edit/?id={contact.id}", {
        "customer": str(people["acme"].id), "first_name": "Ján", "last_name": "Šimko",
        "email": "bad address", "phone": "", "version_seen": str(contact.version)})
    assert "Not a valid e-mail address" in response.get_data(as_text=True)
    response = maintainer_client.submit(f"/admin/contacts/edit/?id={contact.id}", {
        "customer": str(people["kovac"].id), "first_name": "Ján", "last_name": "Šimko",
        "version_seen": str(contact.version)})
    # The company picker offers only companies; a posted person is refused on the field.
    assert "Not one of the records you can choose here." in response.get_data(as_text=True)
    response = maintainer_client.submit(f"/admin/contacts/edit/?id={contact.id}", {
        "customer": str(people["acme"].id), "first_name": "Ján", "last_name": "Šimko",
        "email": "jan.simko@zst.example.sk", "title": "CTO", "version_seen": str(contact.version)})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Contact, contact.id).title == "CTO"


def test_manager_picker_finds_persons_without_diacritics(maintainer_client, people):
    response = maintainer_client.get("/admin/customers/ajax/lookup/?name=manager&query=mala")
    assert response.get_json() == [[people["boss"].id, "Malá, Eva"]]
    companies = maintainer_client.get("/admin/customers/ajax/lookup/?name=manager&query=zilinska")
    assert companies.get_json() == []


def test_customer_with_requests_is_not_deleted(maintainer_client, people, session):
    from models import Request

    session.add(Request(customer=people["acme"], subject="Printer"))
    session.commit()
    page = maintainer_client.get("/admin/customers/").get_data(as_text=True)
    response = maintainer_client.submit("/admin/customers/", {"id": str(people["acme"].id),
                                        "url": "/admin/customers/"}, post_url="/admin/customers/delete/",
                                        follow_redirects=True)
    assert "cannot be deleted" in response.get_data(as_text=True) and page
    assert session.get(Customer, people["acme"].id) is not None
    kovac_id = people["kovac"].id
    response = maintainer_client.submit("/admin/customers/", {"id": str(kovac_id)},
                                        post_url="/admin/customers/delete/")
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Customer, kovac_id) is None


def test_buildings_of_a_site_for_the_form(maintainer_client, lookups):
    rows = maintainer_client.get(f"/admin/customers/buildings/?site={lookups['hq'].id}").get_json()
    assert rows == [{"id": lookups["tower"].id, "text": "Tower A (Bratislava HQ)"}]
    assert maintainer_client.get("/admin/customers/buildings/?site=x").get_json() == []


def test_photo_upload_thumbnail_and_refusal(maintainer_client, people, session, app):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "teal").save(buffer, "PNG")
    details_url = f"/admin/customers/overview/?id={people['kovac'].id}"  # the customer's page
    page = maintainer_client.get(details_url).get_data(as_text=True)
    response = maintainer_client.post(f"/admin/customers/photo/?id={people['kovac'].id}", data={
        "photo": (io.BytesIO(buffer.getvalue()), "me.png"), "csrf_token": csrf_from(page),
        "version_seen": version_on(page)},
        content_type="multipart/form-data", follow_redirects=True)
    assert "The photo was saved." in response.get_data(as_text=True)
    thumb = maintainer_client.get(f"/admin/customers/photo-file/{people['kovac'].id}/thumb")
    assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.data)).size == (96, 64)
    listing = maintainer_client.get("/admin/customers/").get_data(as_text=True)
    assert f'src="/admin/customers/photo-file/{people["kovac"].id}/thumb"' in listing
    page = maintainer_client.get(details_url).get_data(as_text=True)
    refused = maintainer_client.post(f"/admin/customers/photo/?id={people['kovac'].id}", data={
        "photo": (io.BytesIO(b"GIF89a not really"), "x.png"), "csrf_token": csrf_from(page),
        "version_seen": version_on(page)},
        content_type="multipart/form-data", follow_redirects=True)
    assert "PNG, JPEG or WebP" in refused.get_data(as_text=True)


def test_the_plain_form_refuses_a_company_without_an_email_contact_keeping_the_input(maintainer_client,
                                                                                     session):
    typed = form_of("company", company_name="Bez Kontaktu s.r.o.", registration_number="36 111 222",
                    email="office@bez.example.sk",
                    **{"contacts-0-first_name": "Ján", "contacts-0-last_name": "Telefónny",
                       "contacts-0-phone": "0903 111 222"})
    response = maintainer_client.submit("/admin/customers/new/", typed)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    below_contacts = html.split('id="contacts-button"')[1].split('<div class="form-group')[0]
    assert "A company needs at least one contact with an e-mail" in unescape(below_contacts)
    for value in ("Bez Kontaktu s.r.o.", "office@bez.example.sk", "Telefónny", "0903 111 222"):
        assert f'value="{value}"' in unescape(html)
    assert session.query(Customer).count() == 0 and session.query(Contact).count() == 0
    without_contacts = {k: v for k, v in typed.items() if not k.startswith("contacts-")}
    response = maintainer_client.submit("/admin/customers/new/", without_contacts)
    assert "A company needs at least one contact with an e-mail" in unescape(response.get_data(as_text=True))
    assert session.query(Customer).count() == 0
    saved = maintainer_client.submit("/admin/customers/new/", {**typed, "contacts-0-email": "jan@bez.sk"})
    assert saved.status_code == 302 and session.query(Customer).one().contacts[0].email == "jan@bez.sk"


def test_the_last_email_contact_of_a_company_is_neither_deleted_nor_emptied(maintainer_client, people,
                                                                             session):
    only = session.query(Contact).one()
    response = maintainer_client.submit("/admin/contacts/", {"id": str(only.id), "url": "/admin/contacts/"},
                                        post_url="/admin/contacts/delete/", follow_redirects=True)
    assert "A company needs at least one contact with an e-mail" in unescape(response.get_data(as_text=True))
    response = maintainer_client.submit("/admin/contacts/", {"action": "delete", "rowid": [str(only.id)]},
                                        post_url="/admin/contacts/action/", follow_redirects=True)
    assert "A company needs at least one contact with an e-mail" in unescape(response.get_data(as_text=True))
    edit_url = f"/admin/contacts/edit/?id={only.id}"
    response = maintainer_client.submit(edit_url, {
        "customer": str(people["acme"].id), "first_name": "Ján", "last_name": "Šimko", "email": "",
        "version_seen": str(only.version)})
    assert response.status_code == 200
    assert "A company needs at least one contact with an e-mail" in unescape(response.get_data(as_text=True))
    session.expire_all()
    assert session.get(Contact, only.id).email == "jan.simko@zst.example.sk"
    # With a second contact that has an e-mail, the first may go.
    second = maintainer_client.submit("/admin/contacts/new/", {
        "customer": str(people["acme"].id), "last_name": "Druhá", "email": "druha@zst.example.sk"})
    assert second.status_code == 302
    response = maintainer_client.submit("/admin/contacts/", {"id": str(only.id)},
                                        post_url="/admin/contacts/delete/")
    assert response.status_code == 302
    session.expire_all()
    assert [c.last_name for c in session.query(Contact)] == ["Druhá"]
    actions = {e.action for e in session.query(AuditEvent).filter_by(entity_type="contact")}
    assert actions >= {"create", "delete"}


def test_record_pages_answer_404_for_strangers_and_follow_merges_after_the_access_check(
        operator_client, session, new_customer, make_operator, operator, maintainer):
    from services.merge import merge_customers
    from services.secrets import SecretBox
    from tests.conftest import ENCRYPTION_KEY, written

    box = SecretBox(ENCRYPTION_KEY)
    owner = make_operator("owner@example.com")
    hidden = new_customer(kind=CustomerKind.PERSON, first_name="Skrytá", last_name="Osoba", operators=[owner])
    mine = new_customer(kind=CustomerKind.PERSON, first_name="Moja", last_name="Osoba", operators=[operator])
    twin = new_customer(kind=CustomerKind.PERSON, first_name="Moja", last_name="Osoba", operators=[operator])
    for endpoint in ("details", "overview", "edit"):
        assert operator_client.get(f"/admin/customers/{endpoint}/?id={hidden.id}").status_code == 404
        assert operator_client.get(f"/admin/customers/{endpoint}/?id=abc").status_code == 404
    for endpoint in ("overview", "edit"):
        assert operator_client.get(f"/admin/customers/{endpoint}/?id={mine.id}").status_code == 200
    details = operator_client.get(f"/admin/customers/details/?id={mine.id}")  # leads to the Overview
    assert details.status_code == 302 and details.headers["Location"].endswith(f"/overview/?id={mine.id}")
    # A merged-away id leads to the survivor — only for those who may view the survivor.
    written(session, lambda: merge_customers(session, maintainer, mine, twin, box, choices={}, decisions={}))
    for endpoint in ("details", "overview", "edit"):
        moved = operator_client.get(f"/admin/customers/{endpoint}/?id={twin.id}")
        assert moved.status_code == 302 and moved.headers["Location"].endswith(f"id={mine.id}")
    written(session, lambda: merge_customers(session, maintainer, session.get(Customer, hidden.id),
                                             session.get(Customer, mine.id), box, choices={}, decisions={}))
    survivor = session.get(Customer, hidden.id)
    survivor.operators = [owner]  # a merge unites the operators: take this one away again
    session.commit()
    for gone in (mine, twin):  # now merged into a customer this operator may not view
        assert operator_client.get(f"/admin/customers/details/?id={gone.id}").status_code == 404


def test_a_person_turned_into_a_company_keeps_its_email_as_the_main_contact(maintainer_client, session,
                                                                              new_customer):
    ann = new_customer(kind=CustomerKind.PERSON, first_name="Ann", last_name="Lee",
                       email="ann@lee.example.com")
    bo = new_customer(kind=CustomerKind.PERSON, first_name="Bo", last_name="Ek")
    answer = maintainer_client.submit(f"/admin/customers/edit/?id={bo.id}", form_of(
        "company", company_name="Ek AB", first_name="Bo", last_name="Ek", version_seen=str(bo.version)))
    assert answer.status_code == 200 and "contact with an e-mail" in unescape(answer.get_data(as_text=True))
    answer = maintainer_client.submit(f"/admin/customers/edit/?id={ann.id}", form_of(
        "company", company_name="Lee Consulting", first_name="Ann", last_name="Lee",
        email="ann@lee.example.com", version_seen=str(ann.version)))
    assert answer.status_code == 302
    session.expire_all()
    assert session.get(Customer, bo.id).kind == CustomerKind.PERSON
    company = session.get(Customer, ann.id)
    assert company.display_name == "Lee Consulting"
    assert [(c.display_name, c.email, c.is_main) for c in company.contacts] == [
        ("Ann Lee", "ann@lee.example.com", True)]
