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
    page.wait_for_url("**/customer")
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
    box.get_by_role("button", name="Test connection").click()
    expect(box.get_by_role("status")).to_contain_text("signed in as alice")
    page.screenshot(path=artifacts / "wizard-mail-test.png", full_page=True)
    page.get_by_role("button", name="Back").click()
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
    page.wait_for_url("**/customer")
    page.get_by_text("Private person").click()
    page.get_by_label("First name *").fill("Zuzana")
    page.get_by_label("Last name *").fill("Rozpísaná")
    next_step(page, "cmonitor")
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
    page.get_by_role("button", name="Back").click()
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
    page.wait_for_url("**/customer")
    page.get_by_label("Company name *").fill("Skener s.r.o.")
    page.get_by_label("Contact person's e-mail *").fill("kontakt@skener.example.sk")
    next_step(page, "cmonitor")
    next_step(page, "mail")
    page.get_by_text("Use the customer's own POP3 mailbox and SMTP servers").click()
    box = page.locator("[data-server-test=smtp_primary]")
    host, port = page.get_by_label("Primary SMTP: host"), page.get_by_label("Primary SMTP: port")
    host.fill("127.0.0.1")
    port.fill("25")
    box.get_by_role("button", name="Test connection").click()
    expect(box.get_by_role("status")).to_contain_text("127.0.0.1 is a local address")
    expect(host).to_have_class(re.compile(r"\bis-invalid\b"))
    page.screenshot(path=artifacts / "wizard-test-connection-refused.png", full_page=True)
    host.fill("10.20.30.40")
    port.fill("22")
    box.get_by_role("button", name="Test connection").click()
    expect(box.get_by_role("status")).to_contain_text("Port 22 is not an SMTP port")
    expect(port).to_have_class(re.compile(r"\bis-invalid\b"))
    expect(host).not_to_have_class(re.compile(r"\bis-invalid\b"))
