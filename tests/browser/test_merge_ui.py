"""Merging two customers in Chromium, choosing a field from each."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from models import Customer
from models.enums import CustomerKind
from services.customers import SaveOptions, create_customer

pytestmark = pytest.mark.browser


def seed(session):
    first = create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.PERSON, first_name="Jana",
                            last_name="Nová", email="jana@example.sk", title="Accountant")
    second = create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.PERSON, first_name="Jana",
                             last_name="Novaková", email="jana.n@example.sk", title="Head of accounting",
                             contacts=[])
    return first.id, second.id


def test_merge_two_customers_choosing_a_field_from_each(signed_in, desk, artifacts):
    first_id, second_id = desk.run(seed)
    page = signed_in
    page.goto(f"/admin/customers/details/?id={first_id}")
    page.get_by_role("link", name="Merge…").click()
    page.get_by_label("Search").fill("novakova")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Merge this one in").click()
    fields = page.get_by_test_id("merge-fields")
    expect(fields).to_contain_text("Head of accounting")
    page.locator("label[for=field_last_name_survivor]").click()  # the name from the first
    page.locator("label[for=field_title_other]").click()  # the title from the second
    page.locator("label[for=field_email_survivor]").click()
    page.screenshot(path=artifacts / "merge.png", full_page=True)
    page.get_by_role("button", name="Merge").click()
    expect(page.get_by_test_id("merge-result")).to_contain_text("Fields taken from the merged record: title")
    expect(page.get_by_role("button", name="Undo the merge")).to_be_visible()

    def survivor(session):
        kept = session.get(Customer, first_id)
        return kept.last_name, kept.title, kept.email, session.get(Customer, second_id).merged_into_id
    assert desk.run(survivor) == ("Nová", "Head of accounting", "jana@example.sk", first_id)
    page.goto(f"/admin/customers/details/?id={second_id}")  # the old link leads to the survivor
    expect(page.locator("body")).to_contain_text("Head of accounting")
    assert f"id={first_id}" in page.url
