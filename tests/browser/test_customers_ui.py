"""The customer screens in a real browser: sign-in, list, create forms, search, form errors.

Each test drives the UI with clicks and typing, as a desk operator would; data a test needs
beforehand is created through the domain services (`desk.run`), never through the UI under test.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from models import Customer
from models.enums import CustomerKind
from services.customers import SaveOptions, create_customer
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

COMPANY = "Žilinská strojáreň s.r.o."
LIST_URL = re.compile(r"/admin/customers/(\?.*)?$")  # after a save: ?page_size=20
CUSTOMER_PAGE = "**/admin/customers/overview/**"  # where a saved customer is shown


@pytest.fixture(autouse=True)
def nothing_goes_wrong(page: Page):
    """Every test here fails on a console error or a 4xx/5xx answer the browser receives."""
    problems: list[str] = []
    # A failed load is also a console error: the response listener reports it, with its URL.
    page.on("console", lambda m: problems.append(f"console: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    expected = {(422, "/login")}  # the wrong password of the sign-in test
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and (r.status, "/" + r.url.split("/", 3)[-1]) not in expected else None)
    yield
    assert problems == []


def new_customer(session, **fields):
    return create_customer(session, None, SaveOptions("SK"), **fields)


def seed_company(session):
    return new_customer(session, kind=CustomerKind.COMPANY, company_name=COMPANY,
                        email="office@zst.example.sk",
                        contacts=[{"first_name": "Ján", "last_name": "Šimko",
                                   "email": "jan.simko@zst.example.sk", "is_main": True}])


def seed_manager(session):
    return new_customer(session, kind=CustomerKind.PERSON, first_name="Eva", last_name="Malá",
                        email="eva.mala@example.sk")


def seed_kovac(session):
    return new_customer(session, kind=CustomerKind.PERSON, first_name="Peter", last_name="Kováč",
                        email="peter.kovac@example.sk")


def list_names(page: Page):
    return page.locator("table.model-list td.col-display_name")


def open_create_form(page: Page) -> None:
    """The plain one-page form: the list offers Quick add and the wizard instead (one way per
    intent), so it is reached by its URL, as scripts and old bookmarks do."""
    page.goto("/admin/customers/new/")
    expect(page.locator("#kind")).to_be_visible()


def choose_kind(page: Page, label: str) -> None:
    page.get_by_label("Kind").select_option(label=label)


def select2_choose(page: Page, field_id: str, option: str, typed: str | None = None) -> None:
    """Open a Select2 box, optionally type into its search box, click the offered option."""
    page.locator(f"#s2id_{field_id}").click()
    if typed is not None:
        page.locator(".select2-drop-active input.select2-input").fill(typed)
    page.locator(".select2-drop-active .select2-result-label", has_text=option).click()
    expect(page.locator(f"#s2id_{field_id} .select2-chosen")).to_have_text(option)


def save(page: Page) -> None:
    page.get_by_role("button", name="Save", exact=True).click()


def test_sign_in_lands_on_the_dashboard_with_counts(page: Page, desk, artifacts):
    desk.run(seed_company)
    desk.run(seed_kovac)

    sign_in(page, desk.maintainer_email, "not the password")
    expect(page.get_by_text("Wrong e-mail or password.")).to_be_visible()
    expect(page.get_by_label("E-mail")).to_have_value(desk.maintainer_email)

    page.get_by_label("Password").fill(desk.password)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(re.compile(r"/admin/$"))
    expect(page.get_by_test_id("signed-in-as")).to_contain_text("Mia Maintainer")
    expect(page.get_by_test_id("count-customers")).to_contain_text("2")
    expect(page.get_by_test_id("count-contacts")).to_contain_text("1")
    expect(page.get_by_test_id("count-requests")).to_contain_text("0")
    expect(page.get_by_test_id("count-operators")).to_contain_text("1")
    page.screenshot(path=artifacts / "dashboard.png", full_page=True, animations="disabled")


def test_customers_list_opens_from_the_menu(signed_in: Page, desk, artifacts):
    page = signed_in
    desk.run(seed_company)
    desk.run(seed_manager)
    desk.run(seed_kovac)

    page.get_by_role("link", name="Customers", exact=True).first.click()

    page.wait_for_url(LIST_URL)
    expect(list_names(page)).to_have_text(["Kováč, Peter", "Malá, Eva", COMPANY])
    headers = page.locator("table.model-list thead")
    for header in ("Name", "Kind", "Status", "E-mail", "Primary phone", "SLA level"):
        expect(headers).to_contain_text(header)
    expect(page.locator("table.model-list tbody")).to_contain_text("office@zst.example.sk")
    page.screenshot(path=artifacts / "customers-list.png", full_page=True, animations="disabled")


def test_create_a_company_with_its_main_contact(signed_in: Page, desk, artifacts):
    page = signed_in
    open_create_form(page)

    choose_kind(page, "Company")
    expect(page.get_by_label("First name *")).to_be_hidden()  # person fields hidden for a company
    page.get_by_label("Company name *").fill(COMPANY)
    page.get_by_role("button", name="Add Contact").click()
    contact = page.locator("#contacts .inline-field-list > .inline-field").last
    expect(contact).to_be_visible()
    # By label: static/customer_form.js re-points the labels Flask-Admin's form.js leaves on
    # for="first_name" to the renamed inputs (contacts-0-first_name).
    contact.get_by_label("First Name").fill("Ján")
    contact.get_by_label("Last Name").fill("Šimko")
    contact.get_by_label("E-mail").fill("jan.simko@zst.example.sk")
    contact.get_by_label("Main contact").check()
    select2_choose(page, "sla_level", desk.sla_level)
    with page.expect_response("**/customers/buildings/**"):  # the site's buildings replace the list
        select2_choose(page, "site", desk.site)
    select2_choose(page, "building", f"{desk.buildings[1]} ({desk.site})")
    page.screenshot(path=artifacts / "customer-create-company.png", full_page=True,
                    animations="disabled")
    save(page)

    page.wait_for_url(CUSTOMER_PAGE)
    expect(page.locator(".alert-success")).to_be_visible()
    expect(page.get_by_test_id("customer-title")).to_have_text(COMPANY)
    expect(page.locator("dd[data-value=sla_level]")).to_have_text(desk.sla_level)

    page.get_by_role("link", name="Contacts", exact=True).first.click()
    page.wait_for_url(re.compile(r"/admin/contacts/(\?.*)?$"))
    row = page.locator("table.model-list tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Ján Šimko")
    expect(row).to_contain_text(COMPANY)
    expect(row).to_contain_text("Main contact")
    expect(row).to_contain_text("jan.simko@zst.example.sk")


def test_a_company_without_an_email_contact_is_refused_under_its_contacts(signed_in: Page, desk, artifacts):
    page = signed_in
    open_create_form(page)
    choose_kind(page, "Company")
    page.get_by_label("Company name *").fill(COMPANY)
    page.get_by_role("button", name="Add Contact").click()
    contact = page.locator("#contacts .inline-field-list > .inline-field").last
    contact.get_by_label("Last Name").fill("Šimko")
    contact.get_by_label("Phone", exact=True).fill("0903 111 222")
    save(page)

    refusal = page.locator("#contacts ~ .invalid-feedback")
    expect(refusal).to_be_visible()
    expect(refusal).to_contain_text("A company needs at least one contact with an e-mail")
    expect(page.get_by_label("Company name *")).to_have_value(COMPANY)
    kept = page.locator("#contacts .inline-field-list > .inline-field").last
    expect(kept.get_by_label("Last Name")).to_have_value("Šimko")
    refusal.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "customer-create-company-without-email-contact.png", full_page=True,
                    animations="disabled")
    assert desk.run(lambda session: session.scalar(select(func.count()).select_from(Customer))) == 0

    kept.get_by_label("E-mail").fill("jan.simko@zst.example.sk")
    save(page)
    page.wait_for_url(CUSTOMER_PAGE)
    expect(page.get_by_test_id("customer-title")).to_have_text(COMPANY)


def test_create_a_person_with_a_manager_chosen_by_search(signed_in: Page, desk):
    page = signed_in
    desk.run(seed_manager)
    desk.run(lambda session: new_customer(  # matches "mala" too, but a company is no manager
        session, kind=CustomerKind.COMPANY, company_name="Malá firma s.r.o.",
        contacts=[{"last_name": "Malá", "email": "office@mala-firma.example.sk"}]))
    open_create_form(page)

    choose_kind(page, "Person")
    expect(page.get_by_label("Company name *")).to_be_hidden()
    page.get_by_label("First name *").fill("Peter")
    page.get_by_label("Last name *").fill("Kováč")

    page.locator("#s2id_manager").click()
    search = page.locator(".select2-drop-active input.select2-input")
    search.fill("mala")  # diacritics-free, as typed on any keyboard
    offered = page.locator(".select2-drop-active .select2-result-label")
    expect(offered).to_have_text(["Malá, Eva"])
    offered.filter(has_text="Malá, Eva").click()
    expect(page.locator("#s2id_manager .select2-chosen")).to_have_text("Malá, Eva")
    save(page)

    page.wait_for_url(CUSTOMER_PAGE)
    page.get_by_role("link", name="All customers").click()
    page.wait_for_url(LIST_URL)
    page.get_by_role("link", name="Kováč, Peter").click()  # the name is the link to the customer
    page.wait_for_url(CUSTOMER_PAGE)
    expect(page.locator("dd[data-value=manager]")).to_have_text("Malá, Eva")
    expect(page.get_by_test_id("kind-badge")).to_have_text("Person")
    expect(page.locator("dt[data-field=company_name]")).to_have_count(0)  # only a person's fields


def test_search_without_diacritics_finds_both(signed_in: Page, desk):
    page = signed_in
    desk.run(seed_company)
    desk.run(seed_kovac)
    desk.run(seed_manager)
    page.get_by_role("link", name="Customers", exact=True).first.click()
    page.wait_for_url(LIST_URL)
    expect(list_names(page)).to_have_count(3)

    for typed, found in (("kovac", "Kováč, Peter"), ("zilinska", COMPANY)):
        box = page.get_by_placeholder("Name, company, e-mail or phone")
        box.fill(typed)
        box.press("Enter")
        page.wait_for_url(f"**search={typed}**")
        expect(list_names(page)).to_have_text([found])


def test_invalid_phone_is_shown_at_the_field_and_keeps_the_input(signed_in: Page, desk):
    page = signed_in
    open_create_form(page)

    choose_kind(page, "Person")
    page.get_by_label("First name *").fill("Peter")
    page.get_by_label("Last name *").fill("Kováč")
    page.get_by_label("Primary phone").fill("12ab")
    page.get_by_label("E-mail", exact=True).fill("peter.kovac@example.sk")
    save(page)

    phone = page.get_by_label("Primary phone")
    group = page.locator(".form-group", has=page.locator("#primary_phone"))
    expect(group.locator(".invalid-feedback")).to_be_visible()
    expect(group).to_contain_text("Not a phone number")
    expect(phone).to_have_class(re.compile(r"\bis-invalid\b"))
    expect(phone).to_have_value("12ab")
    expect(page.get_by_label("Kind")).to_have_value("person")
    expect(page.get_by_label("First name *")).to_have_value("Peter")
    expect(page.get_by_label("Last name *")).to_have_value("Kováč")
    expect(page.get_by_label("E-mail", exact=True)).to_have_value("peter.kovac@example.sk")
    assert desk.run(lambda session: session.scalar(select(func.count()).select_from(Customer))) == 0


def page_scrolls_sideways(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")


def test_the_list_fits_the_window_at_800_1366_and_1920_px(signed_in: Page, desk, artifacts):
    page = signed_in
    desk.run(seed_company)
    desk.run(lambda session: new_customer(session, kind=CustomerKind.PERSON, first_name="Eva",
                                          last_name="Malá", email="eva.mala.with.a.long.address@example.sk",
                                          primary_phone="+421905123456"))
    for width in (1366, 800, 1920):
        page.set_viewport_size({"width": width, "height": 800})
        page.goto("/admin/customers/")
        expect(list_names(page)).to_have_count(2)
        assert not page_scrolls_sideways(page), width
        phone = page.locator("td.col-primary_phone span.text-nowrap", has_text="+421 905 123 456")
        expect(phone).to_be_visible()  # the number on one line
        assert phone.evaluate("e => e.getClientRects().length") == 1
        expect(page.get_by_test_id("status-badge").first).to_have_text("Active")
        page.screenshot(path=artifacts / f"customers-list-{width}.png", full_page=True, animations="disabled")
    expect(page.locator("th.col-operators")).to_be_visible()  # at 1920 every column shows
    page.set_viewport_size({"width": 800, "height": 800})
    expect(page.locator("th.col-operators")).to_be_hidden()  # at 800 the less important ones go
    # One way per intent, clearly named; Flask-Admin's own Create is not offered.
    expect(page.get_by_role("button", name="Quick add")).to_be_visible()
    expect(page.get_by_role("button", name="Add with the wizard")).to_be_visible()
    expect(page.get_by_role("link", name="Create", exact=True)).to_have_count(0)
    page.get_by_role("button", name="Quick add").click()
    expect(page.locator("#quick-create.show")).to_be_visible()
