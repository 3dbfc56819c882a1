"""Cells we write into files a spreadsheet opens, and read back from them: no formula injection.

A value that begins with = + - @ (or their full-width forms ＝ ＋ － ＠ and small forms ﹦ ﹢ ﹣ ﹫,
which some spreadsheets read as the ASCII ones), a tab or a carriage return is taken by Excel and
LibreOffice for a formula when a CSV is opened — `=HYPERLINK(...)` becomes a live link, `=cmd|...`
a DDE call. Spreadsheets trim spaces and drop invisible characters on import, so what counts is the
first character that is not whitespace (any: NBSP, U+3000, line breaks …), a control character
(NUL, \x0b …), an invisible format character (zero-width space, BOM …) or a quote: a value such as
" =1+1" or "\ufeff=1+1" is neutralised too, and so is one whose leading run has a tab or a CR.
Every export (the panel's list exports, the import's rejected-rows file) writes its cells through
`neutralise_cell`, the OWASP rule: such a value gets one leading single quote, which makes it
text. Phone numbers (+421 …) and negative numbers are prefixed too: the rule has no exceptions
(an exception is a bypass), and a spreadsheet would otherwise turn "+421905123456" into a number.

The importer reads every cell through `restore_cell`, the exact inverse, so uploading our own
export gives back the same values: one leading quote is dropped where `neutralise_cell` would
have added it (the rest, ignoring further leading quotes, begins with a trigger). To keep the
pair exact, a value that already begins with quotes before a trigger ("'=x") gets one more.

XLSX files are written by `xlsx_bytes` with every cell a string cell (never a formula), the
characters XML cannot hold removed and then the same neutralising, so a workbook and a CSV of
one export hold the same text.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterable, Sequence

TRIGGERS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20", "\ufe66", "\ufe62", "\ufe63",
            "\ufe6b")
QUOTE = "'"
# Characters XML 1.0 cannot hold (openpyxl refuses them); a stored value may contain them.
_NOT_IN_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _ignored(char: str) -> bool:
    """Characters a spreadsheet may skip before it looks for a formula: quotes, whitespace,
    control characters (Cc) and invisible format characters (Cf: ZWSP, BOM, bidi marks …)."""
    return char == QUOTE or char.isspace() or unicodedata.category(char) in ("Cc", "Cf")


def _starts_with_trigger(text: str) -> bool:
    """Whether the first character that is not ignored is a trigger, or the ignored run before
    it holds a tab or a CR (the OWASP rule). Leading quotes are ignored, so adding one (what
    `neutralise_cell` does) never changes the answer — which keeps `restore_cell` exact."""
    for char in text:
        if char in "\t\r":
            return True
        if not _ignored(char):
            return char in TRIGGERS
    return False


def neutralise_cell(value) -> str:
    """The value as the text of a spreadsheet cell that no spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    return QUOTE + text if _starts_with_trigger(text) else text


def restore_cell(text: str) -> str:
    """The value `neutralise_cell` was given: one added quote removed, anything else as it is."""
    if text.startswith(QUOTE) and _starts_with_trigger(text):
        return text[1:]
    return text


def xlsx_bytes(title: str, headers: Sequence, rows: Iterable[Sequence]) -> bytes:
    """A one-sheet workbook of `headers` and `rows`, every cell neutralised and typed as text."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook(write_only=False)
    sheet = book.active
    sheet.title = re.sub(r"[\\*?:/\[\]]", "-", title)[:31] or "Export"
    bold = Font(bold=True)
    for row_number, values in enumerate([headers, *rows], start=1):
        for column, value in enumerate(values, start=1):
            # Control characters first, then neutralised: stripping "\x01" from a neutralised
            # "'\x01=1+1" is harmless, but neutralising must see the text the cell will hold.
            text = neutralise_cell(_NOT_IN_XML.sub("", "" if value is None else str(value)))
            if not text:
                continue  # an empty cell stays blank
            cell = sheet.cell(row=row_number, column=column)
            # Assigned as text and typed as a string: openpyxl would type "=…" as a formula.
            cell.value = text
            cell.data_type = "s"
            if row_number == 1:
                cell.font = bold
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
