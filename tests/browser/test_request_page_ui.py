"""The request's page for operators in Chromium, with copies really mailed: an operator opens a
company's request and a private person's, comments, writes an internal note, completes them and
sees each copy's delivery state — a refused one failed, then resent and sent. The mail goes
through a real aiosmtpd server (the desk's built-in SMTP server here). Any console error or any
4xx/5xx answer of the desk fails the test."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from models import Customer, GlobalSettings, OutgoingMail, Request
from models.enums import CustomerKind, MailSecurity, MailState, Via
from services.customers import SaveOptions, create_customer
from services.discussion import Author, add_comment, attach
from services.operators import create_operator
from services.requests import save_request
from testing.mail_servers import MailServerUnavailable
from testing.smtp_capture import CapturingSmtp
from tests.browser.conftest import sign_in
from tests.conftest import PASSWORD, started
from tests.mail_fixtures import PASSWORD as SMTP_PASSWORD
from tests.mail_fixtures import USER as SMTP_USER

pytestmark = pytest.mark.browser
OLGA = "olga@example.com"


@pytest.fixture(scope="module")
def smtp(certificate):
    def start():
        return CapturingSmtp(MailSecurity.STARTTLS, certificate, SMTP_USER, SMTP_PASSWORD).start()

    server = started(start, MailServerUnavailable, "SMTP (aiosmtpd)")
    yield server
    server.stop()


@pytest.fixture
def mailing_desk(desk, smtp, certificate, monkeypatch):
    """The desk's built-in SMTP server is `smtp` (its certificate trusted); copies are sent right
    after each save (the app's jobs run at once in tests)."""
    for name, value in {"MAIL_CA_FILE": certificate.cafile, "MAIL_SMTP_TIMEOUT": 2.0,
                        "MAIL_DOMAIN": "desk.example"}.items():
        monkeypatch.setitem(desk.app.config, name, value)
    smtp.reset()
    box = desk.app.extensions["secret_box"]

    def servers(session):
        row = session.get(GlobalSettings, 1)
        row.smtp_primary_host, row.smtp_primary_port = "127.0.0.1", smtp.port
        row.smtp_primary_security, row.smtp_primary_username = MailSecurity.STARTTLS, SMTP_USER
        row.smtp_primary_password_encrypted = box.encrypt(SMTP_PASSWORD)
        row.pop3_address = "desk@desk.example"

    desk.run(servers)
    return desk


def seed(session):
    olga = create_operator(session, email=OLGA, password=PASSWORD, first_name="Olga", last_name="Operator")
    acme = create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.COMPANY,
                           company_name="Acme s.r.o.", operators=[olga], contacts=[
                               {"first_name": "Mia", "last_name": "Main", "email": "mia@acme.sk",
                                "is_main": True},
                               {"first_name": "Cyril", "last_name": "Contact", "email": "cyril@acme.sk"}])
    peter = create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.PERSON, first_name="Peter",
                            last_name="Novák", email="peter@novak.sk", operators=[olga])
    cyril = next(c for c in acme.contacts if c.first_name == "Cyril")
    printer = save_request(session, Request(customer=acme, subject="Printer on fire", contacts=[cyril],
                                            description="The printer on the third floor smokes."), olga)
    mia = next(c for c in acme.contacts if c.first_name == "Mia")
    by_mail = Author.of_sender(Via.EMAIL, mia.email, acme, mia)
    said = add_comment(session, printer, by_mail, "It still smokes.")
    attach(session, said, "smoke.png", "image/png", b"\x89PNG\r\n\x1a\n")
    laptop = save_request(session, Request(customer=peter, subject="Laptop does not boot"), olga)
    return printer.id, laptop.id, peter.id


def mail_states(desk, request_id: int) -> list[tuple[str, str]]:
    return desk.run(lambda s: [(m.recipient_email, m.state.value) for m in s.query(OutgoingMail)
                               .filter_by(request_id=request_id).order_by(OutgoingMail.id)])


def watch(page) -> list[str]:
    """Console errors and 4xx/5xx answers while the test runs — except Chromium's own request for
    /favicon.ico, which the desk does not serve (not a page's doing)."""
    problems: list[str] = []

    def console(message) -> None:
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            problems.append(f"console {message.type}: {message.text} at {message.location}")

    page.on("console", console)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return problems


def test_an_operator_discusses_and_completes_requests_and_sees_the_copies(page, mailing_desk, smtp,
                                                                          artifacts):
    desk = mailing_desk
    printer_id, laptop_id, peter_id = desk.run(seed)
    problems = watch(page)
    page.set_viewport_size({"width": 1366, "height": 900})
    sign_in(page, OLGA)
    page.wait_for_url("**/admin/")

    page.goto("/admin/requests/")
    expect(page.locator(".cd-status").first).to_be_visible()
    page.screenshot(path=artifacts / "request-list-1366.png", full_page=True)
    page.get_by_role("link", name="Printer on fire").click()
    page.wait_for_url(f"**/admin/requests/details/?id={printer_id}")
    expect(page.get_by_test_id("request-title")).to_contain_text(f"CD-{printer_id}")
    expect(page.get_by_test_id("request-status")).to_have_text("New")
    expect(page.get_by_test_id("customer-link")).to_have_text("Acme s.r.o.")
    expect(page.get_by_test_id("recipients")).to_contain_text("assigned to this request")
    expect(page.get_by_test_id("comment")).to_contain_text("It still smokes.")
    expect(page.get_by_test_id("comment")).to_contain_text("via E-mail")
    expect(page.get_by_test_id("attachments")).to_contain_text("smoke.png")
    # The copies of its raising (to Mia and Cyril) and of Mia's mail (to Cyril) went out.
    expect(page.get_by_test_id("mails").locator(".cd-mail-state[data-state=sent]")).to_have_count(3)

    page.get_by_label("Comment or internal note").fill("We are on our way\nwith an extinguisher.")
    page.get_by_role("button", name="Add comment").click()
    expect(page.locator(".alert-success")).to_contain_text("Comment added")
    expect(page.get_by_test_id("comment").last).to_contain_text("with an extinguisher.")
    expect(page.get_by_test_id("mails").locator(".cd-mail-state[data-state=sent]")).to_have_count(5)

    page.get_by_label("Comment or internal note").fill("Mia is a VIP: call her first.")
    page.get_by_role("button", name="Add internal note").click()
    expect(page.get_by_test_id("note")).to_contain_text("Internal note · not sent to the customer")
    expect(page.get_by_test_id("mail-row")).to_have_count(5)  # a note is never mailed

    smtp.refuse_recipients = "550 5.1.1 No such user here"
    page.get_by_label("New status").select_option(label="Completed")
    page.get_by_label("Comment (optional").fill("Replaced the fuser unit.")
    page.get_by_role("button", name="Change status").click()
    expect(page.get_by_test_id("request-status")).to_have_text("Completed")
    expect(page.get_by_test_id("history")).to_contain_text("Olga Operator via Service desk, with a comment")
    failed = page.get_by_test_id("mails").locator("tr", has=page.locator(".cd-mail-state[data-state=failed]"))
    expect(failed).to_have_count(2)
    page.screenshot(path=artifacts / "request-page-1366.png", full_page=True)

    smtp.refuse_recipients = None
    failed.first.get_by_role("button", name="Resend").click()
    expect(page.locator(".alert-success")).to_contain_text("A new copy to")
    expect(page.get_by_test_id("mail-row").first).to_contain_text("resent")
    expect(page.get_by_test_id("mail-row").first.locator(".cd-mail-state")).to_have_text("Sent")

    # The private person's request, reached from the customer's Mail tab.
    page.set_viewport_size({"width": 800, "height": 900})
    page.goto(f"/admin/customers/mail-tab/?id={peter_id}")
    expect(page.get_by_test_id("sent-row")).to_have_count(1)
    page.get_by_test_id("sent-row").get_by_role("link", name=f"[CD-{laptop_id}] Laptop does not boot").click()
    page.wait_for_url(f"**/admin/requests/details/?id={laptop_id}")
    expect(page.get_by_test_id("recipients")).to_contain_text("peter@novak.sk")
    expect(page.get_by_test_id("recipients")).to_contain_text("the customer")
    page.get_by_label("Comment or internal note").fill("Please bring it to the desk.")
    page.get_by_role("button", name="Add comment").click()
    expect(page.locator(".alert-success")).to_contain_text("Comment added")
    page.get_by_label("New status").select_option(label="Completed")
    page.get_by_role("button", name="Change status").click()
    expect(page.get_by_test_id("request-status")).to_have_text("Completed")
    expect(page.get_by_test_id("mails").locator(".cd-mail-state[data-state=sent]")).to_have_count(3)
    page.screenshot(path=artifacts / "request-page-800.png", full_page=True)
    page.goto(f"/admin/customers/mail-tab/?id={peter_id}")
    expect(page.get_by_test_id("sent-row")).to_have_count(3)
    page.screenshot(path=artifacts / "customer-mail-tab-800.png", full_page=True)

    assert problems == []
    received = {(tuple(m.recipients), m.message["Subject"]) for m in smtp.captured}
    assert not any("VIP" in m.message.get_body().get_content() for m in smtp.captured)
    assert (("mia@acme.sk",), f"[CD-{printer_id}] Printer on fire — new comment") in received
    assert mail_states(desk, printer_id).count(("cyril@acme.sk", MailState.FAILED.value)) == 1
    assert desk.run(lambda s: s.get(Customer, peter_id).display_name) == "Novák, Peter"


def test_a_maintainer_chooses_to_refuse_mail_from_unknown_senders(signed_in, desk, artifacts):
    page = signed_in
    problems = watch(page)
    page.goto("/admin/quick-create-rules/")
    form = page.get_by_test_id("unknown-senders-form")
    expect(form.get_by_label("Hold for an operator")).to_be_checked()
    form.locator("label", has_text="Refuse").click()
    form.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-success")).to_contain_text("Mail from unknown senders: saved.")
    expect(page.get_by_test_id("unknown-senders-form").get_by_label("Refuse")).to_be_checked()
    page.screenshot(path=artifacts / "unknown-senders-1366.png", full_page=True)
    assert desk.run(lambda s: s.get(GlobalSettings, 1).unknown_senders.value) == "refuse"
    assert problems == []


def two_companies(session):
    options = SaveOptions("SK")
    for name, people in (("Alfa Servis s.r.o.", [("Anna", "Alfová", "anna@alfa.example.sk", True),
                                                 ("Boris", "Beta", "boris@alfa.example.sk", False)]),
                         ("Gama Tech a.s.", [("Gita", "Gamová", "gita@gama.example.sk", True)])):
        create_customer(session, None, options, kind=CustomerKind.COMPANY, company_name=name,
                        confirm_duplicate=True,
                        contacts=[{"first_name": f, "last_name": la, "email": e, "is_main": m}
                                  for f, la, e, m in people])


def choose_customer(page, typed: str, label: str):
    """Through the quick form's live list, as an operator picks an existing customer there."""
    page.get_by_role("button", name="Add a customer quickly").click()
    page.get_by_label("Company or Name *").press_sequentially(typed)
    found = page.get_by_test_id("quick-candidates").locator("li").filter(
        has=page.locator("strong", has_text=label))
    found.get_by_role("button", name="Select as the customer").click()
    expect(page.locator("#quick-create")).to_be_hidden()


def test_the_contact_picker_offers_the_chosen_customers_contacts(signed_in, desk, artifacts):
    desk.run(two_companies)
    page = signed_in
    problems = watch(page)
    page.goto("/admin/requests/new/")
    picker = page.get_by_test_id("contact-picker")
    expect(picker).to_contain_text("Choose the customer first")
    expect(page.locator("body")).not_to_contain_text("Please select model")
    choose_customer(page, "Alfa Servis", "Alfa Servis s.r.o.")
    expect(picker.locator("[data-contact]")).to_have_count(2)
    expect(picker).to_contain_text("Anna Alfová — Main contact — anna@alfa.example.sk")
    expect(picker).not_to_contain_text("Gita")
    picker.get_by_text("Boris Beta").click()  # the label, as a person clicks it
    expect(page.get_by_label("Boris Beta — Contact — boris@alfa.example.sk")).to_be_checked()
    choose_customer(page, "Gama Tech", "Gama Tech a.s.")  # another customer: its contacts only
    expect(picker.locator("[data-contact]")).to_have_count(1)
    expect(picker).to_contain_text("Gita Gamová")
    expect(picker).not_to_contain_text("Boris")
    choose_customer(page, "Alfa Servis", "Alfa Servis s.r.o.")
    expect(picker.locator("[data-contact]")).to_have_count(2)
    picker.get_by_text("Boris Beta").click()
    page.get_by_label("Subject *").fill("Printer jam")
    page.set_viewport_size({"width": 800, "height": 900})
    page.screenshot(path=artifacts / "request-contacts-800.png", full_page=True)
    page.set_viewport_size({"width": 1366, "height": 800})
    page.screenshot(path=artifacts / "request-contacts-1366.png", full_page=True)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".alert-success")).to_be_visible()

    def assigned(session):
        return [c.display_name for c in session.query(Request).one().contacts]
    assert desk.run(assigned) == ["Boris Beta"]
    request_id = desk.run(lambda s: s.query(Request).one().id)
    page.goto(f"/admin/requests/details/?id={request_id}")
    recipients = page.get_by_test_id("recipients")
    expect(recipients).to_contain_text("anna@alfa.example.sk")
    expect(recipients).to_contain_text("boris@alfa.example.sk")
    expect(recipients).to_contain_text("assigned to this request")
    assert problems == []
