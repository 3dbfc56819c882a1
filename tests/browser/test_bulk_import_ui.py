"""Importing customers in Chromium: upload a CSV, see the suggested mapping, preview, import."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from models import Customer

pytestmark = pytest.mark.browser

CSV = ("Názov firmy;IČO;E-mail;Telefón;Meno kontaktu;Priezvisko kontaktu;E-mail kontaktu\n"
       "Žilinská strojáreň s.r.o.;12345678;info@zs.sk;0905 123 456;Ľubica;Šťastná;lubica@zs.sk\n"
       "Košická pekáreň;87654321;pekaren@ke.sk;;Ján;Novák;jan@ke.sk\n"
       "Bez e-mailu;;toto-nie-je-email;;;;\n")


@pytest.fixture
def import_folder(desk, tmp_path, monkeypatch):
    monkeypatch.setitem(desk.app.config, "BULK_IMPORT_DIR", str(tmp_path / "bulk_import"))
    return tmp_path


def test_upload_map_preview_and_import(signed_in, desk, artifacts, import_folder, tmp_path):
    page = signed_in
    upload = tmp_path / "zakaznici.csv"
    upload.write_bytes(CSV.encode("cp1250"))
    page.goto("/admin/customers/import/")
    page.get_by_label("File (CSV or XLSX)").set_input_files(str(upload))
    page.get_by_role("button", name="Upload").click()

    mapping = page.get_by_test_id("mapping")
    expect(mapping).to_contain_text("Žilinská strojáreň s.r.o.")  # Windows-1250 read right
    expect(page.get_by_label("Názov firmy")).to_have_value("company_name")
    expect(page.get_by_label("IČO", exact=True)).to_have_value("registration_number")
    expect(page.get_by_label("Priezvisko kontaktu")).to_have_value("contact_last_name")
    expect(page.get_by_role("checkbox", name="Company ID (IČO)")).to_be_checked()
    page.get_by_role("button", name="Preview").click()

    counts = page.get_by_test_id("import-counts")
    expect(counts.locator("[data-count=created]")).to_contain_text("2")
    expect(counts.locator("[data-count=rejected]")).to_contain_text("1")
    expect(page.get_by_test_id("rows-rejected")).to_contain_text("E-mail")
    page.screenshot(path=artifacts / "bulk-import-preview.png", full_page=True)
    assert desk.run(lambda s: s.query(Customer).count()) == 0  # the preview wrote nothing

    page.get_by_test_id("run-import").click()
    expect(page.get_by_test_id("import-done")).to_be_visible()
    expect(page.get_by_test_id("import-counts").locator("[data-count=created]")).to_contain_text("2")
    expect(page.get_by_test_id("download-rejected")).to_be_visible()
    page.screenshot(path=artifacts / "bulk-import-result.png", full_page=True)
    assert desk.run(lambda s: s.query(Customer).count()) == 2


def test_a_broken_workbook_is_a_message_on_the_upload_field(signed_in, artifacts, import_folder, tmp_path):
    page = signed_in
    broken = tmp_path / "zakaznici.xlsx"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 2000)  # a truncated workbook
    page.goto("/admin/customers/import/")
    page.get_by_label("File (CSV or XLSX)").set_input_files(str(broken))
    page.get_by_role("button", name="Upload").click()
    field = page.get_by_label("File (CSV or XLSX)")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_test_id("import-error")).to_contain_text("The Excel file cannot be read")
    page.screenshot(path=artifacts / "bulk-import-broken-file.png", full_page=True)
