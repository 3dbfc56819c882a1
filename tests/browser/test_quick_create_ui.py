"""The quick form in Chromium: from the Customers list and beside a new request's Customer field."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from models import Contact, Customer, CustomerStatus, Request
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
    page.wait_for_url(re.compile(r"/admin/customers/(details|overview)/\?id=\d+"))  # the customer's page
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


# The live list as a user sees it: a search from the first word, any kind, with why each matched.

RED = "rgb(220, 53, 69)"  # Bootstrap 4's danger colour


def seed_registry(session):
    """A few customers of both kinds with contacts; Petra Kováčová is inactive."""
    options = SaveOptions("SK")

    def person(first, last, email, middle=None, phone=None):
        return create_customer(session, None, options, kind=CustomerKind.PERSON, first_name=first,
                               middle_name=middle, last_name=last, email=email, primary_phone=phone,
                               confirm_duplicate=True)

    def company(name, *contacts):
        return create_customer(session, None, options, kind=CustomerKind.COMPANY, company_name=name,
                               confirm_duplicate=True,
                               contacts=[{"first_name": f, "last_name": la, "email": e, "is_main": i == 0}
                                         for i, (f, la, e) in enumerate(contacts)])

    person("Peter", "Kováč", "peter.kovac@example.sk", middle="J.", phone="0903 123 456")
    petra = person("Petra", "Kováčová", "petra.kovacova@example.sk")
    petra.status = session.query(CustomerStatus).filter_by(is_active=False).first()
    person("Martin", "Šťastný", "martin.stastny@example.sk")
    company("Tatra Logistics a.s.", ("Jana", "Horváthová", "jana.horvathova@tatra-logistics.example.sk"),
            ("Marek", "Šimko", "marek.simko@tatra-logistics.example.sk"))
    company("Café Kováč",
            ("Peter", "Kováč", "peter.kovac.kaviaren.bratislava.stare.mesto@cafe-kovac.example.sk"))
    company("Slovenská sporiteľňa, a.s. — pobočka Bratislava, Námestie Slobody",
            ("Ľudmila", "Kováčová-Hrdličková", "ludmila.kovacova-hrdlickova@slsp.example.sk"))


def live_list(page):
    return page.get_by_test_id("quick-candidates")


def item(page, label):
    """The list item of the record labelled `label` (its name in bold)."""
    return live_list(page).locator("li").filter(has=page.locator("strong", has_text=label))


def test_one_word_in_company_mode_lists_the_company_with_its_kind_and_why(signed_in, desk):
    desk.run(seed_registry)
    page = signed_in
    open_from_list(page)
    expect(page.get_by_label("Company", exact=True)).to_be_checked()  # the default mode
    page.get_by_label("Company or Name *").press_sequentially("Tatra")
    tatra = item(page, "Tatra Logistics a.s.")
    expect(tatra).to_be_visible()
    expect(tatra.locator("[data-kind]")).to_have_text("Company")
    expect(tatra.locator("[data-reasons]")).to_contain_text("name starts with what you typed")
    expect(page.locator("[data-search-status]")).to_contain_text("Is it one of these?")
    # Its contacts by their own names, with whose contacts they are.
    page.get_by_label("Company or Name *").fill("jana horv")
    expect(item(page, "Jana Horváthová").locator("[data-kind]")).to_have_text(
        "Main contact of Tatra Logistics a.s.")


def test_a_person_is_listed_while_still_in_company_mode(signed_in, desk):
    desk.run(seed_registry)
    page = signed_in
    open_from_list(page)
    page.get_by_label("Company or Name *").press_sequentially("Kovac")
    kovac = item(page, "Kováč, Peter J.")
    expect(kovac).to_be_visible()
    expect(kovac.locator("[data-kind]")).to_have_text("Private person")
    expect(page.get_by_label("Company", exact=True)).to_be_checked()
    # The inactive namesake says so, so the user reactivates instead of re-creating.
    expect(item(page, "Kováčová, Petra").locator("[data-status]")).to_contain_text("Inactive")
    expect(item(page, "Peter Kováč").locator("[data-kind]")).to_have_text("Main contact of Café Kováč")
    # Diacritics typed or not, the person is found.
    page.get_by_label("Company or Name *").fill("Šťastný")
    expect(item(page, "Šťastný, Martin")).to_be_visible()
    page.get_by_label("Company or Name *").fill("stastny")
    expect(item(page, "Šťastný, Martin")).to_be_visible()
    page.get_by_label("Company or Name *").fill("Zxqwv")
    expect(page.locator("[data-search-status]")).to_have_text("No existing customer or contact matches.")
    expect(live_list(page).locator("li")).to_have_count(0)


def test_a_typed_email_of_a_person_is_a_strong_match_in_red(signed_in, desk, artifacts):
    desk.run(seed_registry)
    page = signed_in
    modal = open_from_list(page)
    page.get_by_label("Company or Name *").press_sequentially("Kov")
    expect(item(page, "Kováč, Peter J.")).to_be_visible()
    page.get_by_label("E-mail *").fill("Peter.Kovac@example.sk")
    strong = item(page, "Kováč, Peter J.")
    expect(strong).to_have_attribute("data-candidate", "strong")
    reasons = strong.locator("[data-reasons]")
    expect(reasons).to_contain_text("Strong match: same e-mail")
    expect(reasons).to_have_css("color", RED)
    expect(live_list(page).locator("li").first).to_have_attribute("data-candidate", "strong")  # best first
    weak = item(page, "Kováčová, Petra")
    expect(weak).to_have_attribute("data-candidate", "similar")
    assert weak.locator("[data-reasons]").evaluate("e => getComputedStyle(e).color") != RED
    page.screenshot(path=artifacts / "quick-live-list.png", animations="disabled")
    # Nothing in the list sticks out of it: long names, e-mails and kinds wrap.
    box = live_list(page).bounding_box()
    for element in live_list(page).locator("li *").all():
        inner = element.bounding_box()
        if inner:
            assert inner["x"] + inner["width"] <= box["x"] + box["width"] + 1, element.text_content()
    # Saving anyway is refused with the same match (409), and the confirm box appears.
    modal.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_label("Create anyway: it is not one of the matches")).to_be_visible()
    expect(item(page, "Kováč, Peter J.")).to_have_attribute("data-candidate", "strong")


def test_a_full_list_says_there_may_be_more(signed_in, desk):
    def many_janas(session):
        for n, last in enumerate(["Nová", "Malá", "Veľká", "Krátka", "Dlhá", "Biela", "Čierna", "Zelená",
                                  "Modrá", "Sivá", "Hnedá", "Ružová"]):
            create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.PERSON, first_name="Jana",
                            last_name=last, email=f"jana{n}@example.sk")
    desk.run(many_janas)
    page = signed_in
    open_from_list(page)
    page.get_by_label("Company or Name *").press_sequentially("Jana")
    expect(live_list(page).locator("li")).to_have_count(10)
    expect(page.locator("[data-search-status]")).to_contain_text("there may be more: keep typing")
    page.get_by_label("Company or Name *").press_sequentially(" Ruž")
    expect(live_list(page).locator("li")).to_have_count(1)
    expect(item(page, "Ružová, Jana")).to_be_visible()
    expect(page.locator("[data-search-status]")).to_contain_text("Is it one of these?")


def test_a_late_answer_to_an_older_search_does_not_overwrite_the_list(signed_in, desk):
    desk.run(seed_registry)
    page = signed_in
    open_from_list(page)
    held = []

    def hold_the_first(route):
        if "name=Ta&" in route.request.url and not held:
            held.append(route)  # answered below, after the newer search
        else:
            route.continue_()

    page.route("**/quick/candidates?*", hold_the_first)
    name = page.get_by_label("Company or Name *")
    with page.expect_request(lambda r: "name=Ta&" in r.url):
        name.fill("Ta")
    name.fill("Tatra Logistics")
    expect(item(page, "Tatra Logistics a.s.")).to_be_visible()
    answers = live_list(page).get_attribute("data-answers")
    held[0].fulfill(json={"limit": 10, "candidates": [{
        "record": "customer", "id": 999, "customer_id": 999, "reasons": ["same name"], "strong": False,
        "score": 1.0, "visible": True, "label": "Stale Answer", "customer_label": "Stale Answer",
        "kind": "Company", "email": "", "phone": "", "status": "", "inactive": False, "ask": ""}]})
    expect(live_list(page)).to_have_attribute("data-answers", str(int(answers) + 1))
    expect(item(page, "Tatra Logistics a.s.")).to_be_visible()
    expect(live_list(page)).not_to_contain_text("Stale Answer")


def test_an_unreachable_server_is_said_not_hidden(signed_in, desk):
    page = signed_in
    open_from_list(page)
    page.route("**/quick/candidates?*", lambda route: route.abort())
    page.get_by_label("Company or Name *").fill("Tatra")
    expect(page.locator("[data-search-status]")).to_contain_text("The search is not available right now")


# Issue 18: all errors at once, a question before leaving a company without contacts, Reactivate,
# and a modal that fits 800 px. Any console error or 4xx/5xx answer (other than the refusals the
# test provokes: 409 / 422 of the create door) fails these tests.

def watch(page) -> list[str]:
    problems: list[str] = []
    # Chromium logs every 4xx as a console error too; the responses are judged below instead.
    page.on("console", lambda m: problems.append(f"console: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def answered(response):
        provoked = "/quick/create" in response.url and response.status in (409, 422)
        if response.status >= 400 and not provoked:
            problems.append(f"{response.status} {response.url}")
    page.on("response", answered)
    return problems


def invalid_fields(modal):
    return sorted(modal.locator(".is-invalid").evaluate_all("els => els.map(e => e.name)"))


def test_every_error_is_shown_at_once_on_its_field(signed_in, desk, artifacts):
    page = signed_in
    problems = watch(page)
    modal = open_from_list(page)
    page.get_by_label("E-mail *").fill("office@")
    page.get_by_label("Phone").fill("12")
    modal.get_by_role("button", name="Save", exact=True).click()
    expect(modal.locator("#quick-create-form .invalid-feedback")).to_have_count(3)
    assert invalid_fields(modal) == ["email", "name", "phone"]
    expect(page.get_by_label("Company or Name *")).to_be_focused()
    expect(page.get_by_label("Phone")).to_have_value("12")  # what was typed stays
    page.set_viewport_size({"width": 1366, "height": 800})
    page.screenshot(path=artifacts / "quick-create-errors-1366.png", animations="disabled")
    page.set_viewport_size({"width": 800, "height": 800})
    page.screenshot(path=artifacts / "quick-create-errors-800.png", animations="disabled")
    # Put right, the company goes on to its contacts; their rows are checked all at once too.
    page.get_by_label("Company or Name *").fill("Naraz s.r.o.")
    page.get_by_label("E-mail *").fill("office@naraz.example.sk")
    page.get_by_label("Phone").fill("")
    modal.get_by_role("button", name="Save", exact=True).click()
    contacts = modal.locator("[data-stage=contacts]")
    expect(contacts).to_be_visible()
    modal.get_by_role("button", name="Add another contact").click()
    page.locator("#qc-contacts-0-first_name").fill("Bez")
    page.locator("#qc-contacts-1-last_name").fill("Druhá")
    page.locator("#qc-contacts-1-email").fill("druha@")
    modal.get_by_role("button", name="Save the company and its contacts").click()
    expect(contacts.locator(".invalid-feedback")).to_have_count(2)
    assert invalid_fields(contacts) == ["contacts-0-last_name", "contacts-1-email"]
    page.screenshot(path=artifacts / "quick-create-contacts-800.png", animations="disabled")
    # At 800 px the modal uses the window's width: nothing sticks out, nothing scrolls sideways.
    box = modal.locator(".modal-dialog").bounding_box()
    assert box["width"] > 700 and box["x"] >= 0 and box["x"] + box["width"] <= 800
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    for field in contacts.locator("input, select").all():
        inner = field.bounding_box()
        assert inner["width"] >= 100 and inner["x"] + inner["width"] <= box["x"] + box["width"]
    assert desk.run(lambda s: s.query(Customer).count()) == 0
    assert problems == []


def test_leaving_a_company_without_contacts_asks_first(signed_in, desk):
    page = signed_in
    problems = watch(page)
    modal = open_from_list(page)
    page.get_by_label("Company or Name *").fill("Odchod s.r.o.")
    page.get_by_label("E-mail *").fill("office@odchod.example.sk")
    page.get_by_label("E-mail *").press("Enter")
    contacts = modal.locator("[data-stage=contacts]")
    expect(contacts).to_be_visible()
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.keyboard.press("Escape")  # at the contacts step
    expect(contacts).to_be_visible()
    assert asked and asked[0].startswith("This company has no contacts yet — leave anyway?")
    # Back at the company the contacts are still unsaved: the close button asks as well.
    modal.get_by_role("button", name="Back to the company").click()
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    modal.get_by_role("button", name="Close").click()
    expect(page.get_by_label("Company or Name *")).to_be_visible()
    assert len(asked) == 2
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.keyboard.press("Escape")
    expect(modal).to_be_hidden()
    assert len(asked) == 3
    # A fresh opening starts over: leaving before any contacts step asks nothing.
    open_from_list(page)
    page.keyboard.press("Escape")
    expect(modal).to_be_hidden()
    assert len(asked) == 3
    assert desk.run(lambda s: s.query(Customer).count()) == 0
    assert problems == []


def petra_is_active(session):
    return session.query(Customer).filter_by(last_name="Kováčová").one().status.is_active


def test_an_inactive_match_is_reactivated_and_used(signed_in, desk, artifacts):
    desk.run(seed_registry)
    page = signed_in
    problems = watch(page)
    page.goto("/admin/requests/new/")
    page.get_by_role("button", name="Add a customer quickly").click()
    modal = page.locator("#quick-create")
    page.get_by_text("Private person").click()
    page.get_by_label("Company or Name *").press_sequentially("Petra Kováčová")
    petra = item(page, "Kováčová, Petra")
    expect(petra.locator("[data-status]")).to_contain_text("Inactive")
    page.set_viewport_size({"width": 800, "height": 800})
    page.screenshot(path=artifacts / "quick-create-reactivate-800.png", animations="disabled")
    page.set_viewport_size({"width": 1366, "height": 800})
    page.screenshot(path=artifacts / "quick-create-reactivate-1366.png", animations="disabled")
    assert not desk.run(petra_is_active)
    petra.get_by_role("button", name="Reactivate").click()
    expect(modal).to_be_hidden()
    expect(page.locator("#s2id_customer")).to_contain_text("Kováčová, Petra")
    assert desk.run(petra_is_active)
    assert problems == []


def test_reactivate_is_offered_only_to_whoever_may_edit(page, desk):
    from models import GlobalSettings, Team
    from models.enums import OperatorRole
    from services.operators import create_operator
    from tests.browser.conftest import sign_in

    def setup(session):
        seed_registry(session)
        owner = create_operator(session, email="owner@example.com", password=desk.password, first_name="Oto",
                                last_name="Owner", role=OperatorRole.OPERATOR)
        viewer = create_operator(session, email="vera@example.com", password=desk.password, first_name="Vera",
                                 last_name="Viewer", role=OperatorRole.OPERATOR)
        team = Team(name="Desk")
        owner.teams, viewer.teams = [team], [team]
        petra = session.query(Customer).filter_by(last_name="Kováčová").one()
        petra.operators = [owner]
        session.get(GlobalSettings, 1).view_by_team_members = True
    desk.run(setup)
    sign_in(page, "vera@example.com")
    page.wait_for_url("**/admin/")
    open_from_list(page)
    page.get_by_label("Company or Name *").press_sequentially("Petra Kováčová")
    petra = item(page, "Kováčová, Petra")
    expect(petra.locator("[data-status]")).to_contain_text("Inactive")
    expect(petra.get_by_role("button", name="Reactivate")).to_have_count(0)
