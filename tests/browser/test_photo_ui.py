"""Uploading a customer's photo in Chromium: the thumbnail shows on the customer's page, in its
header on every tab, and in the list."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from playwright.sync_api import expect

from models.enums import CustomerKind
from services.customers import SaveOptions, create_customer
from services.transactions import unit_of_work

pytestmark = pytest.mark.browser


def test_upload_a_photo(signed_in, desk, artifacts):
    page = signed_in
    def seed(session):
        with unit_of_work(session):
            return create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.PERSON,
                                   first_name="Foto", last_name="Grafová").id

    customer_id = desk.run(seed)
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), "orange").save(buffer, "JPEG")
    page.goto(f"/admin/customers/overview/?id={customer_id}")
    page.get_by_label("Photo (PNG, JPEG or WebP, up to 5 MB)").set_input_files(
        {"name": "portrait.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()})
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".alert-success")).to_contain_text("The photo was saved.")
    page.wait_for_url(f"**/admin/customers/overview/?id={customer_id}")
    thumbnail = page.get_by_test_id("photo").get_by_alt_text("Photo of Grafová, Foto")
    expect(thumbnail).to_be_visible()
    assert thumbnail.evaluate("img => img.naturalWidth") == 96
    page.goto("/admin/customers/")
    expect(page.locator("td.col-photo img")).to_have_count(1)
    page.screenshot(path=artifacts / "customers-list-photo.png", full_page=True)
    page.goto(f"/admin/customers/edit/?id={customer_id}")  # the form (Basic information tab)
    expect(page.get_by_test_id("tab-photo")).to_be_visible()
    assert page.get_by_test_id("tab-photo").evaluate("img => img.naturalWidth") == 96
