"""The wizard in Chromium: all six steps with Back in the middle, and a real "Test connection"."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from models import Customer
from models.enums import MailSecurity
from tests.browser.conftest import sign_in
from tests.mail_fixtures import PASSWORD, USER

pytestmark = pytest.mark.browser
OPERATOR_PASSWORD = "correct horse battery"


def next_step(page, expected: str):
    page.get_by_role("button", name="Next").click()
    page.wait_for_url(f"**/{expected}")


def test_walk_all_steps_with_back_and_a_real_connection_test(signed_in, desk, smtp_servers, artifacts):
    page = signed_in
    page.goto("/admin/customers/")
    page.get_by_test_id("add-customer").click()
    page.wait_for_url("**/wizard/new")
    page.get_by_label("Company name *").fill("Prehliadač s.r.o.")
    page.get_by_label("Contact person's e-mail *").fill("kontakt@prehliadac.example.sk")
    next_step(page, "cmonitor")
    page.get_by_label("C-Monitor access password").fill("agent-pass")
    page.get_by_label("Repeat the password").fill("agent-pass")
    next_step(page, "mail")
    page.get_by_text("Use the customer's own POP3 mailbox and SMTP servers").click()
    page.get_by_label("POP3: host").fill("pop.prehliadac.example.sk")
    page.get_by_label("Primary SMTP: host").fill("127.0.0.1")
    page.get_by_label("Primary SMTP: port").fill(str(smtp_servers[MailSecurity.NONE].port))
    page.get_by_label("Primary SMTP: security").select_option("none")
    page.get_by_label("Primary SMTP: user name").fill(USER)
    page.get_by_label("Primary SMTP: password").fill(PASSWORD)
    box = page.locator("[data-server-test=smtp_primary]")
    box.get_by_role("button", name="Test the primary outgoing server (SMTP)").click()
    expect(box.get_by_role("status")).to_contain_text("signed in as alice")
    page.screenshot(path=artifacts / "wizard-mail-test.png", full_page=True)
    page.get_by_role("button", name="Back", exact=True).click()
    page.wait_for_url("**/cmonitor")
    expect(page.get_by_test_id("secret-set-cmonitor_password")).to_be_visible()
    next_step(page, "mail")
    expect(page.get_by_label("POP3: host")).to_have_value("pop.prehliadac.example.sk")
    next_step(page, "notifications")
    next_step(page, "requests")
    next_step(page, "operators")
    next_step(page, "summary")
    expect(page.get_by_test_id("summary-customer")).to_contain_text("Prehliadač s.r.o.")
    page.get_by_role("button", name="Save").click()
    # The seed: after a company is saved, the user is prompted to add its contacts.
    page.wait_for_url("**/contacts-tab/**")
    expect(page.locator(".alert-success")).to_contain_text("Prehliadač s.r.o. was created.")
    expect(page.get_by_test_id("add-contacts-prompt")).to_be_visible()
    expect(page.get_by_test_id("contacts")).to_contain_text("kontakt@prehliadac.example.sk")
    form = page.get_by_test_id("add-contact")
    form.get_by_label("Last name *").fill("Druhá")
    form.get_by_label("E-mail").fill("druha@prehliadac.example.sk")
    form.get_by_text("Contact — only on the requests it is assigned to").click()
    form.get_by_role("button", name="Add contact").click()
    expect(page.get_by_test_id("contacts")).to_contain_text("druha@prehliadac.example.sk")
    page.screenshot(path=artifacts / "wizard-contacts-prompt.png", full_page=True)
    assert desk.run(lambda s: s.query(Customer).one().display_name) == "Prehliadač s.r.o."
    assert desk.run(lambda s: sorted(c.is_main for c in s.query(Customer).one().contacts)) == [False, True]


def test_a_draft_is_resumed_after_signing_out_and_in(signed_in, desk, artifacts):
    page = signed_in
    page.goto("/admin/customers/")
    page.get_by_test_id("add-customer").click()
    page.wait_for_url("**/wizard/new")
    page.get_by_text("Private person").click()
    page.get_by_label("First name *").fill("Zuzana")
    page.get_by_label("Last name *").fill("Rozpísaná")
    next_step(page, "cmonitor")
    page.get_by_test_id("signed-in-as").click()  # the profile menu
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login**")
    sign_in(page, desk.maintainer_email)
    page.wait_for_url("**/admin/")
    page.goto("/admin/customers/")
    drafts = page.get_by_test_id("drafts")
    expect(drafts).to_contain_text("Zuzana Rozpísaná")
    page.screenshot(path=artifacts / "wizard-drafts.png", full_page=True)
    drafts.get_by_role("link", name="Resume").click()
    page.wait_for_url("**/cmonitor")
    page.get_by_role("button", name="Back", exact=True).click()
    page.wait_for_url("**/customer")
    expect(page.get_by_label("Last name *")).to_have_value("Rozpísaná")


def test_an_operators_test_connection_to_a_local_host_is_refused_on_the_field(page, desk, artifacts):
    """Test connection is no port scanner: an operator's test of loopback or of a port that is no
    mail port is refused with a sentence, and the field it is about is marked."""
    from services.operators import create_operator

    desk.run(lambda session: create_operator(session, email="olga@example.com", password=OPERATOR_PASSWORD,
                                             first_name="Olga", last_name="Operator"))
    sign_in(page, "olga@example.com", OPERATOR_PASSWORD)
    page.wait_for_url("**/admin/")
    page.goto("/admin/customers/")
    page.get_by_test_id("add-customer").click()
    page.wait_for_url("**/wizard/new")
    page.get_by_label("Company name *").fill("Skener s.r.o.")
    page.get_by_label("Contact person's e-mail *").fill("kontakt@skener.example.sk")
    next_step(page, "cmonitor")
    next_step(page, "mail")
    page.get_by_text("Use the customer's own POP3 mailbox and SMTP servers").click()
    box = page.locator("[data-server-test=smtp_primary]")
    host, port = page.get_by_label("Primary SMTP: host"), page.get_by_label("Primary SMTP: port")
    host.fill("127.0.0.1")
    port.fill("25")
    box.get_by_role("button", name="Test the primary outgoing server (SMTP)").click()
    expect(box.get_by_role("status")).to_contain_text("127.0.0.1 is a local address")
    expect(host).to_have_class(re.compile(r"\bis-invalid\b"))
    page.screenshot(path=artifacts / "wizard-test-connection-refused.png", full_page=True)
    host.fill("10.20.30.40")
    port.fill("22")
    box.get_by_role("button", name="Test the primary outgoing server (SMTP)").click()
    expect(box.get_by_role("status")).to_contain_text("Port 22 is not an SMTP port")
    expect(port).to_have_class(re.compile(r"\bis-invalid\b"))
    expect(host).not_to_have_class(re.compile(r"\bis-invalid\b"))


STEP3 = {"POP3 mailbox address": "desk@prehliadac.example.sk", "POP3: host": "pop.prehliadac.example.sk",
         "POP3: port": "995", "POP3: user name": "desk", "Primary SMTP: host": "smtp.prehliadac.example.sk",
         "Primary SMTP: port": "587", "Primary SMTP: user name": "desk",
         "Fallback SMTP: host": "smtp2.prehliadac.example.sk", "Fallback SMTP: port": "465",
         "Fallback SMTP: user name": "desk2"}
SECURITIES = {"POP3: security": "ssl", "Primary SMTP: security": "starttls", "Fallback SMTP: security": "ssl"}
PASSWORDS = {"POP3: password": "pop3_password", "Primary SMTP: password": "smtp_primary_password",
             "Fallback SMTP: password": "smtp_fallback_password"}


def new_company(page, name: str) -> None:
    page.goto("/admin/customers/")
    page.get_by_test_id("add-customer").click()
    page.wait_for_url("**/wizard/new")
    page.get_by_label("Company name *").fill(name)
    page.get_by_label("Contact person's e-mail *").fill("kontakt@prehliadac.example.sk")


def test_step_three_typed_then_left_by_a_link_is_all_there_when_coming_back(signed_in, desk, artifacts):
    page = signed_in
    new_company(page, "Odchádzajúca s.r.o.")
    expect(page.get_by_test_id("autosave-status")).to_have_text("Kept in the draft")
    assert re.search(r"/wizard/\d+/customer$", page.url)  # the first save made the draft; the page is its
    next_step(page, "cmonitor")
    next_step(page, "mail")
    builtin = page.get_by_text("Use the built-in servers (recommended)")
    expect(page.locator("[data-server-test]:visible")).to_have_count(0)  # nothing to test with them
    page.get_by_text("Use the customer's own POP3 mailbox and SMTP servers").click()
    for label, value in STEP3.items():
        page.get_by_label(label, exact=True).fill(value)
    for label, value in SECURITIES.items():
        page.get_by_label(label, exact=True).select_option(value)
    for label in PASSWORDS:
        page.get_by_label(label, exact=True).fill("typed-" + PASSWORDS[label])
    for name in ("Test the incoming server (POP3)", "Test the primary outgoing server (SMTP)",
                 "Test the fallback outgoing server (SMTP)"):
        expect(page.get_by_role("button", name=name)).to_be_visible()
    expect(page.get_by_test_id("autosave-status")).to_have_text("Kept in the draft")
    page.screenshot(path=artifacts / "wizard-step3-typed-1366.png", full_page=True)
    page.get_by_role("link", name="1. Customer information").click()  # away without Next
    page.wait_for_url("**/customer")
    expect(page.get_by_label("Company name *")).to_have_value("Odchádzajúca s.r.o.")
    page.get_by_role("link", name="3. POP3 and SMTP").click()
    page.wait_for_url("**/mail")
    expect(page.get_by_label("Use the customer's own POP3 mailbox and SMTP servers")).to_be_checked()
    for label, value in STEP3.items():
        expect(page.get_by_label(label, exact=True)).to_have_value(value)
    for label, value in SECURITIES.items():
        expect(page.get_by_label(label, exact=True)).to_have_value(value)
    for label, field in PASSWORDS.items():
        expect(page.get_by_label(label, exact=True)).to_have_value("")  # never sent back to the page
        expect(page.get_by_test_id(f"secret-set-{field}")).to_be_visible()
    page.set_viewport_size({"width": 800, "height": 900})
    page.screenshot(path=artifacts / "wizard-step3-back-800.png", full_page=True)
    page.set_viewport_size({"width": 1366, "height": 800})
    builtin.click()
    expect(page.locator("[data-server-test]:visible")).to_have_count(0)


def test_leaving_right_after_typing_warns_and_keeps_it(signed_in, desk):
    page = signed_in
    new_company(page, "Rýchla s.r.o.")
    next_step(page, "cmonitor")
    next_step(page, "mail")
    page.get_by_text("Use the customer's own POP3 mailbox and SMTP servers").click()
    expect(page.get_by_test_id("autosave-status")).to_have_text("Kept in the draft")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.accept()))
    page.get_by_label("POP3: host", exact=True).click()
    page.keyboard.type("pop.rychla.example.sk")
    page.get_by_role("link", name="1. Customer information").click()  # before the autosave's pause ends
    page.wait_for_url("**/customer")
    assert dialogs == ["beforeunload"]
    page.get_by_role("link", name="3. POP3 and SMTP").click()
    page.wait_for_url("**/mail")
    expect(page.get_by_label("POP3: host", exact=True)).to_have_value("pop.rychla.example.sk")


def test_summary_is_readable_with_back_and_edit_and_discard_asks(signed_in, desk, artifacts):
    page = signed_in
    new_company(page, "Súhrnná s.r.o.")
    next_step(page, "cmonitor")
    page.get_by_label("C-Monitor access password").fill("agent-pass")
    page.get_by_label("Repeat the password").fill("agent-pass")
    for step in ("mail", "notifications", "requests", "operators", "summary"):
        next_step(page, step)
    summary = page.locator("main, body").first
    for internal in ("Kind *", "cm_server", "True", "Repeat the password", "Mail servers: 0"):
        expect(summary).not_to_contain_text(internal)
    expect(page.get_by_test_id("summary-customer")).to_contain_text("Company")
    expect(page.get_by_test_id("summary-cmonitor")).to_contain_text("set")
    page.screenshot(path=artifacts / "wizard-summary-1366.png", full_page=True)
    page.set_viewport_size({"width": 800, "height": 900})
    page.screenshot(path=artifacts / "wizard-summary-800.png", full_page=True)
    page.set_viewport_size({"width": 1366, "height": 800})
    page.get_by_role("link", name="Back", exact=True).click()
    page.wait_for_url("**/operators")
    next_step(page, "summary")
    page.get_by_test_id("summary-mail").get_by_role("link", name="Edit").click()
    page.wait_for_url("**/mail")
    page.get_by_test_id("discard-draft").click()
    page.wait_for_url("**/discard?back=mail")
    expect(page.get_by_test_id("discard-confirm")).to_contain_text("Súhrnná s.r.o.")
    page.screenshot(path=artifacts / "wizard-discard-confirm.png", full_page=True)
    page.get_by_role("link", name="Keep it and go back").click()
    page.wait_for_url("**/mail")
    page.get_by_test_id("discard-draft").click()
    page.get_by_role("button", name="Discard the draft").click()
    page.wait_for_url("**/admin/customers/")
    expect(page.locator(".alert")).to_contain_text("The draft was discarded.")
    assert desk.run(lambda s: s.query(Customer).count()) == 0
