"""In Chromium: typed markup stays text everywhere, and the pages work under the CSP."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from models import Customer
from models.enums import CustomerKind
from services.customers import SaveOptions, create_customer

pytestmark = pytest.mark.browser

SCRIPT_NAME = "<script>alert(1)</script>"
IMG_NAME = '<img src=x onerror="alert(2)">'


def seed_hostile(session):
    company = create_customer(
        session, None, SaveOptions("SK"), kind=CustomerKind.COMPANY, company_name=SCRIPT_NAME,
        email="x@example.sk", notes=IMG_NAME,
        contacts=[{"first_name": IMG_NAME, "last_name": SCRIPT_NAME, "email": "c@example.sk"}])
    create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.PERSON,
                    first_name=IMG_NAME, last_name="Kováč")
    return company.id


def test_a_customer_named_script_renders_as_text_everywhere(signed_in, desk):
    page = signed_in
    dialogs, violations = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda msg: violations.append(f"{page.url}: {msg.text}")
            if "Content Security Policy" in msg.text else None)
    customer_id = desk.run(seed_hostile)
    for url in ("/admin/customers/", "/admin/customers/?search=kovac",
                f"/admin/customers/details/?id={customer_id}", f"/admin/customers/edit/?id={customer_id}",
                f"/admin/customers/history/?id={customer_id}",
                f"/admin/customers/delete-confirm/?id={customer_id}", "/admin/contacts/", "/admin/audit/"):
        page.goto(url)
        page.wait_for_load_state("load")
    page.goto("/admin/customers/")
    expect(page.locator("td.col-display_name", has_text=SCRIPT_NAME)).to_be_visible()
    # The manager picker renders search results as text too.
    page.goto("/admin/customers/new/")
    page.locator("#kind").select_option("person")
    page.locator("#s2id_manager").click()
    page.locator(".select2-drop-active input.select2-input").fill("kovac")
    expect(page.locator(".select2-drop-active .select2-result-label")).to_have_text(f"Kováč, {IMG_NAME}")
    assert dialogs == [], f"markup ran as script: {dialogs}"
    assert not [v for v in violations if "script-src" in v], violations
    assert desk.run(lambda s: s.get(Customer, customer_id).company_name) == SCRIPT_NAME


def test_admin_pages_work_under_the_content_security_policy(signed_in, desk):
    page = signed_in
    violations = []
    page.on("console", lambda msg: violations.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    response = page.goto("/admin/customers/")
    assert "nonce-" in response.headers["content-security-policy"]
    # Filters (a script-built menu) and the inline "Add" button of contacts work.
    page.get_by_role("link", name="Add Filter").click()
    page.locator("a.filter", has_text="Kind").click()
    expect(page.locator("table.filters tr")).to_have_count(1)
    page.goto("/admin/customers/new/")
    page.get_by_role("button", name="Add Contact").click()
    expect(page.locator("#contacts .inline-field-list > .inline-field")).to_have_count(1)
    page.goto("/admin/sites/new/")
    page.get_by_role("button", name="Add Building").click()
    expect(page.locator("#buildings .inline-field-list > .inline-field")).to_have_count(1)
    assert violations == [], violations


def test_change_status_in_the_dialog(signed_in, desk):
    page = signed_in
    customer_id = desk.run(lambda s: create_customer(
        s, None, SaveOptions("SK"), kind=CustomerKind.COMPANY, company_name="Status Co",
        contacts=[{"last_name": "Office", "email": "office@status.example.sk"}]).id)
    page.goto(f"/admin/customers/details/?id={customer_id}")
    page.get_by_role("button", name="Change Status").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Status").select_option(label="Inactive")
    dialog.get_by_role("button", name="OK").click()
    expect(page.get_by_test_id("status-badge")).to_have_text("Inactive")  # the customer header
    expect(page.locator(".alert-success")).to_contain_text("Status changed to Inactive.")
