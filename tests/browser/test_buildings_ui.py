"""Site Name → Building: the Building list offers only the chosen site's buildings."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from models import Building, Site

pytestmark = pytest.mark.browser


def add_branch(session):
    branch = Site(name="Košice branch")
    branch.buildings = [Building(name="Main building")]
    session.add(branch)
    session.commit()


def test_building_list_follows_the_site(signed_in, desk):
    page = signed_in
    desk.run(add_branch)
    page.goto("/admin/customers/new/")
    page.locator("#kind").select_option("person")
    page.locator("#s2id_site").click()
    with page.expect_response("**/customers/buildings/**"):  # the site's buildings replace the list
        page.locator(".select2-drop-active .select2-result-label", has_text="Košice branch").click()
    page.locator("#s2id_building").click()
    options = page.locator(".select2-drop-active .select2-result-label")
    expect(options).to_have_text(["", "Main building (Košice branch)"])  # "" = no building
    page.keyboard.press("Escape")
    page.locator("#s2id_site").click()
    with page.expect_response("**/customers/buildings/**"):
        page.locator(".select2-drop-active .select2-result-label", has_text=desk.site).click()
    page.locator("#s2id_building").click()
    expect(options).to_have_text(["", *(f"{b} ({desk.site})" for b in desk.buildings)])
