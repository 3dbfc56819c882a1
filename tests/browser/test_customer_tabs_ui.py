"""The per-customer edit tabs in Chromium: move between tabs, save one, see it kept."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from models import Customer, Workgroup
from models.enums import CustomerKind
from services.customers import SaveOptions, create_customer
from services.operators import create_operator
from services.transactions import unit_of_work

pytestmark = pytest.mark.browser


def seed(session):
    with unit_of_work(session):
        olga = create_operator(session, email="olga@example.com", password="correct horse battery",
                               first_name="Olga", last_name="Operator")
        session.add(Workgroup(name="Helpdesk"))
        customer = create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.COMPANY,
                                   company_name="Tabby s.r.o.", email="office@tabby.example.sk",
                                   contacts=[{"last_name": "Mačková", "email": "macka@tabby.example.sk",
                                              "is_main": True}])
    return customer.id, olga.id


def test_walk_the_tabs_and_assign_an_operator(signed_in, desk, artifacts):
    customer_id, olga_id = desk.run(seed)
    page = signed_in
    page.goto(f"/admin/customers/edit/?id={customer_id}")
    tabs = page.get_by_test_id("customer-tabs")
    expect(tabs.locator(".nav-link.active")).to_have_text("Basic information")
    page.screenshot(path=artifacts / "customer-tabs-basic.png", full_page=True)

    tabs.get_by_role("link", name="Operators").click()
    page.wait_for_url("**/operators-tab/**")
    page.locator(f"label[for=operator-{olga_id}]").click()  # what a user clicks
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-success")).to_contain_text("Responsible operators saved.")
    expect(page.get_by_label("Olga Operator")).to_be_checked()

    page.get_by_test_id("customer-tabs").get_by_role("link", name="Workgroups").click()
    page.get_by_text("Helpdesk").click()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".alert-success")).to_contain_text("Workgroups saved.")

    page.get_by_test_id("customer-tabs").get_by_role("link", name="History").click()
    expect(page.get_by_test_id("history")).to_contain_text("operator assignment")
    page.screenshot(path=artifacts / "customer-tabs-history.png", full_page=True)

    page.get_by_test_id("customer-tabs").get_by_role("link", name="Computers").click()
    expect(page.get_by_test_id("registration-key")).to_contain_text("none yet")
    page.get_by_role("button", name="Make a key").click()
    shown = page.get_by_test_id("new-registration-key")
    expect(shown).to_contain_text("Copy it now: it is not shown again.")
    key = shown.locator("code").inner_text()
    page.screenshot(path=artifacts / "customer-tabs-computers-key.png", full_page=True)
    page.goto(f"/admin/customers/computers-tab/?id={customer_id}")  # opened again: the key is gone
    expect(page.get_by_test_id("registration-key")).to_contain_text("set")
    assert key and key not in page.content()
    assert desk.run(lambda s: [o.id for o in s.get(Customer, customer_id).operators]) == [olga_id]
    assert desk.run(lambda s: [w.name for w in s.get(Customer, customer_id).workgroups]) == ["Helpdesk"]
