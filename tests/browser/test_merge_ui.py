"""Merging two customers in Chromium as a person does it: starting from the newer duplicate, the
page proposes to keep the older, more complete record, shows readable labels, values and the
photo, takes a field from each, and the confirmation tells two namesakes apart. The page must
not log a console error nor get a 4xx/5xx answer."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from flask import current_app
from PIL import Image
from playwright.sync_api import expect

from models import Customer
from models.enums import CustomerKind
from services.customers import SaveOptions, create_customer
from services.photos import store_photo

pytestmark = pytest.mark.browser


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 120), (40, 110, 180)).save(buffer, "PNG")
    return buffer.getvalue()


def seed(session):
    from pathlib import Path

    older = create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.PERSON, first_name="Ján",
                            last_name="Šťastný", email="jan@example.sk", title="Accountant",
                            primary_phone="0903 123 456")
    older.created_at = older.created_at - timedelta(days=400)
    newer = create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.PERSON, first_name="Ján",
                            last_name="Šťastný", title="Head of accounting", secondary_email="js@example.sk",
                            confirm_duplicate=True)
    session.flush()
    store_photo(session, newer, None, png(), Path(current_app.config["PHOTO_DIR"]))
    return older.id, newer.id


def watch(page) -> list[str]:
    """Console errors and failed answers the page meets (a test fails on any)."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return problems


def test_merge_from_the_newer_duplicate_keeps_the_older_record(signed_in, desk, artifacts):
    older_id, newer_id = desk.run(seed)
    page = signed_in
    problems = watch(page)
    page.goto(f"/admin/customers/overview/?id={newer_id}")  # the newer duplicate's page
    page.get_by_role("link", name="Merge…").click()
    page.get_by_label("Search").fill("stastny")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Merge with this one").click()

    expect(page.get_by_test_id("merge-survivor")).to_contain_text(f"no. {older_id}")  # proposed: older
    expect(page.get_by_test_id("merge-other")).to_contain_text(f"no. {newer_id}")
    fields = page.get_by_test_id("merge-fields")
    expect(fields).to_contain_text("Head of accounting")
    expect(fields).to_contain_text("Secondary e-mail")  # labels, not column names
    expect(fields).not_to_contain_text("secondary_email")
    expect(fields.get_by_role("img", name="Photo of Šťastný, Ján")).to_be_visible()  # not a file name
    expect(page.locator("#field_secondary_email_other")).to_be_checked()  # filled over empty
    expect(page.locator("#field_title_survivor")).to_be_checked()  # both filled: the one that stays
    page.locator("label[for=field_title_other]").click()  # the title from the newer one
    for width in (1366, 800):
        page.set_viewport_size({"width": width, "height": 800})
        page.screenshot(path=artifacts / f"merge-{width}.png", full_page=True, animations="disabled")
        overflow = page.evaluate("document.documentElement.scrollWidth"
                                 " - document.documentElement.clientWidth")
        assert overflow <= 0, f"the merge page scrolls sideways at {width} px"
    page.get_by_role("button", name="Merge", exact=True).click()

    confirmation = page.get_by_test_id("merge-confirmation")
    expect(confirmation).to_contain_text(f"no. {newer_id}")
    expect(confirmation).to_contain_text(f"no. {older_id}")
    expect(page.get_by_test_id("merge-result")).to_contain_text("Title")
    expect(page.get_by_role("button", name="Undo the merge")).to_be_visible()
    page.screenshot(path=artifacts / "merge-done.png", full_page=True)

    def after(session):
        kept = session.get(Customer, older_id)
        return (kept.title, kept.email, kept.secondary_email, kept.photo is not None,
                session.get(Customer, newer_id).merged_into_id)
    assert desk.run(after) == ("Head of accounting", "jan@example.sk", "js@example.sk", True, older_id)
    page.goto(f"/admin/customers/overview/?id={newer_id}")  # the old link leads to the survivor
    assert f"id={older_id}" in page.url
    expect(page.locator("body")).to_contain_text("Head of accounting")
    page.goto(f"/admin/customers/history/?id={older_id}")
    expect(page.locator("body")).to_contain_text("Šťastný")
    assert problems == []
