"""In Chromium: a company's contact and a private person each sign in to the customer portal with
the password the desk handed over, are made to choose their own, raise a request, comment on it,
and — once an operator has completed it — accept the completion with a rating. No console error
and no 4xx/5xx answer on the way; screenshots at 800 and 1366 pixels wide."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from models import Operator, Request
from models.enums import CustomerKind, RequestStatus
from services.customers import SaveOptions, create_customer
from services.discussion import Author, change_status
from services.portal import create_portal_account

pytestmark = pytest.mark.browser

FIRST = "first password 1"
OWN = "my own portal password"
WIDTHS = (800, 1366)


def seed_people(session):
    company = create_customer(
        session, None, SaveOptions("SK"), kind=CustomerKind.COMPANY, company_name="Acme Tools s.r.o.",
        contacts=[{"first_name": "Mia", "last_name": "Main", "email": "mia@acme.example.sk", "is_main": True},
                  {"first_name": "Cyril", "last_name": "Contact", "email": "cyril@acme.example.sk"}])
    person = create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.PERSON, first_name="Eva",
                             last_name="Malá", email="eva@example.sk")
    cyril = next(c for c in company.contacts if c.first_name == "Cyril")
    create_portal_account(session, company, None, username="cyril@acme.example.sk", password=FIRST,
                          security_group=None, contact=cyril)
    create_portal_account(session, person, None, username="eva", password=FIRST, security_group=None)


def complete_as_operator(session, subject):
    operator = session.scalar(select(Operator))
    request = session.scalar(select(Request).where(Request.subject == subject))
    change_status(session, request, Author.of_operator(operator), RequestStatus.RESOLVED,
                  comment="We replaced the toner cartridge. Please try again.")


def watch(page) -> list[str]:
    """Every console error and every answer of 400 or more, as they happen."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" else None)
    page.on("response", lambda response: problems.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)
    return problems


def shoot(page, artifacts, name):
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(artifacts / f"portal-{name}-{width}.png"), full_page=True,
                        animations="disabled")
    page.set_viewport_size({"width": 1366, "height": 900})


@pytest.mark.parametrize(("username", "who", "subject"), [
    ("cyril@acme.example.sk", "Cyril Contact", "Printer on the 2nd floor jams"),
    ("eva", "Malá, Eva", "Laptop does not start"),
], ids=["company-contact", "private-person"])
def test_sign_in_change_password_raise_comment_accept_and_rate(desk, browser, base_url, artifacts, username,
                                                               who, subject):
    desk.run(seed_people)
    context = browser.new_context(base_url=base_url, reduced_motion="reduce")
    page = context.new_page()
    problems = watch(page)
    slug = "contact" if "@" in username else "person"

    page.goto("/portal/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shoot(page, artifacts, f"{slug}-sign-in")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(FIRST)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Choose your own password")).to_be_visible()
    expect(page.get_by_test_id("portal-person")).to_contain_text(who)
    page.get_by_label("Current password").fill(FIRST)
    page.get_by_label("New password", exact=True).fill(OWN)
    page.get_by_label("Repeat the new password").fill(OWN)
    shoot(page, artifacts, f"{slug}-password")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your password was changed.")).to_be_visible()

    page.get_by_role("link", name="New request").first.click()
    page.get_by_label("Subject").fill(subject)
    page.get_by_label("What do you need?").fill("It stopped this morning.\nNothing helps.")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_text("was sent to the service desk")).to_be_visible()
    expect(page.get_by_test_id("portal-status")).to_have_text("New")

    page.get_by_label("Your comment").fill("It is urgent: we print invoices today.")
    page.get_by_role("button", name="Add comment").click()
    expect(page.get_by_text("Your comment was added.")).to_be_visible()
    expect(page.get_by_test_id("portal-timeline")).to_contain_text("It is urgent")

    desk.run(complete_as_operator, subject)
    page.reload()
    expect(page.get_by_test_id("portal-status")).to_have_text("Completed")
    expect(page.get_by_test_id("portal-timeline")).to_contain_text("We replaced the toner cartridge.")
    shoot(page, artifacts, f"{slug}-completed")
    page.locator("[data-testid=portal-accept] label.star[title='4 – good']").click()
    page.get_by_label("Remark about the service (optional)").fill("Quick and friendly.")
    page.get_by_test_id("portal-accept").screenshot(path=str(artifacts / f"portal-{slug}-rating.png"),
                                                    animations="disabled")
    page.get_by_role("button", name="Accept the completion").click()
    expect(page.get_by_text("Thank you: the request is accepted.")).to_be_visible()
    expect(page.get_by_test_id("portal-status")).to_have_text("Accepted")
    expect(page.get_by_test_id("portal-rating")).to_contain_text("★★★★☆")
    expect(page.get_by_test_id("portal-rating")).to_contain_text("Quick and friendly.")
    shoot(page, artifacts, f"{slug}-accepted")

    page.get_by_role("link", name="Requests", exact=True).click()
    page.get_by_role("link", name="All").click()
    expect(page.get_by_test_id("portal-requests")).to_contain_text(subject)
    shoot(page, artifacts, f"{slug}-list")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    page.goto("/portal/requests")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    stored = desk.run(lambda s: s.execute(select(Request.status, Request.rating, Request.rating_remark)
                                          .where(Request.subject == subject)).one())
    assert tuple(stored) == (RequestStatus.CLOSED, 4, "Quick and friendly.")
    assert problems == [], problems
    context.close()
