"""The seed's journeys for a PRIVATE PERSON, clicked through in Chromium as an operator does them.

Each journey runs on one signed-in page watched by `journey_tools.Guard`: it fails on a console
error, on a 4xx/5xx answer of the desk it did not expect, and on input lost after the server
refused a value. Screenshots of each journey's end go to test-artifacts/journey-person-*.png.
The company journeys are in test_journeys_company.py (the other pytest worker runs them).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from models import Customer, Request
from tests.browser.journey_tools import (
    add_olga,
    add_person,
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


def test_quick_add_a_person(journey, guard, desk, artifacts):
    page = journey
    modal = quick_modal(page)
    modal.get_by_text("Private person").click()
    name = guard.fill(page.get_by_label("Company or Name *"), "Jana Rýchla")
    guard.fill(page.get_by_label("E-mail *"), "jana.rychla@example.sk")
    phone = guard.fill(page.get_by_label("Phone"), "12ab")
    with guard.refused(422, "/quick/create"):
        modal.get_by_role("button", name="Save", exact=True).click()
        expect(phone).to_have_class(INVALID)
    guard.kept(phone)
    phone.fill("0905 123 456")
    name.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Rýchla, Jana")
    expect(page.get_by_test_id("kind-badge")).to_have_text("Person")
    shoot(guard, artifacts, "person-quick-add")
    assert desk.run(lambda s: s.query(Customer).one().email) == "jana.rychla@example.sk"


def test_a_request_with_a_new_person(journey, guard, desk, artifacts):
    page = journey
    page.get_by_role("navigation").get_by_role("link", name="Requests", exact=True).click()
    page.get_by_role("link", name="Create", exact=True).click()
    guard.fill(page.get_by_label("Subject *"), "Laptop does not start")
    guard.fill(page.get_by_label("Description"), "Since this morning.")
    page.get_by_role("button", name="Add a customer quickly").click()
    modal = page.get_by_role("dialog")
    modal.get_by_text("Private person").click()
    page.get_by_label("Company or Name *").fill("Peter Žiadateľ")
    email = page.get_by_label("E-mail *")
    email.fill("not an e-mail")
    with guard.refused(422, "/quick/create"):
        email.press("Enter")
        expect(email).to_have_class(INVALID)
    expect(page.get_by_label("Company or Name *")).to_have_value("Peter Žiadateľ")
    email.fill("peter.ziadatel@example.sk")
    email.press("Enter")
    expect(modal).to_be_hidden()
    expect(page.locator("#s2id_customer")).to_contain_text("Žiadateľ, Peter")
    guard.kept()  # the request's fields typed before the modal opened
    page.get_by_role("button", name="Save", exact=True).click()
    expect(success(page)).to_be_visible()
    shoot(guard, artifacts, "person-request")

    def saved(session):
        request = session.query(Request).one()
        return request.subject, request.customer.display_name
    assert desk.run(saved) == ("Laptop does not start", "Žiadateľ, Peter")


STEP3 = {"POP3 mailbox address": "desk@sprievodca.example.sk", "POP3: host": "pop.sprievodca.example.sk",
         "POP3: port": "995", "POP3: user name": "desk", "Primary SMTP: host": "smtp.sprievodca.example.sk",
         "Primary SMTP: port": "587", "Primary SMTP: user name": "desk"}


def test_the_wizard_left_mid_step_and_resumed_from_the_drafts(journey, guard, desk, artifacts):
    page = journey
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(f"{dialog.type} on {page.url}"), dialog.accept()))
    page.get_by_role("navigation").get_by_role("link", name="Customers", exact=True).click()
    page.get_by_role("button", name="Add with the wizard").click()
    page.wait_for_url("**/wizard/new")
    page.get_by_text("Private person").click()
    guard.fill(page.get_by_label("First name *"), "Jana")
    guard.fill(page.get_by_label("Last name *"), "Sprievodcová")
    guard.fill(page.get_by_label("E-mail", exact=True), "jana.sprievodcova@example.sk")
    phone = guard.fill(page.get_by_label("Phone", exact=True), "12ab")
    with guard.refused(422, "/wizard/"):
        page.get_by_role("button", name="Next").click()
        expect(phone).to_have_class(INVALID)
    guard.kept(phone)
    phone.fill("0905 111 222")
    page.get_by_role("button", name="Next").click()
    page.wait_for_url("**/cmonitor")
    page.get_by_label("C-Monitor access password").fill("agent-pass")
    page.get_by_label("Repeat the password").fill("agent-pass")
    page.get_by_role("button", name="Next").click()
    page.wait_for_url("**/mail")
    guard.forget()
    page.get_by_text("Use the customer's own POP3 mailbox and SMTP servers").click()
    for label, value in STEP3.items():
        guard.fill(page.get_by_label(label, exact=True), value)
    guard.select(page.get_by_label("POP3: security", exact=True), "ssl")
    page.get_by_label("POP3: password", exact=True).fill("pop3-secret")
    expect(page.get_by_test_id("autosave-status")).to_have_text("Kept in the draft")
    # Away mid-step by the navbar, without Next.
    page.get_by_role("navigation").get_by_role("link", name="Requests", exact=True).click()
    page.wait_for_url("**/admin/requests/")
    page.get_by_role("navigation").get_by_role("link", name="Customers", exact=True).click()
    drafts = page.get_by_test_id("drafts")
    expect(drafts).to_contain_text("Sprievodcová")
    drafts.get_by_role("link", name="Resume").click()
    page.get_by_role("link", name="3. POP3 and SMTP").click()
    page.wait_for_url("**/mail")
    expect(page.get_by_label("Use the customer's own POP3 mailbox and SMTP servers")).to_be_checked()
    guard.kept()
    expect(page.get_by_test_id("secret-set-pop3_password")).to_be_visible()
    page.get_by_role("link", name="1. Customer information").click()
    expect(page.get_by_label("Last name *")).to_have_value("Sprievodcová")
    expect(page.get_by_label("Phone", exact=True)).to_have_value("0905 111 222")
    for step in ("cmonitor", "mail", "notifications", "requests", "operators", "summary"):
        page.get_by_role("button", name="Next").click()
        page.wait_for_url(f"**/{step}")
    expect(page.get_by_test_id("summary-customer")).to_contain_text("Sprievodcová")
    expect(page.get_by_test_id("summary-mail")).to_contain_text("pop.sprievodca.example.sk")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sprievodcová, Jana")
    expect(success(page)).to_contain_text("was created")
    shoot(guard, artifacts, "person-wizard")
    # The page said "Kept in the draft" before the person left: leaving must not warn then.
    assert dialogs == [], "the autosave status said 'Kept in the draft' while a change was not kept yet"
    assert desk.run(lambda s: s.query(Customer).one().primary_phone) == "+421905111222"


def test_edit_the_tabs_of_a_person(journey, guard, desk, artifacts):
    desk.run(add_olga)
    desk.run(add_person, "Eva", "Upravená", email="eva.upravena@example.sk")
    page = journey
    open_customer(page, "Upravená, Eva")
    tab(page, "Basic information")
    guard.fill(page.get_by_label("Title"), "Analyst")
    guard.fill(page.get_by_label("Location ID"), "3.14")
    phone = guard.fill(page.get_by_label("Primary phone"), "12ab")
    with guard.refused(422, "/edit/"):
        page.get_by_role("button", name="Save", exact=True).click()
        expect(phone).to_have_class(INVALID)
    guard.kept(phone)
    phone.fill("0905 123 456")
    page.get_by_role("button", name="Save", exact=True).click()
    for changed in ("Saved:", "Title", "Location ID", "Primary phone"):
        expect(success(page)).to_contain_text(changed)
    expect(page.get_by_role("heading", level=1)).to_have_text("Upravená, Eva")  # still on the customer
    expect(page.get_by_label("Title")).to_have_value("Analyst")

    tab(page, "Contacts")
    expect(page.get_by_test_id("person-no-contacts")).to_contain_text("eva.upravena@example.sk")

    tab(page, "C-Monitor")
    page.get_by_label("C-Monitor access password").fill("agent-pass")
    page.get_by_label("Repeat the password").fill("another")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("The two passwords differ.")).to_be_visible()
    page.get_by_label("C-Monitor access password").fill("agent-pass")
    page.get_by_label("Repeat the password").fill("agent-pass")
    page.get_by_role("button", name="Save").click()
    expect(success(page)).to_be_visible()

    tab(page, "Operators")
    page.get_by_text("Olga Operator").click()
    page.get_by_role("button", name="Save").click()
    expect(success(page)).to_contain_text("Responsible operators saved.")
    expect(page.get_by_label(re.compile("^Olga Operator"))).to_be_checked()
    shoot(guard, artifacts, "person-edit-tabs")


def test_change_the_status_of_a_person(journey, guard, desk, artifacts):
    desk.run(add_person, "Stano", "Stavový", email="stano@example.sk")
    page = journey
    open_customer(page, "Stavový, Stano")
    page.get_by_role("button", name="Change Status").click()
    dialog = page.get_by_role("dialog", name="Select Status")
    expect(dialog).to_be_visible()  # opened (its script may still be loading on a busy machine)
    dialog.get_by_label("Status").select_option(label="Inactive")
    dialog.get_by_role("button", name="OK").click()
    expect(success(page)).to_contain_text("Status changed to Inactive.")
    expect(page.get_by_test_id("status-badge")).to_have_text("Inactive")
    page.get_by_role("link", name="All customers").click()
    expect(page.get_by_role("row", name=re.compile("Stavový, Stano"))).to_contain_text("Inactive")
    shoot(guard, artifacts, "person-status")


def test_upload_a_photo_of_a_person(journey, guard, desk, artifacts):
    desk.run(add_person, "Fero", "Fotka", email="fero@example.sk")
    page = journey
    open_customer(page, "Fotka, Fero")
    page.get_by_label("Photo (PNG, JPEG or WebP, up to 5 MB)").set_input_files(
        {"name": "fero.png", "mimeType": "image/png", "buffer": png()})
    page.get_by_role("button", name="Upload").click()
    expect(success(page)).to_contain_text("The photo was saved.")
    header = page.get_by_test_id("customer-header")
    expect(header.get_by_role("img", name="Photo of Fotka, Fero")).to_be_visible()
    shoot(guard, artifacts, "person-photo", widths=(1366, 800, 1920))


def test_portal_access_for_a_person(journey, guard, desk, artifacts):
    desk.run(add_person, "Pavol", "Portálový", email="pavol@example.sk")
    page = journey
    open_customer(page, "Portálový, Pavol")
    tab(page, "Portal access")
    username = guard.fill(page.get_by_label("User name *"), "pavol.portal")
    password = page.get_by_label(re.compile(r"^First password \*"))
    password.fill("x")
    with guard.refused(422, "/portal/"):
        page.get_by_role("button", name="Create portal access").click()
        expect(page.locator(".invalid-feedback")).to_be_visible()
    guard.kept()
    password.fill("first password 1")
    page.get_by_role("button", name="Create portal access").click()
    expect(page.get_by_test_id("portal-account")).to_contain_text("pavol.portal")
    expect(page.get_by_test_id("portal-account")).to_contain_text("must be changed at the next sign-in")
    expect(username).to_have_count(0)
    shoot(guard, artifacts, "person-portal")


def test_history_of_a_person_in_words(journey, guard, desk, artifacts):
    desk.run(add_person, "Hana", "Histórová", email="hana@example.sk")
    page = journey
    open_customer(page, "Histórová, Hana")
    tab(page, "Basic information")
    page.get_by_label("Title").fill("Accountant")
    page.get_by_label("Primary phone").fill("0905 123 456")
    page.get_by_label("Type", exact=True).first.select_option(label="Mobile")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(success(page)).to_be_visible()
    tab(page, "History")
    history = page.get_by_test_id("history")
    expect(history).to_contain_text("Title")
    expect(history).to_contain_text("Accountant")
    expect(history).to_contain_text("+421 905 123 456")
    expect(history).to_contain_text("Mobile")
    for internal in ("primary_phone", "primary_phone_type", "+421905123456", "None", "True"):
        expect(history).not_to_contain_text(internal)
    shoot(guard, artifacts, "person-history")


def test_the_operators_view_of_persons(journey, guard, desk, artifacts):
    olga_id = desk.run(add_olga)

    def seed(session):
        from models import Operator
        olga = session.get(Operator, olga_id)
        mine = add_person(session, "Mária", "Moja", email="maria@example.sk", operators=[olga])
        other = add_person(session, "Cyril", "Cudzí", email="cyril@example.sk")
        return mine, other
    _mine, other_id = desk.run(seed)
    page = journey
    sign_in_as_olga(page)
    page.get_by_role("navigation").get_by_role("link", name="Customers", exact=True).click()
    expect(page.get_by_role("link", name="Moja, Mária")).to_be_visible()
    expect(page.get_by_role("link", name="Cudzí, Cyril")).to_have_count(0)
    page.get_by_role("link", name="Moja, Mária").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Moja, Mária")
    with guard.refused(404, f"id={other_id}"):
        page.goto(f"/admin/customers/overview/?id={other_id}")
        expect(page.get_by_role("link", name="Back to Customer Desk")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("Cudzí")
    shoot(guard, artifacts, "person-operator-view")


CSV = ("First name;Last name;E-mail;Phone\n"
       "Ľubica;Šťastná;lubica@example.sk;0905 123 456\n"
       "Ján;Novák;jan.novak@example.sk;\n"
       "Bez;E-mailu;toto-nie-je-email;\n")


def test_import_persons_from_a_csv(journey, guard, desk, artifacts, import_folder, tmp_path):
    upload = tmp_path / "osoby.csv"
    upload.write_bytes(CSV.encode("utf-8"))
    page = journey
    page.get_by_role("navigation").get_by_role("link", name="Import customers").click()
    page.get_by_label("File (CSV or XLSX)").set_input_files(str(upload))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_test_id("mapping")).to_contain_text("Šťastná")
    page.get_by_role("button", name="Preview").click()
    counts = page.get_by_test_id("import-counts")
    expect(counts.locator("[data-count=created]")).to_contain_text("2")
    expect(counts.locator("[data-count=rejected]")).to_contain_text("1")
    page.get_by_test_id("run-import").click()
    expect(page.get_by_test_id("import-done")).to_be_visible()
    shoot(guard, artifacts, "person-import")
    names = desk.run(lambda s: sorted(c.display_name for c in s.query(Customer)))
    assert names == ["Novák, Ján", "Šťastná, Ľubica"]


def test_merge_two_persons(journey, guard, desk, artifacts):
    from datetime import timedelta

    def seed(session):
        older_id = add_person(session, "Ján", "Dvojitý", email="jan.dvojity@example.sk", title="Accountant")
        older = session.get(Customer, older_id)
        older.created_at = older.created_at - timedelta(days=300)
        newer = add_person(session, "Ján", "Dvojitý", secondary_email="jd@example.sk")
        return older_id, newer
    older_id, newer_id = desk.run(seed)
    page = journey
    page.goto(f"/admin/customers/overview/?id={newer_id}")
    page.get_by_role("link", name="Merge…").click()
    page.get_by_label("Search").fill("dvojity")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Merge with this one").click()
    expect(page.get_by_test_id("merge-survivor")).to_contain_text(f"no. {older_id}")
    page.get_by_role("button", name="Merge", exact=True).click()
    expect(page.get_by_test_id("merge-confirmation")).to_be_visible()
    shoot(guard, artifacts, "person-merge")
    def after(session):
        return session.get(Customer, older_id).secondary_email, session.get(Customer, newer_id).merged_into_id
    assert desk.run(after) == ("jd@example.sk", older_id)
