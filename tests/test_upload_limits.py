"""Import files are bounded by what reading them costs, and a broken file is a message.

The hostile files are built here small on disk (a few kB to a few hundred kB) and would unpack to
millions of rows, megabytes of shared strings or thousands of columns (services.upload_limits).
"""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select, update

from models import BulkImport, ImportMapping
from services.bulk_import_files import ImportFileError, read_table
from services.import_mappings import MAX_REMEMBERED, remember_mapping, remembered_mapping
from services.transactions import unit_of_work
from services.upload_limits import MAX_CELL_CHARS, MAX_CELLS, MAX_COLUMNS, MAX_ROWS, MAX_TEXT_CHARS

SHEET = "xl/worksheets/sheet1.xml"
STRINGS = "xl/sharedStrings.xml"
ROW = re.compile(r"<sheetData>.*</sheetData>", re.S)


def workbook(*rows) -> bytes:
    book = Workbook()
    for row in rows or (["Firma", "E-mail"], ["Acme", "a@acme.sk"]):
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def patched(data: bytes, part: str, change) -> bytes:
    """The workbook with one part's XML changed (or added), written as Excel would (deflated)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    names = source.namelist() + ([part] if part not in source.namelist() else [])
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in names:
            text = source.read(name).decode() if name in source.namelist() else ""
            target.writestr(name, change(text) if name == part else text)
    return out.getvalue()


def sheet_data(xml: str, rows: str, dimension: str | None = None) -> str:
    xml = ROW.sub(lambda _: f"<sheetData>{rows}</sheetData>", xml)
    if dimension:
        xml = re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{dimension}"/>', xml)
    return xml


MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def with_strings(items: str, declared: int = 2) -> bytes:
    """A workbook as Excel writes it: its texts in a shared-strings part (openpyxl writes none)."""
    shared = patched(workbook(), STRINGS, lambda _: f'<sst xmlns="{MAIN}" count="{declared}" '
                                                    f'uniqueCount="{declared}">{items}</sst>')
    shared = patched(shared, "[Content_Types].xml", lambda x: x.replace(
        "</Types>", f'<Override PartName="/{STRINGS}" ContentType="{STRINGS_TYPE}"/></Types>'))
    rows = ('<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
            '<row r="2"><c r="A2" t="s"><v>1</v></c></row>')
    return patched(shared, SHEET, lambda x: sheet_data(x, rows, dimension="A1:A2"))


HEADER_ROW = '<row r="1"><c r="A1" t="inlineStr"><is><t>Firma</t></is></c></row>'
DATA_ROW = '<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>Acme</t></is></c></row>'


def refused(data: bytes, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        read_table(data)


def test_a_plain_workbook_is_read():
    table = read_table(workbook())
    assert table.headers == ["Firma", "E-mail"] and table.rows[0].values == {"Firma": "Acme",
                                                                             "E-mail": "a@acme.sk"}


def test_blank_rows_count_against_the_row_limit():
    blank = "".join(f'<row r="{n}"/>' for n in range(3, MAX_ROWS + 3))
    data = patched(workbook(), SHEET, lambda x: sheet_data(x, HEADER_ROW + DATA_ROW.format(n=2) + blank,
                                                         dimension="A1"))
    assert len(data) < 200_000
    refused(data, f"more than {MAX_ROWS:,} rows \\(blank rows included\\)")
    # A CSV of blank lines too.
    refused(b"Firma\nAcme\n" + b"\n" * (MAX_ROWS + 1), "blank rows included")
    # Exactly at the limit, the blank rows are read and skipped.
    ok = "".join(f'<row r="{n}"/>' for n in range(3, MAX_ROWS + 2))
    table = read_table(patched(workbook(), SHEET, lambda x: sheet_data(x, HEADER_ROW + DATA_ROW.format(n=2)
                                                                      + ok)))
    assert [r.values for r in table.rows] == [{"Firma": "Acme"}]


def test_a_row_number_far_down_or_a_huge_dimension_is_refused_before_reading():
    far = patched(workbook(), SHEET, lambda x: sheet_data(x, HEADER_ROW + DATA_ROW.format(n=2_000_000)))
    refused(far, "more than 20,000 rows")
    declared = patched(workbook(), SHEET, lambda x: sheet_data(x, HEADER_ROW, dimension="A1:A2000000"))
    refused(declared, "more than 20,000 rows")
    wide = patched(workbook(), SHEET, lambda x: sheet_data(x, HEADER_ROW, dimension="A1:XFD1"))
    refused(wide, f"more than {MAX_COLUMNS} columns")


def test_columns_are_bounded_in_csv_and_xlsx():
    wide = ";".join(f"c{i}" for i in range(MAX_COLUMNS + 1)).encode() + b"\n1\n"
    refused(wide, f"more than {MAX_COLUMNS} columns")
    # A row far wider is refused before it is split into fields, the header or any other, also when
    # quoted line breaks chain its lines.
    refused(";".join(f"c{i}" for i in range(200_000)).encode() + b"\n1\n", "a row longer than 256 kB")
    refused(b"Firma;E-mail\nAcme;a@b.sk\n" + b";" * 300_000 + b"\n", "a row longer than 256 kB")
    refused(b"Firma;E-mail\n" + b'a;"\n";' * 60_000 + b"\n", "a row longer than 256 kB")
    far = '<row r="1"><c r="A1" t="inlineStr"><is><t>Firma</t></is></c><c r="GT1"><v>1</v></c></row>'
    refused(patched(workbook(), SHEET, lambda x: sheet_data(x, far, dimension="A1")), "more than 200 columns")
    many = "".join(f'<c r="A{n}"/>' for n in range(MAX_COLUMNS + 1))
    refused(patched(workbook(), SHEET, lambda x: sheet_data(x, HEADER_ROW + f'<row r="2">{many}</row>')),
            "more than 200 columns")
    # A long column name means the first row is no header row.
    refused(("x" * 300 + "\nAcme\n").encode(), "longer than 255 characters")


def test_the_sheet_is_read_only_as_far_as_its_values_reach():
    """An empty styled cell far to the right (Excel writes such) neither refuses the file nor makes
    every row 200 cells wide."""
    row = '<row r="1"><c r="A1" t="inlineStr"><is><t>Firma</t></is></c><c r="GS1" s="0"/></row>'
    table = read_table(patched(workbook(), SHEET, lambda x: sheet_data(x, row + DATA_ROW.format(n=2),
                                                                     dimension="A1:B2")))
    assert table.headers == ["Firma"] and table.rows[0].values == {"Firma": "Acme"}


def test_shared_strings_are_bounded_by_size_and_count():
    texts = "<si><t>Firma</t></si><si><t>Acme</t></si>"
    assert read_table(with_strings(texts)).rows[0].values == {"Firma": "Acme"}
    big = with_strings(texts + "<si><t>" + "x" * (30 * 2**20) + "</t></si>")
    assert len(big) < 200_000
    refused(big, "texts unpack to more than 24 MB")
    refused(with_strings(texts, declared=9_000_000), "more than 400,000 different texts")
    many = with_strings(texts + "<si/>" * 400_001)
    assert len(many) < 200_000
    refused(many, "more than 400,000 different texts")


def test_the_unpacked_size_is_bounded():
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(workbook())) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in source.namelist():
            z.writestr(name, source.read(name))
        with z.open("xl/media/padding.bin", "w") as padding:
            for _ in range(70):
                padding.write(bytes(2**20))
    refused(out.getvalue(), "unpacks to more than 64 MB")


@pytest.mark.parametrize("change, what", [
    (lambda x: sheet_data(x, '<row r="1"><c r="A1" t="s"><v>999</v></c></row>'), "refers to a text"),
    (lambda x: x.replace("</sheetData>", "<sheetData>"), "XML is invalid"),
    (lambda x: '<!DOCTYPE x [<!ENTITY a "aaaa">]>' + re.sub(r"^<\?xml[^>]*\?>", "", x), "DTD"),
    (lambda x: sheet_data(x, HEADER_ROW + '<row r="2">' + "<c><is>" * 30 + "</is></c>" * 30 + "</row>"),
     "nested too deep"),
])
def test_a_broken_workbook_is_a_message(change, what):
    refused(patched(workbook(), SHEET, change), f"The Excel file cannot be read: .*{what}")


def test_a_truncated_workbook_is_a_message():
    data = workbook()
    for cut in (len(data) // 3, len(data) // 2, len(data) - 30):
        refused(data[:cut], "The Excel file cannot be read")


def test_a_broken_deflate_stream_is_a_message():
    data = bytearray(workbook())
    start = data.find(b"<sheetData") if b"<sheetData" in data else None
    assert start is None  # the parts are compressed: damage the sheet's bytes in the ZIP
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(SHEET)
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 5
    data[offset:offset + 20] = bytes(20)
    refused(bytes(data), "The Excel file cannot be read")


# -- remembered mappings: in the database, bounded -------------------------------------------

def test_remembered_mappings_are_bounded(session):
    for n in range(MAX_REMEMBERED + 5):
        with unit_of_work(session):
            remember_mapping(session, [f"Firma {n}", "E-mail"],
                             {f"Firma {n}": "company_name", "E-mail": "email"})
    assert session.scalar(select(func.count()).select_from(ImportMapping)) == MAX_REMEMBERED
    assert remembered_mapping(session, ["Firma 0", "E-mail"]) is None  # the least recently used went
    assert remembered_mapping(session, [f"Firma {MAX_REMEMBERED + 4}", "E-mail"])["E-mail"] == "email"
    # Using an old mapping again keeps it.
    with unit_of_work(session):
        remember_mapping(session, ["Firma 5", "E-mail"], {"Firma 5": "company_name"})
    with unit_of_work(session):
        remember_mapping(session, ["Nová", "E-mail"], {"Nová": "company_name"})
    assert remembered_mapping(session, ["Firma 5", "E-mail"]) == {"Firma 5": "company_name", "E-mail": ""}


def test_only_mapped_columns_are_stored(session):
    headers = [f"Stĺpec {i}" for i in range(MAX_COLUMNS)]
    with unit_of_work(session):
        remember_mapping(session, headers, {"Stĺpec 7": "company_name", "Stĺpec 9": "nonsense"})
    stored = session.scalar(select(ImportMapping.mapping))
    assert stored == {"stlpec7": "company_name"}
    assert remembered_mapping(session, headers)["Stĺpec 7"] == "company_name"


def test_a_json_file_of_mappings_is_not_read(app, session, tmp_path):
    legacy = tmp_path / "import_mappings.json"
    legacy.write_text('{"x": {"firma": "company_name"}}')
    app.config["BULK_IMPORT_MAPPINGS"] = str(legacy)
    assert remembered_mapping(session, ["Firma"]) is None


# -- the pages -------------------------------------------------------------------------------

def uploads_kept(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(BulkImport))


def upload(browser, data: bytes, name="zakaznici.xlsx"):
    return browser.submit("/admin/customers/import/", {"file": (io.BytesIO(data), name), "encoding": "auto"},
                          content_type="multipart/form-data")


@pytest.mark.parametrize("data, message", [
    (workbook()[:2000], "The Excel file cannot be read"),
    (patched(workbook(), SHEET, lambda x: sheet_data(x, '<row r="1"><c r="A1" t="s"><v>999</v></c></row>')),
     "The Excel file cannot be read: a cell refers to a text the file does not hold."),
    (";".join(f"c{i}" for i in range(200_000)).encode() + b"\n1\n", "a row longer than 256 kB"),
    (";".join(f"c{i}" for i in range(201)).encode() + b"\n1\n", "more than 200 columns"),
])
def test_the_upload_page_answers_a_hostile_file_with_a_message(operator_client, session, data, message):
    answer = upload(operator_client, data)
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert message in page
    assert re.search(r'is-invalid".*?id="import-file-error"', page, re.S)  # on the upload field
    assert uploads_kept(session) == 0  # nothing kept
    assert session.scalar(select(func.count()).select_from(ImportMapping)) == 0


def test_the_mapping_page_remembers_in_the_database(operator_client, session):
    answer = upload(operator_client, b"Firma;E-mail\nAcme;a@acme.sk\n", name="a.csv")
    mapping_url = answer.headers["Location"]
    page = operator_client.get(mapping_url).get_data(as_text=True)
    assert 'value="company_name" selected' in page
    answer = operator_client.submit(mapping_url, {"map-0": "notes", "map-1": "email", "rule": ["email"],
                                                  "on_match": "update_empty"})
    assert answer.status_code == 302
    assert remembered_mapping(session, ["Firma", "E-mail"]) == {"Firma": "notes", "E-mail": "email"}
    again = upload(operator_client, b"e-mail;FIRMA\nb@acme.sk;Beta\n", name="b.csv")
    page = operator_client.get(again.headers["Location"]).get_data(as_text=True)
    assert re.search(r'name="map-1".*?value="notes" selected', page, re.S)


@pytest.mark.parametrize("text, delimiter", [
    ("Názov firmy;IČO\nŽilinská strojáreň, s.r.o.;123\nAcme, a.s.;456\n", ";"),
    ("Firma,E-mail\n\"Acme; Beta\",a@b.sk\n", ","),
    ("Firma\tE-mail\tPoznámka\nAcme\ta@b.sk\tx, y; z\n", "\t"),
    ("Meno\nĽubica\n", ","),
])
def test_the_delimiter_is_told_from_the_first_rows(text, delimiter):
    """Told by a linear look at the first rows (csv.Sniffer took 29 s on a crafted 5 MB line)."""
    assert read_table(text.encode()).delimiter == delimiter


# -- what one value, all values and each cell may cost (issue 14, item 5) ------------------------

def one_text_in_every_row(text: str, rows: int) -> bytes:
    """A workbook whose data rows all refer to one shared text: small on disk however long the text."""
    data = with_strings(f"<si><t>Firma</t></si><si><t>{text}</t></si>", declared=2)
    body = '<row r="1"><c r="A1" t="s"><v>0</v></c></row>' + "".join(
        f'<row r="{n}"><c r="A{n}" t="s"><v>1</v></c></row>' for n in range(2, rows + 2))
    return patched(data, SHEET, lambda x: sheet_data(x, body, dimension=f"A1:A{rows + 1}"))


def test_a_value_longer_than_any_field_is_refused_with_its_row_and_column():
    """The attacker's 7 kB workbook: one 100 kB text used by 300 rows became a 60 MB state file."""
    data = one_text_in_every_row(("ab " * 33_333).strip(), 300)
    assert len(data) < 10_000
    refused(data, f"Row 2, column “Firma”: the value has 99,998 characters; no field takes more than "
                  f"{MAX_CELL_CHARS:,}")
    refused(("Firma;Poznámka\nAcme;ok\nBeta;" + "x" * (MAX_CELL_CHARS + 1) + "\n").encode(),
            "Row 3, column “Poznámka”")
    # As long as the longest field (notes) takes is read.
    table = read_table(("Firma;Poznámka\nAcme;" + "x" * MAX_CELL_CHARS + "\n").encode())
    assert len(table.rows[0].values["Poznámka"]) == MAX_CELL_CHARS


def test_all_values_together_are_bounded():
    rows = MAX_TEXT_CHARS // MAX_CELL_CHARS + 1
    data = one_text_in_every_row("x" * MAX_CELL_CHARS, rows)
    assert len(data) < 100_000
    refused(data, f"more than {MAX_TEXT_CHARS:,} characters of values")


def rich_cells(rows: int, runs: int, run: str = "<r><t>a</t></r>") -> bytes:
    cell = run * runs
    body = HEADER_ROW + "".join(f'<row r="{n}"><c r="A{n}" t="inlineStr"><is>{cell}</is></c></row>'
                                for n in range(2, rows + 2))
    return patched(workbook(), SHEET, lambda x: sheet_data(x, body, dimension=f"A1:A{rows + 1}"))


def test_a_cell_of_endless_rich_text_is_refused_at_once_and_real_rich_text_is_read():
    """790 runs per cell: the pre-scan streamed 4 million elements (7 s) before refusing it."""
    refused(rich_cells(5_000, 790), "The Excel file cannot be read: the cell in row 2 has more formatting")
    bold = ('<r><rPr><b/><sz val="11"/><color theme="1"/><rFont val="Calibri"/><family val="2"/></rPr>'
            '<t>a</t></r>')
    assert read_table(rich_cells(2, 3, bold)).rows[0].values == {"Firma": "aaa"}


def test_cells_are_bounded_for_a_request():
    """4,999 rows of 200 cells (a million) took 12.5 s to read; the cells of 20,000 rows of 20
    columns are what an import may have."""
    assert MAX_CELLS == MAX_ROWS * 20
    columns = 200
    body = "".join(f'<row r="{n}">' + "<c/>" * columns + "</row>" for n in range(1, MAX_CELLS // columns + 2))
    refused(patched(workbook(), SHEET, lambda x: sheet_data(x, HEADER_ROW + body)),
            f"more than {MAX_CELLS:,} cells")


def stored(session, token: str) -> int:
    """What the upload's state keeps beside the file itself: its preview's report, as JSON."""
    session.expire_all()
    run = session.scalar(select(BulkImport).where(BulkImport.token == token))
    return len(json.dumps(run.preview_report, ensure_ascii=False).encode())


def test_the_attackers_workbook_is_refused_on_the_upload_page(operator_client, app, session):
    answer = upload(operator_client, one_text_in_every_row(("ab " * 33_333).strip(), 300), name="amp.xlsx")
    assert answer.status_code == 400
    assert "Row 2, column “Firma”: the value has 99,998 characters" in answer.get_data(as_text=True)
    assert uploads_kept(session) == 0


def test_rejected_rows_keep_what_can_be_corrected_not_every_copy_of_a_long_text(
        operator_client, app, session):
    """Every row refers to a 10,000-character text (as much as a value may have) mapped to the
    company name (200): what the upload stores grows with the rows, not rows × the text."""
    text, rows = ("ab " * (MAX_CELL_CHARS // 3)).strip(), 300
    answer = upload(operator_client, one_text_in_every_row(text, rows), name="long.xlsx")
    assert answer.status_code == 302
    mapping_url = answer.headers["Location"]
    answer = operator_client.submit(mapping_url, {"map-0": "company_name", "rule": ["email"],
                                                  "on_match": "update_empty"})
    assert answer.status_code == 302
    token = mapping_url.rstrip("/").rsplit("/", 1)[1]
    assert stored(session, token) < rows * 1_500  # was rows × the text (and 60 MB for a 100 kB text)
    rejected = operator_client.get(f"/admin/customers/import/rejected/{token}.csv").get_data()
    assert len(rejected) < rows * 500
    lines = rejected.decode("utf-8-sig").splitlines()
    assert len(lines) == rows + 1
    value, reason = lines[1].split(";")
    assert value == text[:255] + "…"  # the start of the value, to be shortened and uploaded again
    assert reason == f"Firma: At most 200 characters, please ({len(text)} given)."
    # Uploaded again as it is, the row is refused again for its length, not imported cut.
    again = read_table(rejected)
    assert again.rows[0].values["Firma"] == text[:255] + "…"


def test_the_mapping_page_does_not_read_the_file_again(operator_client, app, session):
    answer = upload(operator_client, b"Firma;E-mail\nAcme;a@acme.sk\n", name="a.csv")
    mapping_url = answer.headers["Location"]
    # The stored file no longer reads: the page still shows its columns and first values, kept
    # at upload (a page that parsed the file on every GET would say it is gone).
    with unit_of_work(session):
        session.execute(update(BulkImport).values(data=b"\x00 no longer a table"))
    page = operator_client.get(mapping_url)
    assert page.status_code == 200
    assert "Acme" in page.get_data(as_text=True) and "a@acme.sk" in page.get_data(as_text=True)
    # The preview (a job) reads it, and the mapping page says so when it cannot.
    answer = operator_client.submit(mapping_url, {"map-0": "company_name", "map-1": "email",
                                                  "rule": ["email"], "on_match": "update_empty"})
    assert answer.status_code == 302
    assert "no longer available" in operator_client.get(mapping_url).get_data(as_text=True)
