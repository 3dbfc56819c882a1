"""In Chromium: the profile page, reached from the top bar, changes one's own password; the
session that changed it goes on, another browser's session of the same operator has ended."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

NEW_PASSWORD = "a brand new passphrase"


def test_an_operator_changes_their_password_on_the_profile_page(signed_in, desk, browser, base_url,
                                                                 artifacts):
    page = signed_in
    elsewhere = browser.new_context(base_url=base_url)
    other = elsewhere.new_page()
    sign_in(other, desk.maintainer_email)
    other.wait_for_url("**/admin/")

    page.get_by_role("link", name="Your profile").click()
    page.wait_for_url("**/admin/profile/")
    expect(page.get_by_test_id("profile")).to_contain_text(desk.maintainer_email)
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("This is not your current password.")).to_be_visible()
    expect(page.get_by_label("New password", exact=True)).to_have_value("")  # never sent back

    page.get_by_label("Current password").fill(desk.password)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your password was changed.")).to_be_visible()
    page.screenshot(path=str(artifacts / "profile-password-changed.png"), full_page=True,
                    animations="disabled")

    page.goto("/admin/customers/")
    assert page.url.endswith("/admin/customers/")  # this session goes on
    other.goto("/admin/customers/")
    assert "/login" in other.url  # the other browser's session has ended
    elsewhere.close()
