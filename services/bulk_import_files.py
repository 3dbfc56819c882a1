"""Reading an import file, suggesting and remembering its column mapping, writing rejected rows.

Pure functions over bytes and dicts (no database, no Flask): the file's type is told by its
content, never by its name (an XLSX is a ZIP container; anything else is read as CSV text). A
CSV is decoded as the user chose, or — "auto" — as strict UTF-8 (a BOM is dropped) and else as
Windows-1250, the Slovak/Czech Excel default; its delimiter (`,` `;` or tab) is sniffed. Every
refusal is an ImportFileError with a message meant for the user.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tempfile
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from models.search_index import fold
from services.errors import DomainError

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
ENCODINGS = {"auto": "Detect automatically", "utf-8": "UTF-8", "cp1250": "Windows-1250 (Central European)"}
REASON_COLUMN = "Reason"  # added to the rejected-rows report; ignored when that report comes back

CUSTOMER_FIELDS = {
    "kind": "Kind (company / person)",
    "company_name": "Company name",
    "registration_number": "Company ID (IČO)",
    "vat_id": "VAT ID (DIČ / IČ DPH)",
    "first_name": "First name",
    "middle_name": "Middle name",
    "last_name": "Last name",
    "email": "E-mail",
    "secondary_email": "Secondary e-mail",
    "primary_phone": "Phone",
    "secondary_phone": "Secondary phone",
    "title": "Title",
    "notes": "Notes",
    "location_code": "Location ID",
}
CONTACT_FIELDS = {
    "contact_first_name": "Contact: first name",
    "contact_last_name": "Contact: last name",
    "contact_email": "Contact: e-mail",
    "contact_phone": "Contact: phone",
    "contact_is_main": "Contact: main contact (yes / no)",
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


class ImportFileError(DomainError):
    """The file cannot be read as an import (too big, not CSV/XLSX, undecodable, no header)."""


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
    headers, seen = [], set()
    for index, value in enumerate(raw, start=1):
        name = _text(value) or f"Column {index}"
        base, n = name, 2
        while name in seen:
            name, n = f"{base} ({n})", n + 1
        seen.add(name)
        headers.append(name)
    return headers


def _text(value) -> str:
    """A cell as text: an IČO typed as a number stays "12345678", not "12345678.0"."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _table(headers_raw: Sequence, records: Iterable[tuple[int, Sequence]], **info) -> ImportTable:
    if not any(_text(h) for h in headers_raw):
        raise ImportFileError("The first row must name the columns; this file's first row is empty.")
    headers = _unique_headers(headers_raw)
    table = ImportTable(headers=headers, **info)
    for number, record in records:
        cells = [_text(v) for v in record]
        if not any(cells):
            continue  # blank lines are no customers
        if len(table.rows) >= MAX_ROWS:
            raise ImportFileError(f"The file has more than {MAX_ROWS:,} rows; split it into smaller files.")
        cells += [""] * (len(headers) - len(cells))
        table.rows.append(SourceRow(number, dict(zip(headers, cells, strict=False))))
    return table


def decode(data: bytes, encoding: str = "auto") -> tuple[str, str]:
    """The text of a CSV and the encoding it was read as. "auto": UTF-8 (BOM or not) when the
    bytes are valid UTF-8, else Windows-1250 (which reads almost any bytes, so UTF-8 goes first)."""
    if encoding not in ENCODINGS:
        raise ImportFileError("Choose one of the offered encodings.")
    if b"\x00" in data[:4096]:
        raise ImportFileError("This is neither a CSV nor an XLSX file. Save it from Excel as "
                              "CSV or as an Excel workbook (.xlsx) and upload that.")
    tried = ["utf-8", "cp1250"] if encoding == "auto" else [encoding]
    for name in tried:
        try:
            text = data.decode("utf-8-sig" if name == "utf-8" else name)
        except UnicodeDecodeError:
            continue
        return text, name
    raise ImportFileError(f"The file cannot be read as {ENCODINGS[encoding]} text. Choose another encoding "
                          "or save it from Excel as “CSV UTF-8”.")


def _read_csv(data: bytes, encoding: str) -> ImportTable:
    text, used = decode(data, encoding)
    sample = text[:64 * 1024]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample.strip() else ""
        delimiter = max(",;\t", key=first.count)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise ImportFileError("The file is empty.")
        return _table(header, ((reader.line_num, r) for r in reader), encoding=used, delimiter=delimiter)
    except csv.Error as exc:
        raise ImportFileError(f"The CSV file is broken: {exc}.") from None


def _read_xlsx(data: bytes) -> ImportTable:
    from openpyxl import load_workbook

    try:
        with warnings.catch_warnings():  # a workbook's styles or validations are of no interest here
            warnings.simplefilter("ignore")
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ImportFileError(f"The Excel file cannot be read ({exc.__class__.__name__}). Save it again "
                              "as an Excel workbook (.xlsx) or as CSV.") from None
    try:
        if not book.worksheets:
            raise ImportFileError("The workbook has no sheet.")
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise ImportFileError("The first sheet of the workbook is empty.")
        return _table(header, enumerate(rows, start=2), encoding="xlsx")
    finally:
        book.close()


def read_table(data: bytes, encoding: str = "auto") -> ImportTable:
    """Rows of a CSV or of an XLSX's first sheet, by header. Raises ImportFileError for a file
    over 5 MB or 20,000 rows, of another type, undecodable, or without a header row."""
    if len(data) > MAX_BYTES:
        raise ImportFileError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it into "
                              "smaller files.")
    if not data.strip():
        raise ImportFileError("The file is empty.")
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
    twice = sorted({TARGET_FIELDS[t] for t in targets if targets.count(t) > 1})
    if twice:
        raise ImportFileError(f"Each field may come from one column only: {', '.join(twice)}.")
    if not {"company_name", "last_name", "email", "registration_number"} & set(targets):
        raise ImportFileError("Map at least a company name, a last name, an e-mail or a company ID.")
    return clean


class MappingStore:
    """The mapping last chosen for a set of headers, kept in a JSON file (the instance folder),
    keyed by a hash of the sorted normalised header names; the same export next month maps itself."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @staticmethod
    def key(headers: Iterable[str]) -> str:
        names = sorted(header_key(h) for h in mapped_headers(headers))
        return hashlib.sha256(json.dumps(names).encode()).hexdigest()

    def _load(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def remembered(self, headers: Iterable[str]) -> dict[str, str] | None:
        entry = self._load().get(self.key(headers))
        if not isinstance(entry, dict):
            return None
        by_key = {header_key(h): t for h, t in entry.items() if isinstance(t, str)}
        return {h: by_key.get(header_key(h), "") for h in mapped_headers(headers)}

    def remember(self, headers: Iterable[str], mapping: dict[str, str]) -> None:
        data = self._load()
        data[self.key(headers)] = {h: mapping.get(h, "") for h in mapped_headers(headers)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: two imports at once never leave half a file.
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False, indent=1)
        os.replace(temporary, self.path)


def rejected_csv(headers: Sequence[str], rejected: Iterable[dict]) -> bytes:
    """The rejected rows with their original columns plus "Reason", as UTF-8 with a BOM (so
    Excel shows diacritics), ready to correct and upload again."""
    out = io.StringIO(newline="")
    columns = mapped_headers(headers)
    writer = csv.writer(out, delimiter=";")
    writer.writerow([*columns, REASON_COLUMN])
    for row in rejected:
        values = row.get("values", {})
        writer.writerow([*(values.get(h, "") for h in columns), row.get("reason", "")])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
