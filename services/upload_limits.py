"""What an uploaded import file may cost, checked before and while it is read.

A file is bounded by what reading it costs, not only by its size on the wire: a 0.3 MB XLSX can
unpack to a million blank rows or a hundred megabytes of shared strings. So, before openpyxl
sees a workbook, `check_workbook` looks at the ZIP's directory (number of parts, the declared
unpacked sizes — Python's zipfile never unpacks more than a part declares) and then streams every
XML part through expat without building a tree: no DTD (so no entity tricks), a bounded nesting
depth and number of elements, the shared-strings count (its declared `uniqueCount` first, then
the real one), and in each worksheet its declared dimension, the rows (blank ones included, and
the row numbers they claim), the cells per row and their columns, the elements of each cell
(rich text) and the cells in all. It stops
at the first bound crossed with a message that says which, and returns the extent of each sheet
so openpyxl reads exactly that much. A broken ZIP or XML is a message too.

CSV files are bounded by the same row and column limits (services.bulk_import_files).
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from xml.parsers import expat

from flask import has_app_context

from i18n import _, number
from services.errors import DomainError

MAX_BYTES = 5 * 1024 * 1024  # the upload itself
MAX_ROWS = 20_000  # data rows, blank ones included
MAX_COLUMNS = 200
MAX_HEADER_LENGTH = 255  # characters of one column name
# Cells of a worksheet, empty styled ones included: MAX_ROWS rows of 20 columns. The import maps
# at most 19 fields, so a customer list needs no more; reading 400,000 cells already costs about
# 5 s of CPU (1,000,000 cost 12.5 s), and no hostile file may cost more than the largest real one.
MAX_CELLS = 400_000
MAX_CELL_CHARS = 10_000  # one value: the longest field (notes; 10,000 in the API too), the rest <= 254
MAX_TEXT_CHARS = 8_000_000  # all values of the table read: 400,000 cells of 20 characters
MAX_UNPACKED_BYTES = 64 * 1024 * 1024  # all parts of a workbook, unpacked
MAX_PART_BYTES = 2 * 1024 * 1024  # each part other than worksheets and shared strings, unpacked
MAX_SHARED_STRINGS = 400_000
MAX_SHARED_STRINGS_BYTES = 24 * 1024 * 1024
MAX_PARTS = 500
MAX_DEPTH = 24
MAX_OTHER_ELEMENTS = 100_000  # elements of a worksheet outside its rows (merged cells, links…)
MAX_ELEMENTS_PER_ROW = MAX_COLUMNS * 12  # a cell with rich text has a few elements
# One cell: <c><v> or <c><is><t>, or rich text of a few formatted runs (<r><rPr>… 7 formats…<t>).
MAX_ELEMENTS_PER_CELL = 40
# XML elements in all parts, proportional to the cells: a cell of text is <c><v> in the sheet and
# <si><t> in the shared strings (4), plus the rows and what a workbook holds besides (styles,
# relations). Streaming an element through expat costs about 1.5 µs, so a file that exhausts it
# costs ~2.5 s — less than reading the largest file that is allowed (the old 4,000,000 cost 6-7 s).
MAX_ELEMENTS = 4 * MAX_CELLS + 2 * MAX_ROWS + 2 * MAX_OTHER_ELEMENTS
CHUNK = 64 * 1024



class ImportFileError(DomainError):
    """The file cannot be read as an import (too big, too costly, not CSV/XLSX, broken, no header)."""


def count(value: int) -> str:
    """A number in a message, grouped as the reader's language writes it (20,000 / 20 000)."""
    return number(value) if has_app_context() else f"{value:,}"


def too_many_rows() -> ImportFileError:
    return ImportFileError(_("The file has more than %(limit)s rows (blank rows included); split it into "
                             "smaller files.", limit=count(MAX_ROWS)))


def too_many_columns() -> ImportFileError:
    return ImportFileError(_("The file has more than %(limit)s columns; keep only the columns to import.",
                             limit=count(MAX_COLUMNS)))


def broken(what: str) -> ImportFileError:
    return ImportFileError(_("The Excel file cannot be read: %(what)s. Save it again as an Excel workbook "
                             "(.xlsx) or as CSV.", what=what))


def broken_by(exc: BaseException) -> ImportFileError:
    """What a reader's exception means to the user (never the exception's own text)."""
    if isinstance(exc, IndexError):
        return broken(_("a cell refers to a text the file does not hold"))
    if isinstance(exc, (SyntaxError, expat.ExpatError)):  # ElementTree's ParseError is a SyntaxError
        return broken(_("its XML is invalid"))
    if isinstance(exc, (KeyError, AttributeError, TypeError, ValueError)):
        return broken(_("a part of the workbook is missing or not what Excel writes"))
    return broken(_("it is damaged or incomplete"))


@dataclass
class SheetExtent:
    """How far a worksheet's cells reach: the last row number and the last column with a value."""

    rows: int = 0
    columns: int = 0


_CELL_REF = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d{1,7})$")


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - 64
    return number


def _reference(ref: str | None) -> tuple[int, int] | None:
    """"AB12" → (row 12, column 28); None when absent or not a cell reference."""
    match = _CELL_REF.match(ref or "")
    return (int(match.group(2)), _column_number(match.group(1))) if match else None


class _Scan:
    """expat callbacks over one part, counting against the limits (raise ImportFileError)."""

    def __init__(self, budget: list[int]):
        self.budget = budget  # elements left for the whole workbook (shared by the parts)
        self.depth = 0
        self.root = ""
        self.in_data = False  # inside <sheetData>
        self.row_elements = 0
        self.other_elements = 0
        self.rows = 0
        self.row_number = 0
        self.cells = 0
        self.row_cells = 0
        self.column = 0
        self.cell_column = 0
        self.cell_has_value = False
        self.cell_elements = 0
        self.strings = 0
        self.extent = SheetExtent()

    def doctype(self, *args) -> None:
        raise broken(_("it declares a DTD"))

    def start(self, name: str, attrs: dict) -> None:
        local = name.rpartition(" ")[2]
        self.depth += 1
        self.budget[0] -= 1
        if self.depth > MAX_DEPTH or self.budget[0] < 0:
            raise broken(_("its XML is nested too deep or has too many elements"))
        if self.depth == 1:
            self.root = local
            if local == "sst":
                declared = attrs.get("uniqueCount") or attrs.get("count") or "0"
                if declared.isdigit() and int(declared) > MAX_SHARED_STRINGS:
                    raise self.too_many_strings()
            return
        if self.root == "sst":
            if self.depth == 2 and local == "si":
                self.strings += 1
                if self.strings > MAX_SHARED_STRINGS:
                    raise self.too_many_strings()
            return
        if self.root != "worksheet":
            return
        if self.in_data:
            self._in_data(local, attrs)
        elif local == "sheetData" and self.depth == 2:
            self.in_data = True
        else:
            self.other_elements += 1
            if self.other_elements > MAX_OTHER_ELEMENTS:
                raise broken(_("its sheet holds too many elements besides its cells"))
            if local == "dimension" and self.depth == 2:
                self._dimension(attrs.get("ref", ""))

    def _dimension(self, ref: str) -> None:
        last = _reference(ref.rpartition(":")[2])
        if last is not None:
            if last[0] > MAX_ROWS + 1:
                raise too_many_rows()
            if last[1] > MAX_COLUMNS:
                raise too_many_columns()

    def _in_data(self, local: str, attrs: dict) -> None:
        if self.depth == 3 and local == "row":
            self.rows += 1
            number = attrs.get("r", "")
            self.row_number = int(number) if number.isdigit() else self.row_number + 1
            if self.rows > MAX_ROWS + 1 or self.row_number > MAX_ROWS + 1:
                raise too_many_rows()
            self.row_cells = self.row_elements = self.column = 0
            return
        self.row_elements += 1
        if self.row_elements > MAX_ELEMENTS_PER_ROW:
            raise too_many_columns()
        if self.depth == 4 and local == "c":
            self.cells += 1
            self.row_cells += 1
            if self.row_cells > MAX_COLUMNS:
                raise too_many_columns()
            if self.cells > MAX_CELLS:
                raise ImportFileError(_("The sheet has more than %(limit)s cells; split it into smaller "
                                        "files.", limit=count(MAX_CELLS)))
            place = _reference(attrs.get("r"))
            self.column = place[1] if place else self.column + 1
            self.cell_column, self.cell_has_value = self.column, attrs.get("t") == "inlineStr"
            self.cell_elements = 0
            return
        self.cell_elements += 1
        if self.cell_elements > MAX_ELEMENTS_PER_CELL:
            raise broken(_("the cell in row %(row)s has more formatting than a value needs",
                           row=self.row_number))
        if self.depth == 5 and local in ("v", "is"):
            self.cell_has_value = True

    def end(self, name: str) -> None:
        local = name.rpartition(" ")[2]
        if self.in_data and self.depth == 4 and local == "c" and self.cell_has_value:
            if self.cell_column > MAX_COLUMNS:
                raise too_many_columns()
            self.extent.rows = max(self.extent.rows, self.row_number)
            self.extent.columns = max(self.extent.columns, self.cell_column)
        if self.in_data and self.depth == 2 and local == "sheetData":
            self.in_data = False
        self.depth -= 1

    @staticmethod
    def too_many_strings() -> ImportFileError:
        return ImportFileError(_("The workbook holds more than %(limit)s different texts; split it into "
                                 "smaller files.", limit=count(MAX_SHARED_STRINGS)))


def _scan_part(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> _Scan | None:
    """Stream one part through expat; None when the part is not XML (an image, a printer setup)."""
    scan = _Scan(budget)
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = scan.start
    parser.EndElementHandler = scan.end
    parser.StartDoctypeDeclHandler = scan.doctype
    parser.EntityDeclHandler = scan.doctype
    with archive.open(info) as part:
        first = part.read(CHUNK)
        if not first.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
            return None
        chunk = first
        while chunk:
            parser.Parse(chunk, False)
            chunk = part.read(CHUNK)
        parser.Parse(b"", True)
    return scan


def check_workbook(data: bytes) -> dict[str, SheetExtent]:
    """The extent of each worksheet part (by its name in the ZIP) of an XLSX file that stays
    within every limit above; raises ImportFileError naming the first limit crossed, or saying
    the file is broken."""
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_PARTS:
                raise broken(_("it has too many parts"))
            if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
                raise ImportFileError(_("The workbook unpacks to more than %(limit)s MB; split it into "
                                        "smaller files.", limit=MAX_UNPACKED_BYTES // 2**20))
            for info in infos:
                if info.file_size > MAX_PART_BYTES and "worksheets/" not in info.filename:
                    if info.filename.lower().endswith("sharedstrings.xml"):
                        if info.file_size > MAX_SHARED_STRINGS_BYTES:
                            raise ImportFileError(_(
                                "The workbook's texts unpack to more than %(limit)s MB; split it into "
                                "smaller files.", limit=MAX_SHARED_STRINGS_BYTES // 2**20))
                    elif info.filename.lower().endswith((".xml", ".rels")):
                        raise broken(_("its part %(name)s is too large", name=info.filename[:60]))
            budget = [MAX_ELEMENTS]
            extents = {}
            for info in infos:
                if info.is_dir():
                    continue
                scan = _scan_part(archive, info, budget)
                if scan is not None and scan.root == "worksheet":
                    extents[info.filename] = scan.extent
            return extents
    except ImportFileError:
        raise
    except expat.ExpatError as exc:
        raise broken_by(exc) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError,
            OSError) as exc:
        raise broken_by(exc) from None
