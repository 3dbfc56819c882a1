"""The quick form in Chromium: from the Customers list and beside a new request's Customer field."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from models import Contact, Customer, Request
from models.enums import CustomerKind
from services.customers import SaveOptions, create_customer

pytestmark = pytest.mark.browser


def seed_kovac(session):
    return create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.PERSON, first_name="Peter",
                           last_name="Kováč", email="peter.kovac@example.sk").id


def open_from_list(page):
    page.goto("/admin/customers/")
    page.get_by_test_id("quick-add").click()
    modal = page.locator("#quick-create")
    expect(modal).to_be_visible()
    expect(page.get_by_label("Company or Name *")).to_be_focused()
    return modal


def test_a_near_duplicate_is_listed_with_its_reason_and_esc_closes(signed_in, desk, artifacts):
    desk.run(seed_kovac)
    page = signed_in
    modal = open_from_list(page)
    page.get_by_text("Private person").click()
    page.get_by_label("Company or Name *").fill("kovac peter")
    candidates = page.get_by_test_id("quick-candidates")
    expect(candidates).to_contain_text("Kováč, Peter")
    expect(candidates).to_contain_text("same name")
    page.get_by_label("E-mail *").fill("PETER.KOVAC@example.sk")
    expect(candidates).to_contain_text("same e-mail, same name")
    page.screenshot(path=artifacts / "quick-create-duplicate.png", full_page=True)
    page.get_by_label("Company or Name *").press("Enter")  # the server refuses without confirmation
    expect(modal.locator("#quick-create-form [data-messages]")).to_contain_text("already exists")
    expect(page.get_by_label("Create anyway: it is not one of the matches")).to_be_attached()
    expect(page.get_by_label("Company or Name *")).to_have_value("kovac peter")  # input kept
    page.keyboard.press("Escape")
    expect(modal).to_be_hidden()
    assert desk.run(lambda s: s.query(Customer).count()) == 1


def test_create_a_company_and_its_main_contact_in_the_modal(signed_in, desk, artifacts):
    page = signed_in
    modal = open_from_list(page)
    page.get_by_label("Company or Name *").fill("Rýchla Firma s.r.o.")
    page.get_by_label("E-mail *").fill("office@rychla.example.sk")
    page.get_by_label("Phone").fill("02 5010 2222")
    modal.get_by_role("button", name="Save", exact=True).click()
    # Refused only for its contacts: the modal asks for them; nothing is saved yet, no skipping.
    contacts = modal.locator("[data-stage=contacts]")
    expect(contacts).to_be_visible()
    expect(contacts).to_contain_text("Rýchla Firma s.r.o. is not saved yet")
    expect(contacts).to_contain_text("at least one with an e-mail")
    expect(modal.get_by_role("button", name="Later")).to_have_count(0)
    assert desk.run(lambda s: s.query(Customer).count()) == 0
    save = modal.get_by_role("button", name="Save the company and its contacts")
    page.locator("#qc-contacts-0-first_name").fill("Bez")
    save.click()  # a row without a last name is refused on its field
    expect(page.locator("#qc-contacts-0-last_name")).to_have_class("form-control form-control-sm is-invalid")
    page.locator("#qc-contacts-0-last_name").fill("Telefónna")
    save.click()  # valid, but nobody with an e-mail
    expect(contacts.locator("[data-messages]")).to_contain_text("at least one contact with an e-mail")
    modal.get_by_role("button", name="Add another contact").click()
    page.locator("#qc-contacts-1-first_name").fill("Hana")
    page.locator("#qc-contacts-1-last_name").fill("Hlavná")
    page.locator("#qc-contacts-1-email").fill("hana@rychla.example.sk")
    page.locator("#qc-contacts-1-is_main").select_option("1")
    page.locator("#qc-contacts-0-is_main").select_option("")
    page.screenshot(path=artifacts / "quick-create-contacts.png", full_page=True)
    save.click()
    page.wait_for_url("**/details/**")
    expect(page.locator("body")).to_contain_text("Rýchla Firma s.r.o.")

    def saved(session):
        company = session.query(Customer).one()
        return company.display_name, sorted((c.display_name, c.is_main) for c in company.contacts)
    assert desk.run(saved) == ("Rýchla Firma s.r.o.", [("Bez Telefónna", False), ("Hana Hlavná", True)])


def test_back_from_the_contacts_step_and_leaving_it_asks_first(signed_in, desk):
    page = signed_in
    modal = open_from_list(page)
    page.get_by_label("Company or Name *").fill("Späť s.r.o.")
    page.get_by_label("E-mail *").fill("office@spat.example.sk")
    page.get_by_label("E-mail *").press("Enter")
    contacts = modal.locator("[data-stage=contacts]")
    expect(contacts).to_be_visible()
    page.locator("#qc-contacts-0-last_name").fill("Prvá")
    modal.get_by_role("button", name="Back to the company").click()
    expect(page.get_by_label("Company or Name *")).to_be_focused()
    page.get_by_label("Company or Name *").fill("Späť a.s.")
    page.get_by_label("Company or Name *").press("Enter")
    expect(contacts).to_contain_text("Späť a.s. is not saved yet")
    expect(page.locator("#qc-contacts-0-last_name")).to_have_value("Prvá")  # kept
    page.once("dialog", lambda dialog: dialog.dismiss())  # "Leave without saving it?" — no
    page.keyboard.press("Escape")
    expect(contacts).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.keyboard.press("Escape")
    expect(modal).to_be_hidden()
    assert desk.run(lambda s: s.query(Customer).count()) == 0


def test_from_a_new_request_select_an_existing_customer_or_create_one(signed_in, desk, artifacts):
    kovac_id = desk.run(seed_kovac)
    page = signed_in
    page.goto("/admin/requests/new/")
    page.get_by_role("button", name="Add a customer quickly").click()
    modal = page.locator("#quick-create")
    expect(page.get_by_label("Company or Name *")).to_be_focused()
    page.get_by_text("Private person").click()
    page.get_by_label("Company or Name *").fill("Peter Kovac")
    candidates = page.get_by_test_id("quick-candidates")
    expect(candidates).to_contain_text("same name")
    candidates.get_by_role("button", name="Select as the customer").click()
    expect(modal).to_be_hidden()
    expect(page.locator("#s2id_customer")).to_contain_text("Kováč, Peter")
    page.get_by_label("Subject *").fill("Printer jam")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".alert-success")).to_be_visible()
    assert desk.run(lambda s: s.query(Request).one().customer_id) == kovac_id

    page.goto("/admin/requests/new/")
    page.get_by_role("button", name="Add a customer quickly").click()
    page.get_by_text("Private person").click()
    page.get_by_label("Company or Name *").fill("Zuzana Nová")
    page.get_by_label("E-mail *").fill("zuzana@example.sk")
    page.get_by_label("E-mail *").press("Enter")
    expect(modal).to_be_hidden()
    expect(page.locator("#s2id_customer")).to_contain_text("Nová, Zuzana")
    page.screenshot(path=artifacts / "quick-create-request.png", full_page=True)
    assert desk.run(lambda s: s.query(Customer).filter_by(last_name="Nová").count()) == 1
    assert desk.run(lambda s: s.query(Contact).count()) == 0
