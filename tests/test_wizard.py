"""The classic six-step wizard through the test client, on SQLite and PostgreSQL."""

import re

from markupsafe import escape
from sqlalchemy import func, select

from extensions import db
from models import AuditEvent, Contact, Customer, CustomerSettings, WizardDraft
from services.contacts import CONTACT_EMAIL_NEEDED
from services.secrets import SecretBox
from services.transactions import unit_of_work
from tests.conftest import ENCRYPTION_KEY, Browserless, csrf_from

COMPANY = {"kind": "company", "company_name": "Wizard Works s.r.o.", "registration_number": "50 111 222",
           "email": "office@wizard.example.sk", "primary_phone": "02 5010 1234", "primary_phone_type": "work",
           "contact_first_name": "Vera", "contact_last_name": "Vodová",
           "contact_email": "vera@wizard.example.sk"}
NEEDED = str(escape(CONTACT_EMAIL_NEEDED))  # as the page shows it
OTHER_CONTACT = {"last_name": "Inár", "email": "inar@elsewhere.example.sk", "is_main": True}
AGENT = {"cmonitor_password": "agent-pass", "cmonitor_password_confirm": "agent-pass"}
OWN_MAIL = {"use_builtin_mail_servers": "0", "pop3_host": "pop.wizard.example.sk", "pop3_username": "cm",
            "pop3_password": "pop-secret", "smtp_primary_host": "smtp.wizard.example.sk",
            "smtp_primary_password": "smtp-secret", "smtp_fallback_host": "smtp2.wizard.example.sk"}


def draft_key(page: str) -> str:
    found = re.search(r'name="draft_key" value="([^"]+)"', page)
    assert found, "the new wizard's page carries its key"
    return found.group(1)


def start(client) -> str:
    """Open "Add a customer" and make the draft as the page's first autosave does."""
    listing = client.get("/admin/customers/").get_data(as_text=True)
    opened = client.post("/admin/customers/wizard/start", data={"csrf_token": csrf_from(listing)})
    assert opened.status_code == 302 and opened.headers["Location"].endswith("/wizard/new")
    page = client.get("/admin/customers/wizard/new").get_data(as_text=True)
    response = client.post("/admin/customers/wizard/new/autosave", data={
        "csrf_token": csrf_from(page), "draft_key": draft_key(page), "kind": "company"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["step_url"].rsplit("/", 1)[0]  # …/wizard/<draft id>


def post_step(client, base: str, step: str, data: dict, nav: str = "next"):
    page = client.get(f"{base}/{step}").get_data(as_text=True)
    return client.post(f"{base}/{step}", data={**data, "nav": nav, "csrf_token": csrf_from(page)})


def walk(client, base, customer, mail=None, cmonitor=None, notifications=None, requests=None, operators=None):
    steps = [("customer", customer), ("cmonitor", cmonitor or {}), ("mail", mail or {}),
             ("notifications", notifications or {}), ("requests", requests or {}),
             ("operators", {"operators": operators} if operators else {})]
    for step, data in steps:
        response = post_step(client, base, step, data)
        assert response.status_code == 302, (step, re.findall(r'text-danger[^>]*>\s*<li>(.*?)</li>',
                                                               response.get_data(as_text=True)))
    return client.get(f"{base}/summary")


def save(client, base):
    page = client.get(f"{base}/summary").get_data(as_text=True)
    return client.post(f"{base}/summary", data={"csrf_token": csrf_from(page)})


def test_company_with_builtin_servers_and_an_operator(maintainer_client, session, operator):
    base = start(maintainer_client)
    summary = walk(maintainer_client, base, COMPANY,
                   cmonitor={"cmonitor_password": "agent-pass", "cmonitor_password_confirm": "agent-pass"},
                   operators=[str(operator.id)])
    html = summary.get_data(as_text=True)
    assert "Wizard Works s.r.o." in html and "agent-pass" not in html and "Olga Operator" in html
    response = save(maintainer_client, base)
    assert response.status_code == 302
    customer = session.query(Customer).one()
    assert customer.display_name == "Wizard Works s.r.o." and customer.primary_phone == "+421250101234"
    assert [o.id for o in customer.operators] == [operator.id]
    contact = session.query(Contact).one()
    assert (contact.display_name, contact.email, contact.is_main) == ("Vera Vodová", "vera@wizard.example.sk",
                                                                      True)
    settings = session.query(CustomerSettings).one()
    assert settings.use_builtin_mail_servers is True
    assert SecretBox(ENCRYPTION_KEY).decrypt(settings.cmonitor_password_encrypted) == "agent-pass"
    draft = session.query(WizardDraft).one()  # saved: kept a while only to point to its customer
    assert draft.saved_at is not None and draft.customer_id == customer.id
    offered = maintainer_client.get("/admin/customers/wizard/").get_data(as_text=True)
    assert f"/wizard/{draft.id}/" not in offered
    actions = {(e.entity_type, e.action) for e in session.query(AuditEvent)}
    assert {("customer", "create"), ("contact", "create"), ("customersettings", "create"),
            ("customer", "operator_assignment")} <= actions


def test_person_with_own_mail_servers(maintainer_client, session):
    base = start(maintainer_client)
    walk(maintainer_client, base, {"kind": "person", "first_name": "Peter", "last_name": "Kováč",
                                   "email": "peter@example.sk"}, mail=OWN_MAIL,
         notifications={"notification_route": "smtp", "notification_smtp_host": "watch.example.sk",
                        "notification_to_address": "alerts@example.sk"},
         requests={"requests_by_email_enabled": "y", "request_intake_address": "desk@example.sk"})
    assert save(maintainer_client, base).status_code == 302
    settings = session.query(CustomerSettings).one()
    assert settings.use_builtin_mail_servers is False and settings.smtp_fallback_port == 587
    box = SecretBox(ENCRYPTION_KEY)
    assert box.decrypt(settings.pop3_password_encrypted) == "pop-secret"
    assert settings.notification_smtp_host == "watch.example.sk" and settings.requests_by_email_enabled
    assert session.query(Contact).count() == 0


def test_each_step_checks_its_fields_and_keeps_the_input(maintainer_client, session):
    base = start(maintainer_client)
    response = post_step(maintainer_client, base, "customer", {**COMPANY, "company_name": "",
                                                                "contact_email": "vera@@x"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "A company needs its company name." in html and "Not a valid e-mail address" in html
    assert 'value="50 111 222"' in html
    assert post_step(maintainer_client, base, "customer", COMPANY).status_code == 302
    mismatch = post_step(maintainer_client, base, "cmonitor", {"cmonitor_password": "a",
                                                               "cmonitor_password_confirm": "b"})
    assert "The two passwords differ." in mismatch.get_data(as_text=True)
    assert post_step(maintainer_client, base, "cmonitor", {}).status_code == 302
    refused = post_step(maintainer_client, base, "mail", {"use_builtin_mail_servers": "0"})
    assert "Required when the customer uses its own mail servers." in refused.get_data(as_text=True)


def test_back_keeps_what_was_typed_and_steps_cannot_be_skipped(maintainer_client):
    base = start(maintainer_client)
    skipped = maintainer_client.get(f"{base}/mail")
    assert skipped.status_code == 302 and skipped.headers["Location"].endswith("/customer")
    assert maintainer_client.get(f"{base}/summary").headers["Location"].endswith("/customer")
    post_step(maintainer_client, base, "customer", COMPANY)
    post_step(maintainer_client, base, "cmonitor", {"cmonitor_password": "agent-pass",
                                                    "cmonitor_password_confirm": "agent-pass"})
    back = post_step(maintainer_client, base, "mail", {**OWN_MAIL, "pop3_host": "typed.example.sk"},
                     nav="back")
    assert back.headers["Location"].endswith("/cmonitor")
    cmonitor = maintainer_client.get(f"{base}/cmonitor").get_data(as_text=True)
    assert "agent-pass" not in cmonitor and "Set — leave empty to keep." in cmonitor
    assert 'value="typed.example.sk"' in maintainer_client.get(f"{base}/mail").get_data(as_text=True)
    assert maintainer_client.get(f"{base}/customer").status_code == 200


def test_draft_survives_signing_out_and_is_resumed_from_the_list(app, maintainer, session):
    first = Browserless(app.test_client())
    first.login(maintainer.email)
    base = start(first)
    post_step(first, base, "customer", COMPANY)
    draft = session.query(WizardDraft).one()
    stored = repr(draft.data)
    post_step(first, base, "cmonitor", AGENT)
    session.expire_all()
    assert "agent-pass" not in repr(session.query(WizardDraft).one().data) and stored
    second = Browserless(app.test_client())  # a new browser session after signing out
    second.login(maintainer.email)
    listing = second.get("/admin/customers/").get_data(as_text=True)
    assert "Drafts in progress" in listing and "Wizard Works s.r.o." in listing
    resumed = second.get(f"{base}/mail")
    assert resumed.status_code == 200
    assert 'value="Wizard Works s.r.o."' in second.get(f"{base}/customer").get_data(as_text=True)


def test_operator_sees_operators_read_only_and_a_tampered_post_is_refused(operator_client, operator, session,
                                                                           make_operator):
    friend = make_operator("friend@example.com")
    base = start(operator_client)
    for step, data in (("customer", COMPANY), ("cmonitor", {}), ("mail", {}), ("notifications", {}),
                       ("requests", {})):
        assert post_step(operator_client, base, step, data).status_code == 302
    page = operator_client.get(f"{base}/operators").get_data(as_text=True)
    assert "Only a maintainer may assign" in page and 'name="operators"' not in page
    assert post_step(operator_client, base, "operators", {"operators": [str(friend.id)]}).status_code == 403
    assert post_step(operator_client, base, "operators", {}).status_code == 302
    assert save(operator_client, base).status_code == 302
    customer = session.query(Customer).one()
    assert customer.operators == [] and customer.created_by_id == operator.id
    assert operator_client.get(f"/admin/customers/edit/?id={customer.id}").status_code == 200


def test_another_operators_draft_does_not_exist_for_you(app, maintainer_client, operator_client):
    base = start(maintainer_client)
    assert operator_client.get(f"{base}/customer").status_code == 404
    page = operator_client.get("/admin/customers/").get_data(as_text=True)
    assert operator_client.post(f"{base}/discard", data={"csrf_token": csrf_from(page)}).status_code == 404


def test_a_duplicate_appearing_before_save_is_refused_by_the_command_and_keeps_the_draft(
        maintainer_client, session, new_customer):
    from models.enums import CustomerKind

    base = start(maintainer_client)
    walk(maintainer_client, base, COMPANY)
    new_customer(kind=CustomerKind.COMPANY, company_name="Wizard Works, spol. s r.o.",
                 email="office@wizard.example.sk", contacts=[OTHER_CONTACT])  # by somebody else, since step 1
    response = save(maintainer_client, base)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'data-testid="duplicate-candidates"' in html
    assert "Wizard Works, spol. s r.o." in html and "same e-mail, same company name" in html
    assert "first step to confirm" in html
    assert session.query(WizardDraft).count() == 1 and session.query(Customer).count() == 1


def test_a_company_id_taken_before_save_is_refused_and_keeps_the_draft(maintainer_client, session,
                                                                       new_customer):
    from models.enums import CustomerKind

    base = start(maintainer_client)
    walk(maintainer_client, base, COMPANY)
    new_customer(kind=CustomerKind.COMPANY, company_name="Meanwhile", registration_number="50 111 222")
    response = save(maintainer_client, base)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Meanwhile (same company ID)" in html  # the customer that took it is named
    assert session.query(WizardDraft).count() == 1 and session.query(Customer).count() == 1


def test_step_one_lists_a_strong_duplicate_and_passes_only_when_confirmed(maintainer_client, session,
                                                                          new_customer):
    from models.enums import CustomerKind

    new_customer(kind=CustomerKind.COMPANY, company_name="Wizard Works, spol. s r.o.",
                 email="office@wizard.example.sk", contacts=[OTHER_CONTACT])
    base = start(maintainer_client)
    held = post_step(maintainer_client, base, "customer", {**COMPANY, "registration_number": ""})
    html = held.get_data(as_text=True)
    assert held.status_code == 200 and 'data-testid="duplicate-candidates"' in html
    assert "Wizard Works, spol. s r.o." in html and "same e-mail, same company name" in html
    assert 'name="confirm_duplicate"' in html
    passed = post_step(maintainer_client, base, "customer", {**COMPANY, "registration_number": "",
                                                             "confirm_duplicate": "y"})
    assert passed.status_code == 302
    walk(maintainer_client, base, {**COMPANY, "registration_number": "", "confirm_duplicate": "y"})
    assert save(maintainer_client, base).status_code == 302
    assert session.query(Customer).count() == 2


def database_state(session) -> dict:
    """Rows per table, and every draft as stored: what a GET must leave as it was."""
    session.expire_all()
    counts = {t.name: session.scalar(select(func.count()).select_from(t)) for t in db.metadata.sorted_tables}
    drafts = [(d.id, d.step, repr(d.data), d.updated_at) for d in session.scalars(select(WizardDraft))]
    return {"counts": counts, "drafts": drafts}


def test_opening_any_wizard_page_writes_nothing(maintainer_client, session):
    before = database_state(session)
    maintainer_client.get("/admin/customers/")
    # Opening the list, the drafts page or a new wizard (step 1) makes no draft.
    assert maintainer_client.get("/admin/customers/wizard/").status_code == 200
    assert maintainer_client.get("/admin/customers/wizard/start").status_code == 405
    assert maintainer_client.get("/admin/customers/wizard/new").status_code == 200
    assert maintainer_client.get("/admin/customers/wizard/new/autosave").status_code == 405
    assert database_state(session) == before

    base = start(maintainer_client)  # the POST makes the draft
    walk(maintainer_client, base, COMPANY, cmonitor=AGENT)
    before = database_state(session)
    assert len(before["drafts"]) == 1 and before["drafts"][0][1] == "summary"
    for step in ("customer", "cmonitor", "mail", "notifications", "requests", "operators", "summary",
                 "no-such-step", "discard"):
        assert maintainer_client.get(f"{base}/{step}").status_code in (200, 404), step
        assert maintainer_client.get(f"{base}/{step}/autosave").status_code in (404, 405), step
    assert maintainer_client.get("/admin/customers/wizard/").status_code == 200
    assert database_state(session) == before


def test_a_company_needs_its_contact_email_and_is_created_with_that_contact(maintainer_client, session):
    base = start(maintainer_client)
    refused = post_step(maintainer_client, base, "customer", {**COMPANY, "contact_email": ""})
    assert refused.status_code == 200 and NEEDED in refused.get_data(as_text=True)
    assert maintainer_client.get(f"{base}/cmonitor").headers["Location"].endswith("/customer")
    walk(maintainer_client, base, {**COMPANY, "contact_first_name": "", "contact_last_name": "",
                                   "contact_email": "Helpdesk@Wizard.example.sk"})
    assert save(maintainer_client, base).status_code == 302
    customer = session.query(Customer).one()
    assert [(c.last_name, c.email, c.is_main) for c in customer.contacts] == [
        ("Helpdesk", "Helpdesk@wizard.example.sk", True)]


def test_the_command_refuses_a_draft_company_without_a_contact_email(maintainer_client, session):
    """Step 1 is only a preview: the command refuses at Save whatever the draft holds."""
    base = start(maintainer_client)
    walk(maintainer_client, base, COMPANY)
    draft = session.query(WizardDraft).one()
    with unit_of_work(session):  # a draft saved before the rule, or tampered with
        steps = dict(draft.data["steps"])
        steps["customer"] = {**steps["customer"], "contact_email": ""}
        draft.data = {**draft.data, "steps": steps}
    response = save(maintainer_client, base)
    assert response.status_code == 200 and NEEDED in response.get_data(as_text=True)
    assert session.query(Customer).count() == 0 and session.query(WizardDraft).count() == 1


def test_discarding_asks_first_and_only_the_confirmation_discards(maintainer_client, session):
    base = start(maintainer_client)
    post_step(maintainer_client, base, "customer", COMPANY)
    step = maintainer_client.get(f"{base}/cmonitor").get_data(as_text=True)
    assert f'href="{base}/discard?back=cmonitor"' in step and "Discard this draft…" in step  # it only asks
    question = maintainer_client.get(f"{base}/discard?back=cmonitor")
    html = question.get_data(as_text=True)
    assert question.status_code == 200 and 'data-testid="discard-confirm"' in html
    assert "Everything typed for Wizard Works s.r.o. in the wizard will be deleted." in html
    assert 'name="confirmed" value="1"' in html and f'href="{base}/cmonitor"' in html  # Keep it
    assert session.query(WizardDraft).count() == 1
    # A POST without the confirmation (an old page, a script) only asks again.
    again = maintainer_client.post(f"{base}/discard", data={"csrf_token": csrf_from(html)})
    assert again.status_code == 200 and 'data-testid="discard-confirm"' in again.get_data(as_text=True)
    assert session.query(WizardDraft).count() == 1
    response = maintainer_client.post(f"{base}/discard",
                                      data={"csrf_token": csrf_from(html), "confirmed": "1"})
    assert response.status_code == 302 and session.query(WizardDraft).count() == 0
    listing = maintainer_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "The draft was discarded." in listing
