"""The seed's journeys for a COMPANY and its contacts, clicked through in Chromium as an operator
does them, plus the API docs. Each runs on one signed-in page watched by `journey_tools.Guard`
(console errors, unexpected 4xx/5xx answers, lost input fail it); screenshots of each journey's
end go to test-artifacts/journey-company-*.png. The person journeys are in test_journeys_person.py.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from models import Contact, Customer, Request
from tests.browser.journey_tools import (
    add_company,
    add_olga,
    contact_row_field,
    guard_fixture,  # noqa: F401 (the `guard` fixture)
    import_folder_fixture,  # noqa: F401 (the `import_folder` fixture)
    journey_fixture,  # noqa: F401 (the `journey` fixture)
    open_customer,
    png,
    quick_modal,
    shoot,
    sign_in_as_olga,
    success,
    tab,
)

pytestmark = pytest.mark.browser
INVALID = re.compile(r"\bis-invalid\b")


def contact_rows(page):
    return page.locator("[data-stage=contacts] [data-rows] > *")


def test_quick_add_a_company_with_two_contacts(journey, guard, desk, artifacts):
    page = journey
    modal = quick_modal(page)
    company = modal.locator("[data-stage=customer]")
    expect(company.get_by_label("Company", exact=True)).to_be_checked()
    guard.fill(company.get_by_label("Company or Name *"), "Rýchla Dvojka s.r.o.")
    guard.fill(company.get_by_label("E-mail *"), "office@dvojka.example.sk")
    guard.fill(company.get_by_label("Phone"), "02 5010 2222")
    with guard.refused(422, "/quick/create"):  # a company needs its contacts first
        modal.get_by_role("button", name="Save", exact=True).click()
        expect(modal.get_by_text("Rýchla Dvojka s.r.o. is not saved yet")).to_be_visible()
    first = contact_rows(page).nth(0)
    guard.fill(contact_row_field(first, "First name"), "Hana")
    guard.fill(contact_row_field(first, "Last name"), "Hlavná")
    bad_email = guard.fill(contact_row_field(first, "E-mail"), "hana at dvojka")
    modal.get_by_role("button", name="Add another contact").click()
    second = contact_rows(page).nth(1)
    guard.fill(contact_row_field(second, "First name"), "Ivan")
    guard.fill(contact_row_field(second, "Last name"), "Druhý")
    guard.fill(contact_row_field(second, "E-mail"), "ivan@dvojka.example.sk")
    save = modal.get_by_role("button", name="Save the company and its contacts")
    with guard.refused(422, "/quick/create"):
        save.click()
        expect(bad_email).to_have_class(INVALID)
    guard.kept(bad_email)
    bad_email.fill("hana@dvojka.example.sk")
    save.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Rýchla Dvojka s.r.o.")
    expect(page.get_by_test_id("kind-badge")).to_have_text("Company")
    shoot(guard, artifacts, "company-quick-add")

    def saved(session):
        company = session.query(Customer).one()
        return sorted((c.display_name, c.is_main) for c in company.contacts)
    assert desk.run(saved) == [("Hana Hlavná", True), ("Ivan Druhý", False)]


def test_a_request_with_a_new_company(journey, guard, desk, artifacts):
    page = journey
    page.get_by_role("navigation").get_by_role("link", name="Requests", exact=True).click()
    page.get_by_role("link", name="Create", exact=True).click()
    guard.fill(page.get_by_label("Subject *"), "Printer on fire")
    guard.fill(page.get_by_label("Description"), "Third floor, it smokes.")
    page.get_by_role("button", name="Add a customer quickly").click()
    modal = page.get_by_role("dialog")
    page.get_by_label("Company or Name *").fill("Horiaca Tlačiareň a.s.")
    page.get_by_label("E-mail *").fill("office@tlaciaren.example.sk")
    with guard.refused(422, "/quick/create"):
        page.get_by_label("E-mail *").press("Enter")
        expect(modal.get_by_text("Horiaca Tlačiareň a.s. is not saved yet")).to_be_visible()
    first = contact_rows(page).nth(0)
    contact_row_field(first, "First name").fill("Mia")
    contact_row_field(first, "Last name").fill("Hlavná")
    contact_row_field(first, "E-mail").fill("mia@tlaciaren.example.sk")
    modal.get_by_role("button", name="Add another contact").click()
    second = contact_rows(page).nth(1)
    contact_row_field(second, "First name").fill("Cyril")
    contact_row_field(second, "Last name").fill("Kontakt")
    contact_row_field(second, "E-mail").fill("cyril@tlaciaren.example.sk")
    modal.get_by_role("button", name="Save the company and its contacts").click()
    expect(modal).to_be_hidden()
    expect(page.locator("#s2id_customer")).to_contain_text("Horiaca Tlačiareň a.s.")
    guard.kept()
    assigned = page.get_by_role("group", name="Assigned contacts")
    expect(assigned).to_contain_text("Cyril Kontakt")
    assigned.get_by_text("Cyril Kontakt").click()
    expect(assigned.get_by_label(re.compile("Cyril Kontakt"))).to_be_checked()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(success(page)).to_be_visible()
    shoot(guard, artifacts, "company-request")

    def saved(session):
        request = session.query(Request).one()
        return request.customer.display_name, [c.display_name for c in request.contacts]
    assert desk.run(saved) == ("Horiaca Tlačiareň a.s.", ["Cyril Kontakt"])


STEP3 = {"POP3 mailbox address": "desk@sprievodca.example.sk", "POP3: host": "pop.sprievodca.example.sk",
         "POP3: port": "995", "POP3: user name": "desk", "Primary SMTP: host": "smtp.sprievodca.example.sk",
         "Primary SMTP: port": "587", "Primary SMTP: user name": "desk",
         "Fallback SMTP: host": "smtp2.sprievodca.example.sk", "Fallback SMTP: port": "465"}


def test_the_wizard_left_mid_step_and_resumed_from_the_drafts(journey, guard, desk, artifacts):
    page = journey
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(f"{dialog.type} on {page.url}"), dialog.accept()))
    page.get_by_role("navigation").get_by_role("link", name="Customers", exact=True).click()
    page.get_by_role("button", name="Add with the wizard").click()
    page.wait_for_url("**/wizard/new")
    guard.fill(page.get_by_label("Company name *"), "Sprievodca s.r.o.")
    guard.fill(page.get_by_label("Company ID (IČO)"), "12345678")
    guard.fill(page.get_by_label("VAT ID"), "SK2020123456")
    guard.fill(page.get_by_label("Contact person's first name"), "Karol")
    guard.fill(page.get_by_label("Contact person's last name"), "Kontaktný")
    email = guard.fill(page.get_by_label("Contact person's e-mail *"), "karol at sprievodca")
    with guard.refused(422, "/wizard/"):
        page.get_by_role("button", name="Next").click()
        expect(email).to_have_class(INVALID)
    guard.kept(email)
    email.fill("karol@sprievodca.example.sk")
    page.get_by_role("button", name="Next").click()
    page.wait_for_url("**/cmonitor")
    page.get_by_role("button", name="Next").click()
    page.wait_for_url("**/mail")
    guard.forget()
    page.get_by_text("Use the customer's own POP3 mailbox and SMTP servers").click()
    for label, value in STEP3.items():
        guard.fill(page.get_by_label(label, exact=True), value)
    guard.select(page.get_by_label("Primary SMTP: security", exact=True), "starttls")
    page.get_by_label("Primary SMTP: password", exact=True).fill("smtp-secret")
    expect(page.get_by_test_id("autosave-status")).to_have_text("Kept in the draft")
    page.get_by_role("navigation").get_by_role("link", name="Dashboard", exact=True).click()  # away, no Next
    page.wait_for_url("**/admin/")
    page.get_by_role("navigation").get_by_role("link", name="Customers", exact=True).click()
    drafts = page.get_by_test_id("drafts")
    expect(drafts).to_contain_text("Sprievodca s.r.o.")
    drafts.get_by_role("link", name="Resume").click()
    page.get_by_role("link", name="3. POP3 and SMTP").click()
    page.wait_for_url("**/mail")
    guard.kept()
    expect(page.get_by_test_id("secret-set-smtp_primary_password")).to_be_visible()
    for step in ("notifications", "requests", "operators", "summary"):
        page.get_by_role("button", name="Next").click()
        page.wait_for_url(f"**/{step}")
    expect(page.get_by_test_id("summary-customer")).to_contain_text("SK2020123456")
    expect(page.get_by_test_id("summary-mail")).to_contain_text("smtp2.sprievodca.example.sk")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/contacts-tab/**")
    expect(success(page)).to_contain_text("Sprievodca s.r.o. was created.")
    expect(page.get_by_test_id("add-contacts-prompt")).to_be_visible()
    expect(page.get_by_test_id("contacts")).to_contain_text("karol@sprievodca.example.sk")
    shoot(guard, artifacts, "company-wizard")
    # The page said "Kept in the draft" before the person left: leaving must not warn then.
    assert dialogs == [], "the autosave status said 'Kept in the draft' while a change was not kept yet"


def test_edit_the_tabs_of_a_company(journey, guard, desk, artifacts):
    desk.run(add_olga)
    desk.run(add_company, "Upravená Firma s.r.o.", ("Mia", "Hlavná", "mia@upravena.example.sk"))
    page = journey
    open_customer(page, "Upravená Firma s.r.o.")
    tab(page, "Basic information")
    expect(page.get_by_label("First name *")).to_be_hidden()
    guard.fill(page.get_by_label("VAT ID"), "SK2020999888")
    phone = guard.fill(page.get_by_label("Primary phone"), "12ab")
    with guard.refused(422, "/edit/"):
        page.get_by_role("button", name="Save", exact=True).click()
        expect(phone).to_have_class(INVALID)
    guard.kept(phone)
    phone.fill("02 5010 1111")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(success(page)).to_contain_text("Saved: VAT ID, Primary phone.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Upravená Firma s.r.o.")

    tab(page, "Contacts")
    guard.forget()
    form = page.get_by_test_id("add-contact")
    guard.fill(form.get_by_label("First name"), "Peter")
    guard.fill(form.get_by_label("Last name *"), "Druhý")
    email = guard.fill(form.get_by_label("E-mail"), "peter at upravena")
    with guard.refused(422, "/contacts-tab/"):
        form.get_by_role("button", name="Add contact").click()
        expect(email).to_have_class(INVALID)
    guard.kept(email)
    email.fill("peter@upravena.example.sk")
    form.get_by_role("button", name="Add contact").click()
    expect(page.get_by_test_id("contacts")).to_contain_text("peter@upravena.example.sk")

    tab(page, "Requests by e-mail")
    page.get_by_text("Enable entering requests and discussion by e-mail").click()
    page.get_by_label("Intake address").fill("poziadavky@upravena.example.sk")
    page.get_by_role("button", name="Save").click()
    expect(success(page)).to_be_visible()
    expect(page.get_by_label("Intake address")).to_have_value("poziadavky@upravena.example.sk")

    tab(page, "Operators")
    page.get_by_text("Olga Operator").click()
    page.get_by_role("button", name="Save").click()
    expect(success(page)).to_contain_text("Responsible operators saved.")
    tab(page, "Overview")
    expect(page.locator("body")).to_contain_text("Olga Operator")
    shoot(guard, artifacts, "company-edit-tabs", widths=(1366, 800, 1920))


def test_change_the_status_of_a_company(journey, guard, desk, artifacts):
    desk.run(add_company, "Stavová a.s.", ("Mia", "Hlavná", "mia@stavova.example.sk"))
    page = journey
    open_customer(page, "Stavová a.s.")
    page.get_by_role("button", name="Change Status").click()
    dialog = page.get_by_role("dialog", name="Select Status")
    expect(dialog).to_be_visible()  # opened (its script may still be loading on a busy machine)
    dialog.get_by_label("Status").select_option(label="Inactive")
    dialog.get_by_role("button", name="OK").click()
    expect(success(page)).to_contain_text("Status changed to Inactive.")
    expect(page.get_by_test_id("status-badge")).to_have_text("Inactive")
    shoot(guard, artifacts, "company-status")


def test_upload_a_logo_of_a_company(journey, guard, desk, artifacts):
    desk.run(add_company, "Logo s.r.o.", ("Mia", "Hlavná", "mia@logo.example.sk"))
    page = journey
    open_customer(page, "Logo s.r.o.")
    page.get_by_label("Photo (PNG, JPEG or WebP, up to 5 MB)").set_input_files(
        {"name": "logo.png", "mimeType": "image/png", "buffer": png((200, 40, 40))})
    page.get_by_role("button", name="Upload").click()
    expect(success(page)).to_contain_text("The photo was saved.")
    header = page.get_by_test_id("customer-header")
    expect(header.get_by_role("img", name="Photo of Logo s.r.o.")).to_be_visible()
    shoot(guard, artifacts, "company-photo")


def test_portal_access_for_a_company_contact(journey, guard, desk, artifacts):
    desk.run(add_company, "Portál a.s.", ("Mia", "Hlavná", "mia@portal.example.sk"),
             ("Cyril", "Kontakt", "cyril@portal.example.sk"))
    page = journey
    open_customer(page, "Portál a.s.")
    tab(page, "Contacts")
    cyril = page.get_by_role("row", name=re.compile("Cyril Kontakt"))
    cyril.get_by_role("link", name="Portal access").click()
    expect(page.get_by_test_id("contact-portal-title")).to_contain_text("Cyril Kontakt")
    guard.fill(page.get_by_label("User name *"), "cyril@portal.example.sk")
    password = page.get_by_label(re.compile(r"^First password \*"))
    password.fill("x")
    with guard.refused(422, "/contact-portal/"):
        page.get_by_role("button", name="Create portal access").click()
        expect(page.locator(".invalid-feedback")).to_be_visible()
    guard.kept()
    password.fill("first password 1")
    page.get_by_role("button", name="Create portal access").click()
    expect(page.get_by_test_id("contact-portal-account")).to_contain_text("cyril@portal.example.sk")
    page.get_by_role("link", name="← Contacts").click()
    expect(cyril).to_contain_text("Portal access (enabled)")
    shoot(guard, artifacts, "company-portal")


def test_history_of_a_company_in_words(journey, guard, desk, artifacts):
    desk.run(add_company, "História s.r.o.", ("Mia", "Hlavná", "mia@historia.example.sk"))
    page = journey
    open_customer(page, "História s.r.o.")
    tab(page, "Basic information")
    page.get_by_label("VAT ID").fill("SK2020777666")
    page.get_by_label("Primary phone").fill("02 5010 3333")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(success(page)).to_be_visible()
    tab(page, "Overview")
    phone = page.locator("dd[data-value=primary_phone]").inner_text()
    tab(page, "History")
    history = page.get_by_test_id("history")
    expect(history).to_contain_text("VAT ID")
    expect(history).to_contain_text("SK2020777666")
    expect(history).to_contain_text(phone.split(" (")[0])  # as the Overview shows it: one format
    expect(history).to_contain_text("Mia Hlavná")
    for internal in ("vat_id", "primary_phone", "customersettings", "<Customer", "None"):
        expect(history).not_to_contain_text(internal)
    shoot(guard, artifacts, "company-history")


def test_the_operators_view_of_companies(journey, guard, desk, artifacts):
    olga_id = desk.run(add_olga)

    def seed(session):
        from models import Operator
        olga = session.get(Operator, olga_id)
        mine = add_company(session, "Moja Firma s.r.o.", ("Mia", "Hlavná", "mia@moja.example.sk"),
                           operators=[olga])
        other = add_company(session, "Cudzia Firma a.s.", ("Cyril", "Cudzí", "cyril@cudzia.example.sk"))
        return mine, other
    _mine, other_id = desk.run(seed)
    page = journey
    sign_in_as_olga(page)
    expect(page.get_by_test_id("signed-in-as")).to_contain_text("Olga Operator")
    page.get_by_role("navigation").get_by_role("link", name="Customers", exact=True).click()
    expect(page.get_by_role("link", name="Moja Firma s.r.o.")).to_be_visible()
    expect(page.get_by_role("link", name="Cudzia Firma a.s.")).to_have_count(0)
    page.get_by_role("navigation").get_by_role("link", name="Contacts", exact=True).click()
    expect(page.locator("body")).to_contain_text("Hlavná")
    expect(page.locator("body")).not_to_contain_text("Cudzí")
    with guard.refused(404, f"id={other_id}"):
        page.goto(f"/admin/customers/overview/?id={other_id}")
        expect(page.get_by_role("link", name="Back to Customer Desk")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("Cudzia")
    shoot(guard, artifacts, "company-operator-view")


CSV = ("Company name;Company ID (IČO);E-mail;Contact first name;Contact last name;Contact e-mail\n"
       "Žilinská strojáreň s.r.o.;12345678;info@zs.example.sk;Ľubica;Šťastná;lubica@zs.example.sk\n"
       "Bez e-mailu s.r.o.;;toto-nie-je-email;;;\n")


def test_import_companies_from_a_csv(journey, guard, desk, artifacts, import_folder, tmp_path):
    upload = tmp_path / "firmy.csv"
    upload.write_bytes(CSV.encode("utf-8"))
    page = journey
    page.get_by_role("navigation").get_by_role("link", name="Import customers").click()
    page.get_by_label("File (CSV or XLSX)").set_input_files(str(upload))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_test_id("mapping")).to_contain_text("Žilinská strojáreň s.r.o.")
    page.get_by_role("button", name="Preview").click()
    counts = page.get_by_test_id("import-counts")
    expect(counts.locator("[data-count=created]")).to_contain_text("1")
    expect(counts.locator("[data-count=rejected]")).to_contain_text("1")
    page.get_by_test_id("run-import").click()
    expect(page.get_by_test_id("import-done")).to_be_visible()
    shoot(guard, artifacts, "company-import")
    assert desk.run(lambda s: [c.display_name for c in s.query(Contact)]) == ["Ľubica Šťastná"]


def test_merge_two_companies_with_different_vat_ids(journey, guard, desk, artifacts):
    def seed(session):
        older_id = add_company(session, "Dvojča s.r.o.", ("Mia", "Hlavná", "mia@dvojca.example.sk"),
                               vat_id="SK2020111111", registration_number="11111111")
        older = session.get(Customer, older_id)
        older.created_at = older.created_at - timedelta(days=300)
        newer = add_company(session, "Dvojča s.r.o.", ("Ivan", "Druhý", "ivan@dvojca.example.sk"),
                            vat_id="SK2020222222")
        return older_id, newer
    older_id, newer_id = desk.run(seed)
    page = journey
    page.goto(f"/admin/customers/overview/?id={newer_id}")
    page.get_by_role("link", name="Merge…").click()
    page.get_by_label("Search").fill("dvojca")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Merge with this one").click()
    expect(page.get_by_test_id("merge-survivor")).to_contain_text(f"no. {older_id}")
    fields = page.get_by_test_id("merge-fields")
    expect(fields).to_contain_text("VAT ID")
    expect(fields).to_contain_text("SK2020222222")
    page.get_by_role("button", name="Merge", exact=True).click()
    expect(page.get_by_test_id("merge-confirmation")).to_be_visible()
    # The menu opens by Bootstrap's script: a click before the page's load event opened nothing.
    page.wait_for_load_state("load")
    page.get_by_role("navigation").get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Audit trail").click()  # answered 500 after any merge (issue 18)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    shoot(guard, artifacts, "company-merge")

    def after(session):
        kept = session.get(Customer, older_id)
        return kept.vat_id, sorted(c.display_name for c in kept.contacts)
    assert desk.run(after) == ("SK2020111111", ["Ivan Druhý", "Mia Hlavná"])


def test_api_docs_and_their_token_link(journey, guard, desk, artifacts):
    page = journey
    page.get_by_test_id("signed-in-as").click()
    page.get_by_role("link", name="My API tokens").click()
    page.get_by_label("Name").fill("monitoring script")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("row", name=re.compile("monitoring script"))).to_be_visible()
    page.get_by_role("link", name="API documentation").click()
    page.wait_for_url("**/api/v1/docs")
    expect(page.get_by_text("/api/v1/customers/{customer_id}", exact=True).first).to_be_visible()
    expect(page.get_by_role("button", name="Authorize")).to_be_visible()
    token_link = page.get_by_role("link", name=re.compile("API tokens"))  # where to get a token
    expect(token_link, "the docs say 'profile → API tokens' without a link").to_be_visible()
    # Swagger UI opens a description's links in a new tab: follow it there, as a person would.
    with page.context.expect_page() as opened:
        token_link.click()
    tokens_tab = opened.value
    expect(tokens_tab.get_by_role("heading", name="My API tokens")).to_be_visible()
    tokens_tab.close()
    shoot(guard, artifacts, "api-docs-tokens")
