"""One customer page (issue 18): the header above every tab, the Overview as a person reads the
record (only the fields of its kind; a person's in the Cherwell sections), details_view leading to
it, Basic information in sections saving on the customer with a message naming what changed, and
the list's links, badges and create buttons. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from html import unescape

import pytest

from models import AuditEvent, Customer, CustomerStatus, Department, Site, SlaLevel
from models.enums import CustomerKind, EmployeeType, PhoneType
from tests.conftest import csrf_from


@pytest.fixture
def world(new_customer, session, operator):
    finance, gold, hq = Department(name="Finance"), SlaLevel(name="Gold"), Site(name="Bratislava HQ")
    session.add_all([finance, gold, hq])
    session.commit()
    boss = new_customer(kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá", operators=[operator])
    jana = new_customer(kind=CustomerKind.PERSON, first_name="Jana", middle_name="K", last_name="Nová",
                        employee_type=EmployeeType.FULL_TIME, title="Analyst", department=finance,
                        manager=boss, sla_level=gold, site=hq, location_code="B-4",
                        primary_phone="+421905123456", primary_phone_type=PhoneType.MOBILE,
                        email="jana@example.sk", notes="Prefers e-mail", operators=[operator])
    acme = new_customer(kind=CustomerKind.COMPANY, company_name="ACME s.r.o.", registration_number="36111222",
                        vat_id="SK2020111222", sla_level=gold, operators=[operator],
                        contacts=[{"first_name": "Ján", "last_name": "Šimko", "email": "jan@acme.sk",
                                   "is_main": True}])
    return {"boss": boss, "jana": jana, "acme": acme}


def overview_of(client, customer) -> str:
    response = client.get(f"/admin/customers/overview/?id={customer.id}")
    assert response.status_code == 200
    return unescape(response.get_data(as_text=True))


def fields_shown(html: str) -> dict[str, str]:
    """Label → value of the Overview's rows, as a reader sees them."""
    body = html.split('data-testid="overview"')[1]
    pairs = re.findall(r"<dt[^>]*>(.*?)</dt>\s*<dd[^>]*>(.*?)</dd>", body, re.S)
    return {re.sub(r"<[^>]+>", "", k).strip(): re.sub(r"<[^>]+>", "", v).strip() for k, v in pairs}


def sections_of(html: str) -> list[str]:
    body = html.split('data-testid="overview"')[1]
    return [s.strip() for s in re.findall(r'<h2 class="h5[^"]*"[^>]*>(.*?)</h2>', body, re.S)]


def test_a_person_reads_in_the_cherwell_sections_with_formatted_values(operator_client, world):
    html = overview_of(operator_client, world["jana"])
    assert sections_of(html) == ["General", "Contact", "Organization", "Record"]
    shown = fields_shown(html)
    assert shown["First name"] == "Jana" and shown["Last name"] == "Nová" and shown["Middle name"] == "K"
    assert shown["Employee type"] == "Full-Time" and shown["Location ID"] == "B-4"
    assert shown["SLA level"] == "Gold" and shown["Site"] == "Bratislava HQ"  # lookups by name
    assert shown["Primary phone"] == "+421 905 123 456 (Mobile)"  # formatted, with its type
    assert shown["Department"] == "Finance" and shown["Manager"] == "Malá, Eva"
    assert shown["Title"] == "Analyst"
    assert shown["Notes"] == "Prefers e-mail" and shown["Secondary phone"] == "—"
    assert "Olga" in shown["Responsible operators"]
    # Times to the minute, never with seconds or microseconds.
    assert re.fullmatch(r".*\d{2}:\d{2} \(.*\)|.*\d{2}:\d{2}", shown["Created"])
    assert not re.search(r"\d{2}:\d{2}:\d{2}|\.\d{6}", html.split('data-testid="overview"')[1])
    for company_field in ("Company name", "Company ID (IČO)", "VAT ID", "Contacts"):
        assert company_field not in shown
    header = html.split('data-testid="customer-header"')[1].split('data-testid="customer-tabs"')[0]
    assert '<h1 class="h3 mb-1" data-testid="customer-title">Nová, Jana K.</h1>' in header
    assert "Person" in header and "Active" in header and "Change Status" in header
    assert "Create an Incident" in header and "Merge…" in header
    assert "Quick add contact" not in header  # a person has no contacts


def test_a_company_shows_no_person_fields(operator_client, world):
    html = overview_of(operator_client, world["acme"])
    shown = fields_shown(html)
    assert shown["Company name"] == "ACME s.r.o." and shown["Company ID (IČO)"] == "36111222"
    assert shown["VAT ID"] == "SK2020111222" and "Ján Šimko" in shown["Contacts"]
    for person_field in ("First name", "Middle name", "Last name", "Employee type", "Department", "Manager",
                         "Title"):
        assert person_field not in shown, person_field
    assert sections_of(html)[:2] == ["General", "Contact"]
    header = html.split('data-testid="customer-header"')[1].split('data-testid="customer-tabs"')[0]
    assert "Company" in header and "Quick add contact" in header  # the contacts tab's form, in a dialog
    assert f'action="/admin/customers/contacts-tab/?id={world["acme"].id}"' in header


def test_quick_add_contact_posts_to_the_contacts_tab(operator_client, session, world):
    page = overview_of(operator_client, world["acme"])
    answer = operator_client.post(f"/admin/customers/contacts-tab/?id={world['acme'].id}", data={
        "csrf_token": csrf_from(page), "first_name": "Peter", "last_name": "Malý", "email": "peter@acme.sk",
        "role": "contact"})
    assert answer.status_code == 302
    session.expire_all()
    assert {c.last_name for c in session.get(Customer, world["acme"].id).contacts} == {"Šimko", "Malý"}


def test_details_view_leads_to_the_overview_after_the_access_check(operator_client, app, world,
                                                                    make_operator):
    from tests.conftest import Browserless

    answer = operator_client.get(f"/admin/customers/details/?id={world['jana'].id}")
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"/admin/customers/overview/?id={world['jana'].id}")
    make_operator("stranger@example.com")
    stranger = Browserless(app.test_client())
    stranger.login("stranger@example.com")
    assert stranger.get(f"/admin/customers/details/?id={world['jana'].id}").status_code == 404
    assert stranger.get(f"/admin/customers/overview/?id={world['jana'].id}").status_code == 404


def test_basic_information_of_a_person_is_in_the_cherwell_sections(operator_client, world):
    html = operator_client.get(f"/admin/customers/edit/?id={world['jana'].id}").get_data(as_text=True)
    sections = re.findall(
        r'<fieldset class="cd-section[^"]*" data-section="(\w+)">\s*<legend[^>]*>(.*?)</legend>', html)
    assert sections == [("general", "General"), ("contact", "Contact"), ("organization", "Organization")]
    general, contact, organization = html.split('data-section="')[1:4]
    assert 'name="first_name"' in general and 'name="employee_type"' in general
    assert 'name="primary_phone"' in contact and 'name="secondary_email"' in contact
    assert 'name="department"' in organization and 'name="manager"' in organization
    assert 'name="version_seen"' in html and 'name="csrf_token"' in html
    assert "Save and Add Another" not in html and "Save and Continue Editing" not in html
    assert 'name="status"' not in html.split('data-testid="customer-tabs"')[1]  # the header's dialog


def test_saving_a_tab_stays_on_the_customer_and_says_what_changed(operator_client, session, world):
    jana = world["jana"]
    url = f"/admin/customers/edit/?id={jana.id}"
    form = {"kind": "person", "first_name": "Jana", "middle_name": "K", "last_name": "Nová",
            "employee_type": "full_time", "title": "Senior analyst", "department": str(jana.department_id),
            "manager": str(jana.manager_id), "sla_level": str(jana.sla_level_id), "site": str(jana.site_id),
            "location_code": "B-4", "primary_phone": "0911 222 333", "primary_phone_type": "mobile",
            "email": "jana@example.sk", "notes": "Prefers e-mail", "version_seen": str(jana.version)}
    saved = operator_client.submit(url, form)
    assert saved.status_code == 302 and saved.headers["Location"].endswith(url)  # not the list
    page = unescape(operator_client.get(saved.headers["Location"]).get_data(as_text=True))
    assert "Saved: Title, Primary phone." in page
    session.expire_all()
    stored = session.get(Customer, jana.id)
    assert (stored.title, stored.primary_phone) == ("Senior analyst", "+421911222333")

    # The same number typed another way is no change.
    again = operator_client.submit(url, {**form, "primary_phone": "+421 911 222 333",
                                         "title": "Senior analyst", "version_seen": str(stored.version)})
    assert again.status_code == 302
    assert "Saved: nothing was changed." in unescape(operator_client.get(url).get_data(as_text=True))


def test_a_refused_save_stays_on_the_form_with_what_was_typed(operator_client, session, world):
    jana = world["jana"]
    url = f"/admin/customers/edit/?id={jana.id}"
    refused = operator_client.submit(url, {"kind": "person", "first_name": "Jana", "last_name": "",
                                           "title": "Typed title", "version_seen": str(jana.version)})
    html = unescape(refused.get_data(as_text=True))
    assert refused.status_code == 200 and "A person needs a last name." in html
    assert 'value="Typed title"' in html
    session.expire_all()
    assert session.get(Customer, jana.id).title == "Analyst"


def test_the_status_dialog_returns_to_the_tab_it_was_opened_on(operator_client, session, world):
    acme = world["acme"]
    inactive = session.query(CustomerStatus).filter_by(name="Inactive").one()  # a reference row
    tab = f"/admin/customers/edit/?id={acme.id}"
    page = operator_client.get(tab).get_data(as_text=True)
    answer = operator_client.post(f"/admin/customers/status/?id={acme.id}", data={
        "csrf_token": csrf_from(page), "status": str(inactive.id), "version_seen": str(acme.version),
        "back": tab})
    assert answer.status_code == 302 and answer.headers["Location"].endswith(tab)
    html = unescape(operator_client.get(tab).get_data(as_text=True))
    assert "Status changed to Inactive." in html
    assert 'class="badge badge-secondary"\n              data-testid="status-badge">Inactive' in html
    elsewhere = operator_client.post(f"/admin/customers/status/?id={acme.id}", data={
        "csrf_token": csrf_from(page), "status": str(inactive.id),
        "version_seen": str(session.get(Customer, acme.id).version), "back": "https://evil.example/"})
    assert elsewhere.headers["Location"].endswith(f"/admin/customers/overview/?id={acme.id}")


def test_opening_the_customer_pages_writes_nothing(operator_client, session, world):
    jana = world["jana"]
    version, events = jana.version, session.query(AuditEvent).count()
    for url in (f"/admin/customers/details/?id={jana.id}", f"/admin/customers/overview/?id={jana.id}",
                f"/admin/customers/edit/?id={jana.id}", "/admin/customers/", "/admin/customers/new/"):
        assert operator_client.get(url).status_code in (200, 302), url
    session.expire_all()
    assert session.get(Customer, jana.id).version == version
    assert session.query(AuditEvent).count() == events


def test_the_list_links_names_shows_badges_and_one_create_button_per_intent(operator_client, world):
    html = operator_client.get("/admin/customers/").get_data(as_text=True)
    jana = world["jana"]
    link = f'<a href="/admin/customers/overview/?id={jana.id}" data-testid="customer-link">Nová, Jana K.</a>'
    assert link in html
    assert '<span class="text-nowrap">+421 905 123 456</span>' in html
    assert 'data-testid="status-badge">Active</span>' in html
    assert ">Quick add<" in html and ">Add with the wizard<" in html
    assert "/admin/customers/new/" not in html  # Flask-Admin's own Create is not offered
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d+", html)  # timestamps to the minute
    # Its URL still answers, with the plain form that saves to the new customer's page.
    plain = operator_client.get("/admin/customers/new/")
    assert plain.status_code == 200 and 'name="company_name"' in plain.get_data(as_text=True)
    assert "Save and Add Another" not in plain.get_data(as_text=True)


def test_a_new_customer_from_the_plain_form_lands_on_its_page(operator_client, session):
    from services.customers import default_status

    created = operator_client.submit("/admin/customers/new/", {
        "kind": "person", "first_name": "Nový", "last_name": "Zákazník",
        "status": str(default_status(session).id)})
    assert created.status_code == 302
    customer = session.query(Customer).filter_by(last_name="Zákazník").one()
    assert created.headers["Location"].endswith(f"/admin/customers/overview/?id={customer.id}")
