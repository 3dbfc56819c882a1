"""The quick form's server side, duplicate detection against the database, and who receives a
request's communication — on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from models import AuditEvent, Contact, Customer, CustomerStatus, GlobalSettings, Request
from models.enums import CustomerKind
from services.duplicates import find_duplicates, make_probe
from services.requests import request_recipients
from tests.conftest import csrf_from

CREATE = "/admin/customers/quick/create"


def post(client, url, data):
    token = csrf_from(client.get("/admin/customers/").get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


@pytest.fixture
def kovac(new_customer, make_operator):
    owner = make_operator("owner@example.com", first_name="Oskar", last_name="Owner")
    return new_customer(kind=CustomerKind.PERSON, first_name="Peter", last_name="Kováč",
                        email="Peter.Kovac@Example.sk", primary_phone="0903 123 456", operators=[owner])


@pytest.fixture
def acme(new_customer, operator):
    return new_customer(kind=CustomerKind.COMPANY, company_name="ACME s.r.o.", registration_number="50111222",
                        operators=[operator],
                        contacts=[{"first_name": "Jana", "last_name": "Nová", "email": "jana@acme.sk",
                                   "phone": "+421 2 5010 1234", "is_main": True}])


def test_candidates_are_found_by_each_key_with_their_reasons(session, kovac, acme):
    def reasons(**typed):
        return {(c.label, tuple(c.reasons)) for c in find_duplicates(
            session, None, make_probe(phone_region="SK", **typed), threshold=88)}

    assert reasons(kind="person", name="Kovac Peter") == {("Kováč, Peter", ("same name",))}
    assert reasons(kind="person", name="X Y", email="peter.kovac@EXAMPLE.SK") == \
        {("Kováč, Peter", ("same e-mail",))}
    assert reasons(kind="person", name="X Y", phone="+421903123456") == {("Kováč, Peter", ("same phone",))}
    assert reasons(kind="company", name="Acme, spol. s r.o.") == {("ACME s.r.o.", ("same company name",))}
    assert reasons(kind="company", name="Other", registration_number="50 111 222") == \
        {("ACME s.r.o.", ("same company ID",))}
    # Contacts count as well: a person typed with a contact's e-mail or name.
    assert reasons(kind="person", name="Jana Nova", email="JANA@acme.sk") == \
        {("Jana Nová", ("same e-mail", "same name"))}
    assert reasons(kind="person", name="Petr Kovacs")  # a typo is still similar
    assert reasons(kind="person", name="Zuzana Hrubá") == set()


def test_inactive_records_are_found_and_offered_for_reactivation(session, kovac):
    kovac.status = session.query(CustomerStatus).filter_by(name="Inactive").one()
    session.commit()
    [candidate] = find_duplicates(session, None, make_probe(kind="person", name="Peter Kováč"))
    assert candidate.inactive and candidate.status == "Inactive"


def test_operator_sees_no_details_of_candidates_they_may_not_view(session, kovac, operator):
    # A name is no key: another operator's namesake is none of this operator's business.
    assert find_duplicates(session, operator, make_probe(kind="person", name="Peter Kovac")) == []
    [candidate] = find_duplicates(session, operator, make_probe(kind="person", name="Peter Kovac",
                                                                email="peter.kovac@example.sk"))
    assert not candidate.visible and candidate.label == "" and candidate.id is None
    assert candidate.email == "" and candidate.ask == "Ask Oskar Owner, or a maintainer."
    assert candidate.reasons == ["same e-mail"] and candidate.score is None  # no similarity given away


def test_candidates_endpoint_answers_json_limited_by_access(operator_client, kovac, acme):
    assert operator_client.get("/admin/customers/quick/candidates?kind=person&name=kovac+peter"
                               ).get_json()["candidates"] == []
    body = operator_client.get("/admin/customers/quick/candidates?kind=person&name=kovac+peter"
                               "&email=peter.kovac%40example.sk").get_json()
    assert body["candidates"] == [{**body["candidates"][0], "visible": False, "label": "", "score": None,
                                   "reasons": ["same e-mail"]}]
    assert "Kov" not in str(body) and "903" not in str(body)
    own = operator_client.get("/admin/customers/quick/candidates?kind=company&name=acme").get_json()
    assert own["candidates"][0]["label"] == "ACME s.r.o." and own["candidates"][0]["kind"] == "Company"


def test_a_strong_duplicate_is_refused_without_confirmation(maintainer_client, session, kovac):
    refused = post(maintainer_client, CREATE, {"kind": "person", "name": "Kováč Peter",
                                               "email": "peter.kovac@example.sk"})
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["candidates"][0]["label"] == "Kováč, Peter"
    assert set(body["candidates"][0]["reasons"]) == {"same e-mail", "same name"}
    assert session.query(Customer).count() == 1

    confirmed = post(maintainer_client, CREATE, {"kind": "person", "name": "Peter Kováč",
                                                 "email": "peter.kovac@example.sk", "confirm_duplicate": "1"})
    assert confirmed.status_code == 201 and confirmed.get_json()["label"] == "Kováč, Peter"
    assert session.query(Customer).count() == 2


def test_a_namesake_with_other_keys_is_listed_not_refused(maintainer_client, session, kovac):
    created = post(maintainer_client, CREATE, {"kind": "person", "name": "Peter Kováč", "email": "p@x.sk"})
    assert created.status_code == 201
    assert session.query(Customer).filter_by(last_name="Kováč").count() == 2


def test_the_refusal_names_whom_to_ask_without_details(operator_client, session, kovac):
    refused = post(operator_client, CREATE, {"kind": "person", "name": "Peter Kováč",
                                             "email": "peter.kovac@example.sk"})
    assert refused.status_code == 409
    [candidate] = refused.get_json()["candidates"]
    assert candidate["visible"] is False and candidate["ask"].startswith("Ask Oskar Owner")
    assert "Kov" not in refused.get_data(as_text=True).replace("Kov\\u00e1\\u010d", "")


def test_every_field_is_checked_at_once_with_messages_on_the_fields(maintainer_client, session):
    refused = post(maintainer_client, CREATE, {"kind": "person", "name": "Madonna", "email": "",
                                               "phone": "12"})
    assert refused.status_code == 422
    errors = refused.get_json()["errors"]
    assert set(errors) == {"name", "email", "phone"}  # one answer, not one message at a time
    refused = post(maintainer_client, CREATE, {"kind": "company", "name": "", "email": "nobody@",
                                               "phone": "12"})
    assert set(refused.get_json()["errors"]) == {"name", "email", "phone"}
    refused = post(maintainer_client, CREATE, {"kind": "company", "name": "Phone Co", "email": "a@b.sk",
                                               "phone": "12"})
    assert refused.status_code == 422 and "phone" in refused.get_json()["errors"]
    assert post(maintainer_client, CREATE, {"kind": "robot", "name": "X"}).status_code == 422
    assert session.query(Customer).count() == 0


def test_a_person_without_email_only_where_the_maintainer_allows_it(maintainer_client, session):
    assert post(maintainer_client, CREATE, {"kind": "person", "name": "Eva Malá"}).status_code == 422
    session.get(GlobalSettings, 1).quick_form_requires_email = False
    session.commit()
    created = post(maintainer_client, CREATE, {"kind": "person", "name": "Eva Malá"})
    assert created.status_code == 201
    assert "cannot write" in created.get_json()["warning"]
    person = session.query(Customer).one()
    assert (person.first_name, person.last_name, person.email) == ("Eva", "Malá", None)


def test_a_company_is_created_with_its_contacts_in_one_post(operator_client, session, operator):
    company = {"kind": "company", "name": "Tatra Quick a.s.", "email": "office@tatra-quick.sk",
               "phone": "02 5010 1111"}
    # The company alone: refused only for its contacts, so the modal asks for them; nothing written.
    alone = post(operator_client, CREATE, company)
    assert alone.status_code == 422
    body = alone.get_json()
    assert set(body["errors"]) == {"contacts"} and body["step"] == "contacts"
    assert "contact with an e-mail" in body["errors"]["contacts"][0]
    assert session.query(Customer).count() == 0
    no_email = post(operator_client, CREATE, {**company, "contacts-0-last_name": "Bez",
                                              "contacts-0-is_main": "1"})
    assert no_email.status_code == 422 and set(no_email.get_json()["errors"]) == {"contacts"}
    assert "step" not in no_email.get_json()  # contacts were given: the message is for them
    bad_row = post(operator_client, CREATE, {**company, "contacts-0-last_name": "Prvá",
                                             "contacts-0-email": "prva@t.sk", "contacts-1-first_name": "Bez",
                                             "contacts-1-email": "x@"})
    assert set(bad_row.get_json()["errors"]) == {"contacts-1-last_name", "contacts-1-email"}
    assert session.query(Customer).count() == 0 and session.query(Contact).count() == 0
    saved = post(operator_client, CREATE, {
        **company, "contacts-0-first_name": "Ján", "contacts-0-last_name": "Hlavný",
        "contacts-0-email": "jan@tatra-quick.sk", "contacts-0-is_main": "1",
        "contacts-1-last_name": "Druhý", "contacts-1-phone": "0903 111 222", "contacts-1-is_main": "",
        "contacts-2-first_name": "", "contacts-2-last_name": "", "contacts-2-email": ""})  # left empty
    assert saved.status_code == 201
    answer = saved.get_json()
    assert (answer["label"], answer["kind"], answer["contacts"]) == ("Tatra Quick a.s.", "company", 2)
    contacts = {c.last_name: c for c in session.query(Contact)}
    assert set(contacts) == {"Hlavný", "Druhý"}
    assert contacts["Hlavný"].is_main and not contacts["Druhý"].is_main
    assert contacts["Druhý"].phone == "+421903111222"
    created = session.get(Customer, answer["id"])
    assert created.created_by_id == operator.id  # the creator may edit what they created
    assert {c.customer_id for c in contacts.values()} == {created.id}
    assert {e.action for e in session.query(AuditEvent).filter_by(entity_type="contact")} == {"create"}


def test_a_duplicate_company_is_asked_about_before_its_contacts(maintainer_client, session, acme):
    typed = {"kind": "company", "name": "ACME, spol. s r.o.", "email": "info@acme-two.sk"}
    refused = post(maintainer_client, CREATE, typed)
    assert refused.status_code == 409 and refused.get_json()["candidates"][0]["label"] == "ACME s.r.o."
    confirmed = post(maintainer_client, CREATE, {**typed, "confirm_duplicate": "1"})
    assert confirmed.status_code == 422 and confirmed.get_json()["step"] == "contacts"
    saved = post(maintainer_client, CREATE, {**typed, "confirm_duplicate": "1",
                                             "contacts-0-last_name": "Druhá",
                                             "contacts-0-email": "druha@acme-two.sk"})
    assert saved.status_code == 201 and session.query(Customer).count() == 2


def test_names_longer_than_their_columns_get_a_message_on_the_field(maintainer_client, session):
    company = post(maintainer_client, CREATE, {"kind": "company", "name": "F" * 201, "email": "a@b.sk",
                                               "contacts-0-last_name": "L", "contacts-0-email": "c@b.sk"})
    assert company.status_code == 422
    assert company.get_json()["errors"] == {"name": ["At most 200 characters, please (201 given)."]}
    contact = post(maintainer_client, CREATE, {"kind": "company", "name": "F", "email": "a@b.sk",
                                               "contacts-0-last_name": "L" * 81,
                                               "contacts-0-email": "c@b.sk"})
    assert contact.get_json()["errors"] == {
        "contacts-0-last_name": ["At most 80 characters, please (81 given)."]}
    person = post(maintainer_client, CREATE, {"kind": "person", "name": "Eva " + "M" * 81, "email": "e@b.sk"})
    assert person.status_code == 422 and "At most 80 characters" in person.get_json()["errors"]["name"][0]
    assert session.query(Customer).count() == 0
    fits = post(maintainer_client, CREATE, {"kind": "company", "name": "F" * 200, "email": "a@b.sk",
                                            "contacts-0-last_name": "L" * 80, "contacts-0-email": "c@b.sk"})
    assert fits.status_code == 201


def test_control_characters_get_a_field_message_not_a_500(maintainer_client, session):
    person = post(maintainer_client, CREATE, {"kind": "person", "name": "Eva, Ma\x00lá", "email": "e@b.sk"})
    assert person.status_code == 422 and "control characters" in person.get_json()["errors"]["name"][0]
    company = post(maintainer_client, CREATE, {"kind": "company", "name": "Firma", "email": "e@b.sk",
                                               "contacts-0-last_name": "A\x00", "contacts-0-email": "a@b.sk"})
    assert company.status_code == 422 and "contacts-0-last_name" in company.get_json()["errors"]
    assert session.query(Customer).count() == 0


def test_the_modal_asks_for_contacts_without_a_way_to_skip_them(maintainer_client):
    page = maintainer_client.get("/admin/customers/").get_data(as_text=True)
    modal = page.split('id="quick-create"')[1]
    assert "data-skip" not in modal and "Later" not in modal
    assert "is not saved yet: a company is saved together with its" in modal
    assert 'id="qc-name" name="name" autocomplete="off" maxlength="200"' in modal  # from the column


def test_a_post_without_the_csrf_token_is_refused(maintainer_client, session):
    response = maintainer_client.post(CREATE, data={"kind": "company", "name": "No Token", "email": "a@b.sk"})
    assert response.status_code == 400
    assert session.query(Customer).count() == 0


def test_maintainer_tunes_the_rules_and_operators_cannot(maintainer_client, operator_client, session):
    url = "/admin/quick-create-rules/"
    refused = maintainer_client.submit(url, {"duplicate_name_threshold": "30", "version_seen": "1"})
    assert refused.status_code == 200 and "from 50 to 100" in refused.get_data(as_text=True)
    version = session.get(GlobalSettings, 1).version
    saved = maintainer_client.submit(url, {"duplicate_name_threshold": "75", "version_seen": str(version)})
    assert saved.status_code == 302
    session.expire_all()
    rules = session.get(GlobalSettings, 1)
    assert (rules.duplicate_name_threshold, rules.quick_form_requires_email) == (75, False)
    assert operator_client.get(url).status_code == 403


def test_recipients_are_main_contacts_assigned_contacts_and_a_persons_own_email(session, acme, kovac):
    other = Contact(first_name="Ivan", last_name="Iný", email="ivan@acme.sk")
    silent = Contact(first_name="Tichý", last_name="Bez", email=None)
    acme.contacts.extend([other, silent])
    session.commit()
    company_request = Request(customer=acme, subject="Printer", contacts=[other, silent, acme.contacts[0]])
    person_request = Request(customer=kovac, subject="Laptop")
    only_main = Request(customer=acme, subject="Only main")
    session.add_all([company_request, person_request, only_main])
    session.commit()
    assert [(r.email, r.why) for r in request_recipients(company_request)] == [
        ("jana@acme.sk", "main contact"), ("ivan@acme.sk", "assigned to this request")]
    assert [(r.email, r.why) for r in request_recipients(person_request)] == [
        ("Peter.Kovac@example.sk", "the customer")]
    assert request_recipients(only_main) == request_recipients(company_request)[:1]


def test_the_request_page_lists_its_recipients(operator_client, session, acme):
    incident = Request(customer=acme, subject="Network down")
    session.add(incident)
    session.commit()
    page = operator_client.get(f"/admin/requests/edit/?id={incident.id}").get_data(as_text=True)
    assert 'data-testid="recipients"' in page and "jana@acme.sk" in page and "main contact" in page


def test_the_plain_create_form_refuses_a_strong_duplicate_too(maintainer_client, session, kovac):
    from tests.test_customer_views import form_of

    data = form_of("person", first_name="Peter", last_name="Kovac", email="peter.kovac@example.sk")
    refused = maintainer_client.submit("/admin/customers/new/", data)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 200 and "Matches: Kováč, Peter (same e-mail, same name)" in html
    assert session.query(Customer).count() == 1
    created = maintainer_client.submit("/admin/customers/new/", {**data, "confirm_duplicate": "y"})
    assert created.status_code == 302 and session.query(Customer).count() == 2


def test_a_duplicate_and_the_field_messages_come_in_one_answer(maintainer_client, session, kovac, acme):
    refused = post(maintainer_client, CREATE, {"kind": "person", "name": "Peter Kováč",
                                               "email": "peter.kovac@example.sk", "phone": "12"})
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["candidates"][0]["label"] == "Kováč, Peter" and "phone" in body["errors"]
    # The contact rows are checked together with the company's own fields.
    rows = post(maintainer_client, CREATE, {"kind": "company", "name": "Nová Firma", "email": "x@",
                                            "contacts-0-first_name": "Bez", "contacts-1-last_name": "Druhý",
                                            "contacts-1-email": "druhy@"})
    assert rows.status_code == 422
    assert set(rows.get_json()["errors"]) == {"email", "contacts-0-last_name", "contacts-1-email"}
    nobody = post(maintainer_client, CREATE, {"kind": "company", "name": "Nová Firma", "email": "a@b.sk",
                                              "contacts-0-first_name": "Bez",
                                              "contacts-1-last_name": "Druhý"})
    assert set(nobody.get_json()["errors"]) == {"contacts-0-last_name", "contacts"}  # no e-mail: said now
    assert session.query(Customer).count() == 2


@pytest.fixture
def inactive_kovac(session, kovac):
    kovac.status = session.query(CustomerStatus).filter_by(is_active=False).first()
    session.commit()
    return kovac


REACTIVATE = "/admin/customers/quick/reactivate"


def test_an_inactive_match_is_reactivated_by_whoever_may_edit_it(maintainer_client, session, inactive_kovac):
    body = maintainer_client.get("/admin/customers/quick/candidates?kind=person&name=kovac+peter").get_json()
    [candidate] = body["candidates"]
    assert candidate["inactive"] and candidate["may_reactivate"]
    assert candidate["version"] == inactive_kovac.version
    done = post(maintainer_client, REACTIVATE, {"customer": str(inactive_kovac.id),
                                                "version_seen": str(candidate["version"])})
    assert done.status_code == 200
    assert done.get_json()["label"] == "Kováč, Peter" and "active again" in done.get_json()["message"]
    session.expire_all()
    assert session.get(Customer, inactive_kovac.id).status.is_active
    assert session.query(AuditEvent).filter_by(entity_type="customer", action="status_change").count() == 1
    # Once more, on the version seen before: the record changed meanwhile, nothing is written.
    again = post(maintainer_client, REACTIVATE, {"customer": str(inactive_kovac.id),
                                                 "version_seen": str(candidate["version"])})
    assert again.status_code == 422


def test_reactivating_needs_the_edit_right_and_a_customer_one_may_see(app, session, operator_client, operator,
                                                                     make_operator, inactive_kovac):
    from models import Team
    from tests.conftest import Browserless

    before = session.get(Customer, inactive_kovac.id).status_id
    # An operator who cannot see the customer: as if it did not exist.
    hidden = post(operator_client, REACTIVATE, {"customer": str(inactive_kovac.id),
                                                "version_seen": str(inactive_kovac.version)})
    assert hidden.status_code == 404 and "Kov" not in hidden.get_data(as_text=True)
    for odd in ("", "abc", "0", "99999999999999999999"):
        assert post(operator_client, REACTIVATE, {"customer": odd, "version_seen": "1"}).status_code == 404
    # A team member of its operator may view it (the maintainer's ownership rights), not edit it.
    viewer = make_operator("vera@example.com", first_name="Vera", last_name="Viewer")
    team = Team(name="Desk")
    session.add(team)
    viewer.teams, inactive_kovac.operators[0].teams = [team], [team]
    session.get(GlobalSettings, 1).view_by_team_members = True
    session.commit()
    browser = Browserless(app.test_client())
    assert browser.login("vera@example.com").status_code == 302
    [candidate] = browser.get("/admin/customers/quick/candidates?kind=person&name=kovac+peter").get_json()[
        "candidates"]
    assert candidate["visible"] and candidate["inactive"] and not candidate["may_reactivate"]
    refused = post(browser, REACTIVATE, {"customer": str(inactive_kovac.id),
                                         "version_seen": str(inactive_kovac.version)})
    assert refused.status_code == 403
    # Without the CSRF token nothing happens either.
    assert browser.post(REACTIVATE, data={"customer": str(inactive_kovac.id)}).status_code == 400
    session.expire_all()
    assert session.get(Customer, inactive_kovac.id).status_id == before
