"""One customer page in Chromium: the header with its actions above the tabs, the Overview as a
person reads it, Basic information saved on the customer with a message naming what changed, the
Change Status and Quick add contact dialogs, the other tabs — at 1366, 800 and 1920 px."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from models import Customer, Workgroup
from models.enums import CustomerKind, PhoneType
from services.customers import SaveOptions, create_customer
from services.operators import create_operator
from services.transactions import unit_of_work

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def nothing_goes_wrong(page: Page):
    """Every test here fails on a console error or a 4xx/5xx answer the browser receives."""
    problems: list[str] = []
    # A failed load is also a console error: the response listener reports it, with its URL.
    page.on("console", lambda m: problems.append(f"console: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    yield
    assert problems == []


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


def seed_person(session):
    boss = create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.PERSON, first_name="Eva",
                           last_name="Malá")
    return create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.PERSON, first_name="Jana",
                           middle_name="K", last_name="Nová", title="Analyst", manager=boss,
                           primary_phone="+421905123456", primary_phone_type=PhoneType.MOBILE,
                           email="jana.nova@example.sk", notes="Prefers e-mail.\nCall after 10:00.").id


def scrolls_sideways(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")


def test_a_person_page_reads_in_sections_and_saves_on_the_customer(signed_in, desk, artifacts):
    customer_id = desk.run(seed_person)
    page = signed_in
    page.get_by_role("link", name="Customers", exact=True).first.click()
    page.get_by_role("link", name="Nová, Jana K.").click()
    page.wait_for_url("**/admin/customers/overview/**")
    expect(page.get_by_role("heading", level=1)).to_have_text("Nová, Jana K.")
    expect(page.get_by_test_id("kind-badge")).to_have_text("Person")
    expect(page.get_by_test_id("status-badge")).to_have_text("Active")
    sections = page.get_by_test_id("overview").get_by_role("heading", level=2)
    expect(sections).to_have_text(["General", "Contact", "Organization", "Record", "Photo",
                                   "More about this customer"])
    expect(page.locator("dd[data-value=primary_phone]")).to_have_text("+421 905 123 456 (Mobile)")
    expect(page.locator("dd[data-value=manager]")).to_have_text("Malá, Eva")
    expect(page.locator("dt[data-field=company_name]")).to_have_count(0)
    expect(page.get_by_role("button", name="Quick add contact")).to_have_count(0)  # a person
    for width in (1366, 800, 1920):
        page.set_viewport_size({"width": width, "height": 800})
        assert not scrolls_sideways(page), width
        page.screenshot(path=artifacts / f"customer-person-overview-{width}.png", full_page=True,
                        animations="disabled")

    page.set_viewport_size({"width": 1366, "height": 800})
    page.get_by_test_id("customer-tabs").get_by_role("link", name="Basic information").click()
    page.wait_for_url("**/admin/customers/edit/**")
    for legend in ("General", "Contact", "Organization"):
        expect(page.locator("fieldset.cd-section legend", has_text=legend)).to_be_visible()
    expect(page.get_by_role("button", name="Save and Add Another")).to_have_count(0)
    page.screenshot(path=artifacts / "customer-person-basic-1366.png", full_page=True, animations="disabled")
    page.set_viewport_size({"width": 800, "height": 800})
    page.screenshot(path=artifacts / "customer-person-basic-800.png", full_page=True, animations="disabled")
    page.set_viewport_size({"width": 1366, "height": 800})
    page.get_by_label("Title").fill("Senior analyst")
    page.get_by_label("Primary phone").fill("0911 222 333")
    page.get_by_test_id("save").click()
    page.wait_for_url(f"**/admin/customers/edit/?id={customer_id}")
    expect(page.locator(".alert-success")).to_contain_text("Saved: Title, Primary phone.")
    expect(page.get_by_label("Title")).to_have_value("Senior analyst")
    assert desk.run(lambda s: s.get(Customer, customer_id).title) == "Senior analyst"

    page.get_by_role("button", name="Change Status").click()
    dialog = page.locator("#change-status")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Status").select_option(label="Inactive")
    dialog.get_by_role("button", name="OK").click()
    page.wait_for_url(f"**/admin/customers/edit/?id={customer_id}")  # back on the tab it was opened on
    expect(page.locator(".alert-success")).to_contain_text("Status changed to Inactive.")
    expect(page.get_by_test_id("status-badge")).to_have_text("Inactive")


def test_a_company_page_quick_adds_a_contact_and_walks_the_tabs(signed_in, desk, artifacts):
    customer_id, olga_id = desk.run(seed)
    page = signed_in
    page.goto(f"/admin/customers/details/?id={customer_id}")  # the old link leads to the one page
    page.wait_for_url(f"**/admin/customers/overview/?id={customer_id}")
    tabs = page.get_by_test_id("customer-tabs")
    expect(tabs.locator(".nav-link.active")).to_have_text("Overview")
    expect(page.locator("dt[data-field=first_name]")).to_have_count(0)  # no person fields on a company
    expect(page.locator("dd[data-value=contacts]")).to_contain_text("Mačková")
    for width in (1366, 800, 1920):
        page.set_viewport_size({"width": width, "height": 800})
        assert not scrolls_sideways(page), width
        page.screenshot(path=artifacts / f"customer-company-overview-{width}.png", full_page=True,
                        animations="disabled")
    page.set_viewport_size({"width": 1366, "height": 800})

    page.get_by_role("button", name="Quick add contact").click()
    dialog = page.locator("#quick-contact")
    expect(dialog).to_be_visible()
    dialog.get_by_label("First name").fill("Peter")
    dialog.get_by_label("Last name *").fill("Malý")
    dialog.get_by_label("E-mail").fill("peter@tabby.example.sk")
    page.screenshot(path=artifacts / "customer-company-quick-contact.png", animations="disabled")
    dialog.get_by_role("button", name="Add contact").click()
    page.wait_for_url("**/contacts-tab/**")
    expect(page.locator(".alert-success")).to_contain_text("Peter Malý")
    expect(page.get_by_test_id("contacts")).to_contain_text("peter@tabby.example.sk")

    tabs = page.get_by_test_id("customer-tabs")
    tabs.get_by_role("link", name="Basic information").click()
    page.wait_for_url("**/admin/customers/edit/**")
    expect(page.get_by_label("First name *")).to_be_hidden()  # a company's form
    page.screenshot(path=artifacts / "customer-tabs-basic.png", full_page=True, animations="disabled")
    page.get_by_test_id("save").click()
    expect(page.locator(".alert-success")).to_contain_text("Saved: nothing was changed.")

    page.get_by_test_id("customer-tabs").get_by_role("link", name="Operators").click()
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
    expect(page.get_by_test_id("history")).to_contain_text("Olga Operator")
    page.screenshot(path=artifacts / "customer-tabs-history.png", full_page=True, animations="disabled")

    page.get_by_test_id("customer-tabs").get_by_role("link", name="Computers").click()
    expect(page.get_by_test_id("registration-key")).to_contain_text("none yet")
    page.get_by_role("button", name="Make a key").click()
    shown = page.get_by_test_id("new-registration-key")
    expect(shown).to_contain_text("Copy it now: it is not shown again.")
    key = shown.locator("code").inner_text()
    page.goto(f"/admin/customers/computers-tab/?id={customer_id}")  # opened again: the key is gone
    expect(page.get_by_test_id("registration-key")).to_contain_text("set")
    assert key and key not in page.content()
    assert desk.run(lambda s: [o.id for o in s.get(Customer, customer_id).operators]) == [olga_id]
    assert desk.run(lambda s: [w.name for w in s.get(Customer, customer_id).workgroups]) == ["Helpdesk"]

    page.get_by_role("link", name="Merge…").click()  # the header's Merge… opens the merge page
    page.wait_for_url(f"**/admin/customers/merge/?survivor={customer_id}")
