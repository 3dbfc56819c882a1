"""Reading an import file, suggesting and remembering its column mapping, writing rejected rows.

Pure functions over bytes and dicts (no database, no Flask): the file's type is told by its
content, never by its name (an XLSX is a ZIP container; anything else is read as CSV text). A
CSV is decoded as the user chose, or — "auto" — as strict UTF-8 (a BOM is dropped) and else as
Windows-1250, the Slovak/Czech Excel default; its delimiter (`,` `;` or tab) is sniffed. Every
refusal is an ImportFileError with a message meant for the user.

What a file may cost is bounded (services.upload_limits): its size, its rows (blank ones
included), columns and column names, each value and all values together, and for a workbook its
unpacked size, shared strings, cells and XML, checked before openpyxl reads it. Every cell is
read through services.spreadsheet_cells.restore_cell, so our own exports and rejected-rows files,
whose formula-like cells carry one protective quote, come back as the values they were written from.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import islice
from xml.etree.ElementTree import ParseError

from i18n import _, _l
from models.search_index import fold
from services.spreadsheet_cells import neutralise_cell, restore_cell
from services.upload_limits import (
    MAX_BYTES,
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_HEADER_LENGTH,
    MAX_ROWS,
    MAX_TEXT_CHARS,
    ImportFileError,
    broken,
    broken_by,
    check_workbook,
    count,
    too_many_columns,
    too_many_rows,
)

__all__ = ["MAX_BYTES", "MAX_COLUMNS", "MAX_ROWS", "ImportFileError"]  # re-exported for the doors
ENCODINGS = {"auto": _l("Detect automatically"), "utf-8": "UTF-8",
             "cp1250": _l("Windows-1250 (Central European)")}
SNIFF_CHARS, SNIFF_ROWS = 16 * 1024, 10  # what the delimiter is told from
MAX_ROW_CHARS = 256 * 1024  # characters of one CSV row (its lines, when a quoted value spans several)
REASON_COLUMN = "Reason"  # added to the rejected-rows report; ignored when that report comes back

CUSTOMER_FIELDS = {
    "kind": _l("Kind (company / person)"),
    "company_name": _l("Company name"),
    "registration_number": _l("Company ID (IČO)"),
    "vat_id": _l("VAT ID (DIČ / IČ DPH)"),
    "first_name": _l("First name"),
    "middle_name": _l("Middle name"),
    "last_name": _l("Last name"),
    "email": _l("E-mail"),
    "secondary_email": _l("Secondary e-mail"),
    "primary_phone": _l("Phone"),
    "secondary_phone": _l("Secondary phone"),
    "title": _l("Title"),
    "notes": _l("Notes"),
    "location_code": _l("Location ID"),
}
CONTACT_FIELDS = {
    "contact_first_name": _l("Contact: first name"),
    "contact_last_name": _l("Contact: last name"),
    "contact_email": _l("Contact: e-mail"),
    "contact_phone": _l("Contact: phone"),
    "contact_is_main": _l("Contact: main contact (yes / no)"),
}
TARGET_FIELDS = {**CUSTOMER_FIELDS, **CONTACT_FIELDS}

# Header names as `header_key` folds them (lower case, no diacritics, letters and digits only).
_SYNONYMS = {
    "kind": ["kind", "type", "typ", "druh", "customertype", "typzakaznika"],
    "company_name": ["companyname", "company", "firma", "nazovfirmy", "nazovspolocnosti", "spolocnost",
                     "obchodnemeno", "nazev", "nazevfirmy", "obchodnijmeno", "organization", "organisation",
                     "organizacia", "nazov"],
    "registration_number": ["ico", "registrationnumber", "companyid", "regno", "identifikacnecislo"],
    "vat_id": ["dic", "icdph", "vatid", "vat", "vatnumber", "taxid"],
    "first_name": ["meno", "krstnemeno", "firstname", "givenname", "jmeno", "krestnijmeno"],
    "middle_name": ["middlename", "middle", "druhemeno", "prostrednemeno"],
    "last_name": ["priezvisko", "lastname", "surname", "familyname", "prijmeni"],
    "email": ["email", "mail", "emailovaadresa", "emailaddress", "epost"],
    "secondary_email": ["secondaryemail", "email2", "dalsiemail", "druhyemail"],
    "primary_phone": ["telefon", "phone", "tel", "telefonnecislo", "telcislo", "mobil", "mobile",
                      "phonenumber", "primaryphone", "telefonnicislo"],
    "secondary_phone": ["secondaryphone", "telefon2", "phone2", "dalsitelefon", "druhytelefon"],
    "title": ["title", "titul", "funkcia", "pozicia", "jobtitle", "funkce", "pozice"],
    "notes": ["notes", "note", "poznamka", "poznamky", "comment", "komentar"],
    "location_code": ["locationid", "locationcode", "lokalita", "umiestnenie", "location"],
    "contact_first_name": ["contactfirstname", "kontaktmeno", "menokontaktu", "kontaktnaosobameno",
                           "kontaktjmeno"],
    "contact_last_name": ["contactlastname", "kontaktpriezvisko", "priezviskokontaktu",
                          "kontaktnaosobapriezvisko", "kontaktprijmeni"],
    "contact_email": ["contactemail", "kontaktemail", "emailkontaktu", "kontaktnaosobaemail"],
    "contact_phone": ["contactphone", "kontakttelefon", "telefonkontaktu", "kontaktnaosobatelefon"],
    "contact_is_main": ["maincontact", "contactismain", "hlavnykontakt", "hlavnikontakt"],
}
SYNONYMS = {synonym: target for target, words in _SYNONYMS.items() for synonym in words}


@dataclass
class SourceRow:
    """One data row: its number in the file (the header is row 1) and its values by header."""

    number: int
    values: dict[str, str]


@dataclass
class ImportTable:
    headers: list[str]
    rows: list[SourceRow] = field(default_factory=list)
    encoding: str = ""  # what the CSV was decoded as ("xlsx" for a workbook)
    delimiter: str = ""


def header_key(header: str) -> str:
    """"Názov firmy" → "nazovfirmy": how headers are compared and remembered."""
    return re.sub(r"[^a-z0-9]", "", fold(header))


def _unique_headers(raw: Sequence) -> list[str]:
    if len(raw) > MAX_COLUMNS:
        raise too_many_columns()
    headers, seen = [], set()
    for index, value in enumerate(raw, start=1):
        name = _text(value) or f"Column {index}"  # a header, remembered with the mapping: not translated
        if len(name) > MAX_HEADER_LENGTH:
            raise ImportFileError(_("Column %(index)s of the first row is longer than %(limit)s characters; "
                                    "the first row must name the columns.",
                                    index=index, limit=MAX_HEADER_LENGTH))
        base, n = name, 2
        while name in seen:
            name, n = f"{base} ({n})", n + 1
        seen.add(name)
        headers.append(name)
    return headers


def _text(value) -> str:
    """A cell as text: an IČO typed as a number stays "12345678", not "12345678.0"; the quote our
    exports put before a formula-like value is gone."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return restore_cell(str(value).strip())


def _table(headers_raw: Sequence, records: Iterable[tuple[int, Sequence]], **info) -> ImportTable:
    if not any(_text(h) for h in headers_raw):
        raise ImportFileError(_("The first row must name the columns; this file's first row is empty."))
    headers = _unique_headers(headers_raw)
    table = ImportTable(headers=headers, **info)
    read = text = 0
    for number, record in records:
        read += 1  # every row costs, the blank ones too
        if read > MAX_ROWS:
            raise too_many_rows()
        cells = [_text(v) for v in record[:len(headers)]]
        if not any(cells):
            continue  # blank lines are no customers
        for header, cell in zip(headers, cells, strict=False):
            if len(cell) > MAX_CELL_CHARS:  # one shared text may be used by every row
                raise value_too_long(number, header, len(cell))
            text += len(cell)
        if text > MAX_TEXT_CHARS:
            raise ImportFileError(_("The file holds more than %(limit)s characters of values; split it into "
                                    "smaller files.", limit=count(MAX_TEXT_CHARS)))
        cells += [""] * (len(headers) - len(cells))
        table.rows.append(SourceRow(number, dict(zip(headers, cells, strict=False))))
    return table


def value_too_long(row: int, column: str, length: int) -> ImportFileError:
    return ImportFileError(_("Row %(row)s, column “%(column)s”: the value has %(length)s characters; no "
                             "field takes more than %(limit)s. Shorten it or delete the column, then upload "
                             "the file again.", row=count(row), column=column, length=count(length),
                             limit=count(MAX_CELL_CHARS)))


def decode(data: bytes, encoding: str = "auto") -> tuple[str, str]:
    """The text of a CSV and the encoding it was read as. "auto": UTF-8 (BOM or not) when the
    bytes are valid UTF-8, else Windows-1250 (which reads almost any bytes, so UTF-8 goes first)."""
    if encoding not in ENCODINGS:
        raise ImportFileError(_("Choose one of the offered encodings."))
    if b"\x00" in data[:4096]:
        raise ImportFileError(_("This is neither a CSV nor an XLSX file. Save it from Excel as CSV or as an "
                                "Excel workbook (.xlsx) and upload that."))
    tried = ["utf-8", "cp1250"] if encoding == "auto" else [encoding]
    for name in tried:
        try:
            text = data.decode("utf-8-sig" if name == "utf-8" else name)
        except UnicodeDecodeError:
            continue
        return text, name
    raise ImportFileError(_("The file cannot be read as %(encoding)s text. Choose another encoding or save "
                            "it from Excel as “CSV UTF-8”.", encoding=ENCODINGS[encoding]))


def sniff_delimiter(sample: str) -> str:
    """`,` `;` or tab: the one that splits the first rows into the same number of columns, and
    the most of them. Linear in the sample (csv.Sniffer's regular expressions took 29 s of CPU on
    a crafted 5 MB line)."""
    best, best_score = ",", (-1, -1)
    for delimiter in ",;\t":
        try:
            widths = [len(r) for r in islice(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter),
                                             SNIFF_ROWS) if r]
        except csv.Error:
            continue
        if not widths:
            continue
        score = (sum(w == widths[0] for w in widths) if widths[0] > 1 else 0, widths[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


class _Lines:
    """The lines of a CSV text for csv.reader, refusing a row (its lines since the last row read)
    longer than MAX_ROW_CHARS before the reader splits it: a 5 MB line of delimiters would
    otherwise become a list of millions of fields before its width could be checked."""

    def __init__(self, text: str):
        self.source = io.StringIO(text, newline="")
        self.row_chars = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.source.readline()
        if not line:
            raise StopIteration
        self.row_chars += len(line)
        if self.row_chars > MAX_ROW_CHARS:
            raise ImportFileError(_("The file has a row longer than %(limit)s kB; check that it is a CSV "
                                    "file with one customer per row.", limit=MAX_ROW_CHARS // 1024))
        return line


def _read_csv(data: bytes, encoding: str) -> ImportTable:
    text, used = decode(data, encoding)
    delimiter = sniff_delimiter(text[:SNIFF_CHARS])
    lines = _Lines(text)

    def records():
        for record in reader:
            yield reader.line_num, record
            lines.row_chars = 0

    try:
        reader = csv.reader(lines, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise ImportFileError(_("The file is empty."))
        lines.row_chars = 0
        return _table(header, records(), encoding=used, delimiter=delimiter)
    except csv.Error as exc:
        raise ImportFileError(_("The CSV file is broken: %(error)s.", error=exc)) from None


# What a broken workbook raises inside openpyxl: a bad ZIP or deflate stream, a missing part
# (KeyError), a shared-string reference past the table (IndexError), invalid XML or values.
BROKEN_WORKBOOK = (zipfile.BadZipFile, zlib.error, EOFError, KeyError, IndexError, ValueError, TypeError,
                   AttributeError, ParseError, OSError, NotImplementedError, RuntimeError)


def _read_xlsx(data: bytes) -> ImportTable:
    from openpyxl import load_workbook

    extents = check_workbook(data)  # the limits, before openpyxl parses anything
    try:
        with warnings.catch_warnings():  # a workbook's styles or validations are of no interest here
            warnings.simplefilter("ignore")
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except BROKEN_WORKBOOK as exc:
        raise broken_by(exc) from None
    try:
        if not book.worksheets:
            raise ImportFileError(_("The workbook has no sheet."))
        sheet = book.worksheets[0]
        extent = extents.get(getattr(sheet, "_worksheet_path", ""))
        if extent is None:
            raise broken(_("its first sheet is not a worksheet"))
        first_row, first_column = max(1, sheet.min_row or 1), max(1, sheet.min_column or 1)
        if extent.rows < first_row or extent.columns < first_column:
            raise ImportFileError(_("The first sheet of the workbook is empty."))
        # Exactly as far as the cells with values reach (checked above): openpyxl would otherwise
        # pad every row to the sheet's declared width and fill every missing row up to its height.
        rows = sheet.iter_rows(min_row=first_row, max_row=extent.rows, min_col=first_column,
                               max_col=extent.columns, values_only=True)
        header = next(rows, None)
        if header is None:
            raise ImportFileError(_("The first sheet of the workbook is empty."))
        return _table(header, enumerate(rows, start=first_row + 1), encoding="xlsx")
    except BROKEN_WORKBOOK as exc:
        raise broken_by(exc) from None
    finally:
        book.close()


def read_table(data: bytes, encoding: str = "auto") -> ImportTable:
    """Rows of a CSV or of an XLSX's first sheet, by header. Raises ImportFileError for a file
    over 5 MB, 20,000 rows (blank ones included) or 200 columns, a workbook that would cost more
    to read than services.upload_limits allows, a file of another type, undecodable or broken,
    or without a header row."""
    if len(data) > MAX_BYTES:
        raise ImportFileError(_("The file is larger than %(limit)s MB; split it into smaller files.",
                                limit=MAX_BYTES // (1024 * 1024)))
    if not data.strip():
        raise ImportFileError(_("The file is empty."))
    if data[:4] == b"PK\x03\x04":
        return _read_xlsx(data)
    return _read_csv(data, encoding)


def mapped_headers(headers: Iterable[str]) -> list[str]:
    """The headers a mapping is about: the Reason column of a rejected-rows report is not data."""
    return [h for h in headers if header_key(h) != header_key(REASON_COLUMN)]


def suggest_mapping(headers: Iterable[str], remembered: dict[str, str] | None = None) -> dict[str, str]:
    """Header → target field ("" = not imported): the mapping remembered for these headers,
    else the synonyms; each target is suggested for one column at most."""
    if remembered:
        return {h: remembered.get(h, "") if remembered.get(h, "") in TARGET_FIELDS else ""
                for h in mapped_headers(headers)}
    mapping, taken = {}, set()
    for header in mapped_headers(headers):
        target = SYNONYMS.get(header_key(header), "")
        if target in taken:
            target = ""
        taken.add(target)
        mapping[header] = target
    return mapping


def check_mapping(mapping: dict[str, str]) -> dict[str, str]:
    """The mapping without unknown targets; raises ImportFileError when a target is chosen for
    two columns or nothing would identify a customer."""
    clean = {h: t for h, t in mapping.items() if t in TARGET_FIELDS and header_key(h) != "reason"}
    targets = list(clean.values())
    twice = sorted({str(TARGET_FIELDS[t]) for t in targets if targets.count(t) > 1})
    if twice:
        raise ImportFileError(_("Each field may come from one column only: %(fields)s.",
                                fields=", ".join(twice)))
    if not {"company_name", "last_name", "email", "registration_number"} & set(targets):
        raise ImportFileError(_("Map at least a company name, a last name, an e-mail or a company ID."))
    return clean


def rejected_csv(headers: Sequence[str], rejected: Iterable[dict]) -> bytes:
    """The rejected rows with their original columns plus "Reason", as UTF-8 with a BOM (so
    Excel shows diacritics), ready to correct and upload again; a formula-like cell gets the
    protective quote of services.spreadsheet_cells (the importer takes it off again)."""
    out = io.StringIO(newline="")
    columns = mapped_headers(headers)
    writer = csv.writer(out, delimiter=";")
    writer.writerow([neutralise_cell(c) for c in (*columns, REASON_COLUMN)])
    for row in rejected:
        values = row.get("values", {})
        writer.writerow([neutralise_cell(c) for c in (*(values.get(h, "") for h in columns),
                                                      row.get("reason", ""))])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
