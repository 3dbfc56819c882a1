"""A directory source in Chromium: Test connection answers in place, a dry run and an import
show their progress bar and report."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from models import Customer, DirectorySource
from services.directory.mapping import DEFAULT_FILTER

pytestmark = pytest.mark.browser


def test_configure_test_and_import_a_directory(signed_in, desk, ldap_server, artifacts):
    for n in range(3):
        ldap_server.add_user(f"ui{n}", given="Ui", sn=f"Person{n}", mail=f"ui{n}@example.com",
                             department="Support")
    page = signed_in
    page.goto("/admin/directory/new/")
    page.get_by_label("Name *").fill("Browser AD")
    page.get_by_label("Server URLs").fill(ldap_server.url)
    page.get_by_label("CA file").fill(ldap_server.ca_file)
    page.get_by_label("Bind DN").fill(ldap_server.service_dn)
    page.get_by_label("Bind password").fill(ldap_server.service_password)
    page.get_by_label("Base DN").fill(ldap_server.base_dn)
    expect(page.get_by_label("Search filter")).to_have_value(DEFAULT_FILTER)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".alert-success")).to_be_visible()
    source_id = desk.run(lambda s: s.scalar(select(DirectorySource.id)))
    page.goto(f"/admin/directory/details/?id={source_id}")
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_test_id("test-result")).to_contain_text("the filter matches 3 entries")
    expect(page.get_by_test_id("test-result")).to_contain_text("Person0, Ui")
    page.get_by_role("button", name="Dry run").click()
    first = page.get_by_test_id("run-1")
    expect(first).to_contain_text("Finished", timeout=15000)
    expect(first).to_contain_text("created 3")
    assert desk.run(lambda s: s.query(Customer).count()) == 0
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_test_id("run-1")).to_contain_text("Import", timeout=15000)
    expect(page.get_by_test_id("run-1")).to_contain_text("Finished", timeout=15000)
    expect(page.get_by_test_id("run-1").locator("[data-field=bar]")).to_contain_text("3 / 3")
    page.screenshot(path=artifacts / "directory-source.png", full_page=True)
    assert desk.run(lambda s: s.query(Customer).count()) == 3
