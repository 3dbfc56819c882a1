"""Audit trail, two people editing one record, deletion with confirmation, operator assignment."""

import re

import pytest

from models import AuditEvent, Contact, Customer, Operator
from models.enums import CustomerKind
from tests.conftest import Browserless, csrf_from, version_on
from tests.served_app import page_text


def events(session, **filters):
    return session.query(AuditEvent).filter_by(**filters).order_by(AuditEvent.id).all()


def edit_data(customer, **changes):
    data = {"kind": "company", "company_name": customer.company_name, "status": str(customer.status_id),
            "email": customer.email or "", "version_seen": str(customer.version)}
    data.update(changes)
    return data


@pytest.fixture
def acme(new_customer, operator):
    return new_customer(kind=CustomerKind.COMPANY, company_name="ACME", email="office@acme.sk",
                        operators=[operator],
                        contacts=[{"first_name": "Jana", "last_name": "Nová", "email": "jana@acme.sk"}])


def test_every_change_leaves_an_event_with_old_and_new_values(maintainer_client, maintainer, session, acme):
    url = f"/admin/customers/edit/?id={acme.id}"
    page = maintainer_client.get(url).get_data(as_text=True)
    response = maintainer_client.post(url, data={**edit_data(acme, email="info@acme.sk"),
                                                  "csrf_token": csrf_from(page)})
    assert response.status_code == 302
    update = events(session, entity_type="customer", entity_id=acme.id, action="update")[-1]
    assert update.actor_label == maintainer.email
    assert update.changes == {"email": ["office@acme.sk", "info@acme.sk"]}
    assert update.entity_version == 2
    created = events(session, entity_type="customer", action="create")[0]
    assert created.changes["company_name"] == [None, "ACME"]
    assert events(session, entity_type="contact", action="create")[0].changes["last_name"] == [None, "Nová"]
    history = maintainer_client.get(f"/admin/customers/history/?id={acme.id}").get_data(as_text=True)
    assert "info@acme.sk" in history and maintainer.full_name in history  # who, by name


def test_status_change_and_operator_assignment_are_their_own_events(maintainer_client, session, acme,
                                                                   make_operator):
    from models import CustomerStatus

    inactive = session.query(CustomerStatus).filter_by(name="Inactive").one()
    second = make_operator("second@example.com", first_name="Sid", last_name="Second")
    page = maintainer_client.get(f"/admin/customers/details/?id={acme.id}", follow_redirects=True)
    response = maintainer_client.post(f"/admin/customers/status/?id={acme.id}", data={
        "status": str(inactive.id), "version_seen": str(acme.version),
        "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.status_code == 302
    response = maintainer_client.submit(f"/admin/customers/operators-tab/?id={acme.id}", {
        "operators": [str(second.id)], "version_seen": str(acme.version + 1)})
    assert response.status_code == 302
    assert events(session, action="status_change")[0].changes == {"status": ["Active", "Inactive"]}
    assert events(session, action="operator_assignment")[-1].changes == {
        "operators": [["Olga Operator"], ["Sid Second"]]}


def test_sign_ins_are_audited_success_and_failure(client, maintainer, session):
    client.login(maintainer.email, "wrong password")
    client.login(maintainer.email)
    assert [e.action for e in events(session, entity_type="operator")] == ["login_failure", "login_success"]
    assert events(session, action="login_failure")[0].actor_label == maintainer.email


def test_password_changes_are_masked_in_the_trail(maintainer_client, session, operator):
    response = maintainer_client.submit(f"/admin/operators/edit/?id={operator.id}", {
        "email": operator.email, "first_name": "Olga", "last_name": "Operator", "role": "operator",
        "is_active": "y", "password": "a brand new password", "version_seen": str(operator.version)})
    assert response.status_code == 302
    change = events(session, entity_type="operator", action="update")[-1]
    assert change.changes == {"password_hash": ["changed", "changed"]}
    trail = maintainer_client.get("/admin/audit/").get_data(as_text=True)
    assert "a brand new password" not in trail and "$argon2" not in trail


def test_audit_events_cannot_be_edited_or_deleted_in_the_panel(maintainer_client, session, acme):
    event = events(session)[0]
    maintainer_client.submit("/admin/audit/", {"id": str(event.id)}, post_url="/admin/audit/delete/")
    maintainer_client.submit("/admin/audit/", {"rowid": str(event.id), "action": "delete"},
                             post_url="/admin/audit/action/")
    maintainer_client.get(f"/admin/audit/edit/?id={event.id}")
    session.expire_all()
    assert session.get(AuditEvent, event.id) is not None
    assert 'href="/admin/audit/edit/' not in maintainer_client.get("/admin/audit/").get_data(as_text=True)


def test_second_save_of_the_same_record_is_refused_naming_who_changed_what(app, maintainer, operator,
                                                                           session, acme):
    first, second = Browserless(app.test_client()), Browserless(app.test_client())
    first.login(maintainer.email)
    second.login(operator.email)
    url = f"/admin/customers/edit/?id={acme.id}"
    first_page = first.get(url).get_data(as_text=True)
    second_page = second.get(url).get_data(as_text=True)
    assert first.post(url, data={**edit_data(acme, email="first@acme.sk"),
                                 "csrf_token": csrf_from(first_page)}).status_code == 302
    refused = second.post(url, data={**edit_data(acme, company_name="ACME Second", notes="typed by two"),
                                     "csrf_token": csrf_from(second_page)})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 200
    assert "changed while you were editing" in html and f"{maintainer.email} changed E-mail at" in html
    assert 'value="ACME Second"' in html and "typed by two" in html  # input kept
    session.expire_all()
    assert session.get(Customer, acme.id).company_name == "ACME"
    # Having seen the message, saving again applies the input deliberately.
    again = second.post(url, data={**edit_data(acme, company_name="ACME Second"),
                                   "version_seen": "2", "csrf_token": csrf_from(html)})
    assert again.status_code == 302
    session.expire_all()
    assert session.get(Customer, acme.id).company_name == "ACME Second"


def test_contact_edits_are_version_checked_too(app, maintainer, session, acme):
    contact = acme.contacts[0]
    first, second = Browserless(app.test_client()), Browserless(app.test_client())
    first.login(maintainer.email)
    second.login(maintainer.email)
    url = f"/admin/contacts/edit/?id={contact.id}"
    pages = [first.get(url).get_data(as_text=True), second.get(url).get_data(as_text=True)]
    data = {"customer": str(acme.id), "last_name": "Nová", "version_seen": str(contact.version)}
    saved = first.post(url, data={**data, "title": "CEO", "csrf_token": csrf_from(pages[0])})
    assert saved.status_code == 302
    refused = second.post(url, data={**data, "title": "CTO", "csrf_token": csrf_from(pages[1])})
    assert "changed while you were editing" in refused.get_data(as_text=True)
    session.expire_all()
    assert session.get(Contact, contact.id).title == "CEO"


def test_delete_asks_first_and_says_what_goes_with_it(maintainer_client, session, acme):
    page = maintainer_client.get(f"/admin/customers/delete-confirm/?id={acme.id}").get_data(as_text=True)
    assert "1 contact(s)" in page and "Set its status to Inactive" not in page
    list_page = maintainer_client.get("/admin/customers/").get_data(as_text=True)
    assert f"/admin/customers/delete-confirm/?id={acme.id}" in list_page
    response = maintainer_client.submit(f"/admin/customers/delete-confirm/?id={acme.id}",
                                        {"id": str(acme.id)}, post_url="/admin/customers/delete/")
    assert response.status_code == 302
    assert session.query(Customer).count() == 0 and session.query(Contact).count() == 0
    deleted = events(session, action="delete", entity_type="customer")[0]
    assert deleted.entity_label == "ACME" and deleted.changes["deleted_with"][1] == {"contacts": 1}


def test_referenced_customer_offers_deactivation_instead(maintainer_client, session, acme):
    from models import Request

    session.add(Request(customer=acme, subject="Printer"))
    session.commit()
    page = maintainer_client.get(f"/admin/customers/delete-confirm/?id={acme.id}").get_data(as_text=True)
    assert "cannot be deleted" in page and "Inactive" in page
    assert 'action="/admin/customers/delete/"' not in page


def test_operator_cannot_assign_operators_by_a_tampered_post(operator_client, operator, session, acme,
                                                              make_operator):
    friend = make_operator("friend@example.com")
    form = operator_client.get(f"/admin/customers/edit/?id={acme.id}").get_data(as_text=True)
    assert 'name="operators"' not in form
    response = operator_client.submit(f"/admin/customers/edit/?id={acme.id}", edit_data(
        acme, operators=[str(friend.id)]))
    assert response.status_code == 403
    created = operator_client.submit("/admin/customers/new/", {
        "kind": "company", "company_name": "Sneaky", "status": str(acme.status_id),
        "operators": [str(friend.id)]})
    assert created.status_code == 403
    session.expire_all()
    assert [o.id for o in session.get(Customer, acme.id).operators] == [operator.id]
    assert session.query(Customer).filter_by(company_name="Sneaky").count() == 0


def test_operator_creates_a_customer_and_may_then_edit_it(operator_client, operator, session):
    from services.customers import default_status

    new = {"kind": "company", "company_name": "Own Co", "status": str(default_status(session).id)}
    refused = operator_client.submit("/admin/customers/new/", new)
    assert refused.status_code == 200 and session.query(Customer).count() == 0  # no e-mail contact
    response = operator_client.submit("/admin/customers/new/", {
        **new, "contacts-0-last_name": "Vlastná", "contacts-0-email": "vlastna@own.example.sk"})
    assert response.status_code == 302
    own = session.query(Customer).filter_by(company_name="Own Co").one()
    assert own.created_by_id == operator.id
    assert operator_client.get(f"/admin/customers/edit/?id={own.id}").status_code == 200


def test_ownership_rights_page_changes_who_sees_what(maintainer_client, app, session, acme, make_operator,
                                                     operator):
    from models import Team

    team = Team(name="Desk")
    colleague = make_operator("colleague@example.com")
    colleague.teams = [team]
    session.get(Operator, operator.id).teams = [team]
    session.commit()
    watcher = Browserless(app.test_client())
    watcher.login("colleague@example.com")
    assert "ACME" not in watcher.get("/admin/customers/").get_data(as_text=True)
    response = maintainer_client.submit("/admin/ownership-rights/", {
        "view_by_team_members": "on", "version_seen": version_on(maintainer_client.get(
            "/admin/ownership-rights/").get_data(as_text=True))})
    assert response.status_code == 302
    assert "ACME" in watcher.get("/admin/customers/").get_data(as_text=True)
    assert watcher.get(f"/admin/customers/edit/?id={acme.id}").status_code == 403
    assert events(session, entity_type="globalsettings")[0].changes == {"view_by_team_members": [False, True]}


def test_a_manager_the_operator_may_not_see_is_masked_and_kept(operator_client, operator, session,
                                                                new_customer):
    boss = new_customer(kind=CustomerKind.PERSON, first_name="Hidden", last_name="Bossová",
                        email="hidden.boss@example.sk")
    worker = new_customer(kind=CustomerKind.PERSON, first_name="Wendy", last_name="Worker",
                          manager=boss, operators=[operator])
    for url in (f"/admin/customers/details/?id={worker.id}", f"/admin/customers/edit/?id={worker.id}",
                "/admin/customers/export/csv/"):
        body = operator_client.get(url, follow_redirects=True).get_data(as_text=True)
        assert "Bossová" not in body and "hidden.boss" not in body, url
    assert "(restricted)" in operator_client.get(f"/admin/customers/details/?id={worker.id}",
                                                 follow_redirects=True).get_data(as_text=True)
    response = operator_client.submit(f"/admin/customers/edit/?id={worker.id}", {
        "kind": "person", "first_name": "Wendy", "last_name": "Worker-Nová", "manager": "kept",
        "status": str(worker.status_id), "version_seen": str(worker.version)})
    assert response.status_code == 302
    session.expire_all()
    saved = session.get(Customer, worker.id)
    assert saved.last_name == "Worker-Nová" and saved.manager_id == boss.id
    # …but a hidden person cannot be picked as the manager of another customer.
    other = new_customer(kind=CustomerKind.PERSON, first_name="Olaf", last_name="Other", operators=[operator])
    refused = operator_client.submit(f"/admin/customers/edit/?id={other.id}", {
        "kind": "person", "first_name": "Olaf", "last_name": "Other", "manager": str(boss.id),
        "status": str(other.status_id)})
    assert "Not one of the records you can choose here." in refused.get_data(as_text=True)


def test_ownership_rights_saved_meanwhile_by_another_maintainer_are_not_overwritten(
        maintainer_client, app, make_operator, session):
    from models.enums import OperatorRole

    make_operator("second.boss@example.com", OperatorRole.MAINTAINER)
    other = Browserless(app.test_client())
    other.login("second.boss@example.com")
    stale_page = maintainer_client.get("/admin/ownership-rights/").get_data(as_text=True)
    assert other.submit("/admin/ownership-rights/", {"edit_by_managers": "on",
                                                     "version_seen": "1"}).status_code == 302
    version = stale_page.split('name="version_seen" value="')[1].split('"')[0]
    refused = maintainer_client.post("/admin/ownership-rights/", data={
        "view_by_team_members": "on", "version_seen": version, "csrf_token": csrf_from(stale_page)})
    assert "second.boss@example.com changed Managers may edit at" in refused.get_data(as_text=True)
    from models import GlobalSettings

    session.expire_all()
    rights = session.get(GlobalSettings, 1)
    assert rights.edit_by_managers and not rights.view_by_team_members


def test_change_status_dialog_records_who_changed_it(operator_client, operator, session, acme):
    from models import CustomerStatus

    inactive = session.query(CustomerStatus).filter_by(name="Inactive").one()
    details = operator_client.get(f"/admin/customers/details/?id={acme.id}",
                                  follow_redirects=True).get_data(as_text=True)
    assert "Change Status" in details and 'name="status"' in details
    response = operator_client.post(f"/admin/customers/status/?id={acme.id}", data={
        "status": str(inactive.id), "version_seen": str(acme.version), "csrf_token": csrf_from(details)})
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Customer, acme.id).status.name == "Inactive"
    event = events(session, action="status_change")[-1]
    assert event.actor_label == operator.email and event.changes == {"status": ["Active", "Inactive"]}
    stale = operator_client.post(f"/admin/customers/status/?id={acme.id}", data={
        "status": str(acme.status_id), "version_seen": "1", "csrf_token": csrf_from(details)},
        follow_redirects=True)
    assert "changed while you were editing" in stale.get_data(as_text=True)


# --- History and the audit trail in the users' words ----------------------------------------------

def _pages(client, customer_id: int) -> tuple[str, str]:
    history = client.get(f"/admin/customers/history/?id={customer_id}", follow_redirects=True)
    trail = client.get("/admin/audit/")
    assert history.status_code == 200 and trail.status_code == 200
    return tuple(page_text(re.sub(r'<div id="filter-groups-data".*?</div>', "", page.get_data(as_text=True),
                                  flags=re.S))  # the filters' data for the script: not shown
                 for page in (history, trail))  # type: ignore[return-value]


def test_history_and_trail_show_labels_formatted_values_and_times_in_the_operators_zone(
        maintainer_client, maintainer, session, acme):
    from datetime import datetime

    from models import CustomerSettings
    from services.transactions import unit_of_work

    with unit_of_work(session):
        maintainer.time_zone = "America/New_York"
        settings = acme.settings or CustomerSettings(customer=acme)
        session.add(settings)
        session.flush()
        session.add_all([
            AuditEvent(at=datetime(2025, 1, 15, 13, 45, 30, 123456), actor_label=maintainer.email,
                       action="update", entity_type="customer", entity_id=acme.id, entity_label="ACME",
                       changes={"primary_phone": [None, "+421903123456"], "kind": ["person", "company"],
                                "operators": [[], ["Jana Operátorová", "Olga Operator"]]}),
            # Older events stored a repr for a record without a name, and masked secrets.
            AuditEvent(actor_label="system", action="create", entity_type="customersettings",
                       entity_id=settings.id, entity_label=f"<CustomerSettings {settings.id}>",
                       changes={"cmonitor_password_encrypted": ["changed", "changed"],
                                "requests_by_email_enabled": [False, True]}),
            AuditEvent(actor_label=maintainer.email, action="status_change", entity_type="customer",
                       entity_id=acme.id, entity_label="ACME", changes={"status": ["Active", "Inactive"]}),
        ])
    for page in _pages(maintainer_client, acme.id):
        assert "Primary phone: — → +421 903 123 456" in page
        assert "Kind: Person → Company" in page
        assert "Responsible operators: — → Jana Operátorová, Olga Operator" in page
        assert "Jan 15, 2025 08:45" in page and "13:45" not in page  # New York, to the minute
        assert "C-Monitor access password: changed → changed" in page
        assert "Requests and discussion by e-mail: No → Yes" in page
        assert "Status changed" in page and "Customer settings" in page
        assert "<CustomerSettings" not in page and "status_change" not in page
        assert "customersettings" not in page and "primary_phone" not in page and "['" not in page


def test_every_stored_event_renders_merges_and_odd_values_included(maintainer_client, maintainer, session,
                                                                    acme):
    from services.transactions import unit_of_work

    with unit_of_work(session):
        about = {"entity_type": "customer", "entity_id": acme.id, "entity_label": "ACME"}
        session.add_all([
            AuditEvent(actor_label=maintainer.email, action="merge", **about, changes={
                "merged": ["ACME s.r.o.", "ACME"],
                "undo": {"fields": {"email": "x@acme.sk"}, "moved": {"contacts": [1, 2]},
                         "survivor": acme.id}}),
            AuditEvent(actor_label=maintainer.email, action="delete", **about,
                       changes={"deleted_with": [None, {"contacts": 2, "settings": 1}]}),
            AuditEvent(actor_label="system", action="odd_new_action", **about,
                       changes={"notes": "just a text", "three": [1, 2, 3], "deep": {"a": [None, {"b": 1}]}}),
        ])
    history, trail = _pages(maintainer_client, acme.id)
    for page in (history, trail):
        assert "Merged: ACME s.r.o. → ACME" in page and "x@acme.sk" not in page  # the undo record: not shown
        assert "Deleted with: — → Contacts: 2, Customer settings: 1" in page
        assert "Notes: just a text" in page and "Odd new action" in page
    event = events(session, action="merge")[-1]
    details = maintainer_client.get(f"/admin/audit/details/?id={event.id}")
    assert details.status_code == 200
    assert "Merged: ACME s.r.o. → ACME" in page_text(details.get_data(as_text=True))


def test_a_settings_event_names_the_customer_not_a_repr(session, acme):
    from models import CustomerSettings
    from services.audit import record
    from services.transactions import unit_of_work

    with unit_of_work(session):
        settings = acme.settings or CustomerSettings(customer=acme)
        session.add(settings)
        session.flush()
        record(session, None, "update", settings, {"requests_by_email_enabled": [False, True]},
               entity_type="customersettings")
    assert events(session, entity_type="customersettings")[-1].entity_label == "ACME"
