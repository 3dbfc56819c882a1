"""Requests (incidents): created from a customer, contacts of that customer only, policy applied."""

import html

import pytest

from models import AuditEvent, Request
from models.enums import CustomerKind
from tests.conftest import version_on
from tests.test_get_never_writes import changed, snapshot


@pytest.fixture
def companies(new_customer, operator):
    mine = new_customer(kind=CustomerKind.COMPANY, company_name="Mine Co", operators=[operator],
                        contacts=[{"first_name": "Mia", "last_name": "Mineová", "email": "mia@mine.sk"}])
    other = new_customer(kind=CustomerKind.COMPANY, company_name="Other Co",
                         contacts=[{"first_name": "Oto", "last_name": "Otherový", "email": "oto@other.sk"}])
    return mine, other


def test_create_an_incident_from_the_customer(operator_client, operator, session, companies):
    mine, _ = companies
    details = operator_client.get(f"/admin/customers/details/?id={mine.id}",
                                  follow_redirects=True).get_data(as_text=True)  # the customer page
    assert f"/admin/requests/new/?customer={mine.id}" in details
    form = operator_client.get(f"/admin/requests/new/?customer={mine.id}").get_data(as_text=True)
    assert "Mine Co" in form
    response = operator_client.submit(f"/admin/requests/new/?customer={mine.id}", {
        "customer": str(mine.id), "subject": "Printer jam", "status": "new",
        "contacts": [str(mine.contacts[0].id)]})
    assert response.status_code == 302
    created = session.query(Request).one()
    assert created.customer_id == mine.id and created.created_by_id == operator.id
    assert [c.last_name for c in created.contacts] == ["Mineová"]
    assert session.query(AuditEvent).filter_by(entity_type="request", action="create").count() == 1


def test_contacts_of_another_customer_are_refused(maintainer_client, session, companies):
    mine, other = companies
    response = maintainer_client.submit("/admin/requests/new/", {
        "customer": str(mine.id), "subject": "Mixed up", "status": "new",
        "contacts": [str(other.contacts[0].id)]})
    assert "Assign only contacts of the request" in response.get_data(as_text=True)
    assert session.query(Request).count() == 0


def test_an_operator_cannot_raise_an_incident_for_a_customer_they_cannot_see(operator_client, session,
                                                                          companies):
    _, other = companies
    response = operator_client.submit("/admin/requests/new/", {
        "customer": str(other.id), "subject": "Sneaky", "status": "new"})
    assert "Not one of the records you can choose here." in response.get_data(as_text=True)
    assert session.query(Request).count() == 0
    contacts = operator_client.get(f"/admin/requests/contacts-of/?customer={other.id}")
    assert contacts.status_code == 404 and b"Oto" not in contacts.data


def test_deleting_a_request_is_audited_and_needs_the_edit_right(operator_client, maintainer_client, session,
                                                                companies):
    mine, other = companies
    own, foreign = Request(customer=mine, subject="Mine"), Request(customer=other, subject="Foreign")
    session.add_all([own, foreign])
    session.commit()
    own_id, foreign_id = own.id, foreign.id
    assert operator_client.submit("/admin/requests/", {"id": str(foreign_id)},
                                  post_url="/admin/requests/delete/").status_code == 404
    assert operator_client.submit("/admin/requests/", {"id": str(own_id)},
                                  post_url="/admin/requests/delete/").status_code == 302
    session.expire_all()
    assert [r.subject for r in session.query(Request)] == ["Foreign"]
    event = session.query(AuditEvent).filter_by(entity_type="request", action="delete").one()
    assert event.entity_id == own_id


def test_the_contact_picker_offers_only_the_chosen_customers_contacts(operator_client, session, new_customer,
                                                                      operator, companies):
    mine, other = companies
    second = new_customer(kind=CustomerKind.COMPANY, company_name="Second Co", operators=[operator],
                          contacts=[{"first_name": "Sára", "last_name": "Druhá", "email": "sara@second.sk",
                                     "title": "IT manager", "is_main": True}])
    blank = operator_client.get("/admin/requests/new/").get_data(as_text=True)
    picker = blank.split('data-testid="contact-picker"')[1].split("</small>")[0]
    assert "Choose the customer first" in picker and "Please select model" not in blank
    assert "Mineová" not in picker and "Otherový" not in picker
    chosen = operator_client.get(f"/admin/requests/new/?customer={mine.id}").get_data(as_text=True)
    picker = html.unescape(chosen.split('data-testid="contact-picker"')[1].split("</small>")[0])
    assert "Mia Mineová" in picker and "Contact — mia@mine.sk" in picker and "Otherový" not in picker

    # The picker reloads from a GET that answers only for a customer the operator may view.
    answer = operator_client.get(f"/admin/requests/contacts-of/?customer={second.id}")
    assert answer.status_code == 200
    assert answer.get_json()["contacts"] == [{"id": second.contacts[0].id, "name": "Sára Druhá",
                                              "role": "Main contact, IT manager", "email": "sara@second.sk",
                                              "inactive": False}]
    before = snapshot()
    for hidden in (str(other.id), "0", "abc", "99999999999999999999", ""):
        refused = operator_client.get(f"/admin/requests/contacts-of/?customer={hidden}")
        assert refused.status_code == 404 and b"Oto" not in refused.data
    assert not changed(before, snapshot())


def test_editing_keeps_the_assigned_contacts_ticked_and_refuses_strangers(operator_client, session,
                                                                          companies):
    mine, other = companies
    incident = Request(customer=mine, subject="Printer", contacts=[mine.contacts[0]])
    session.add(incident)
    session.commit()
    page = operator_client.get(f"/admin/requests/edit/?id={incident.id}").get_data(as_text=True)
    assert f'value="{mine.contacts[0].id}" checked' in page
    seen = version_on(page)
    refused = operator_client.submit(f"/admin/requests/edit/?id={incident.id}", {
        "customer": str(mine.id), "subject": "Printer", "status": "new", "version_seen": seen,
        "contacts": [str(mine.contacts[0].id), str(other.contacts[0].id)]})
    text = html.unescape(refused.get_data(as_text=True))
    assert refused.status_code == 200 and "these contact ids are not among its contacts" in text
    assert 'class="invalid-feedback"' in text or "invalid-feedback" in text
    saved = operator_client.submit(f"/admin/requests/edit/?id={incident.id}", {
        "customer": str(mine.id), "subject": "Printer", "status": "new", "version_seen": seen})
    assert saved.status_code == 302
    session.expire_all()
    assert session.get(Request, incident.id).contacts == []
