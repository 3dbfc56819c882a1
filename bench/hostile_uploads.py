"""What hostile import files cost to read: CPU seconds and peak memory of `read_table` per file.

    .venv/bin/python -m bench.hostile_uploads

Builds the files of issue 14 (small on disk) and a legitimate 20,000 × 20 workbook (as many cells
as a file may have), then reads each in a subprocess of its own (so its peak RSS is its own) and
prints CPU time, the growth of the peak RSS and the outcome. Every hostile file must cost less than
the largest legitimate one; most are refused in well under a second.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openpyxl import Workbook

SHEET = "xl/worksheets/sheet1.xml"
HEADER = '<row r="1"><c r="A1" t="inlineStr"><is><t>Firma</t></is></c></row>'
DATA = '<row><c t="inlineStr"><is><t>Acme</t></is></c></row>'


def _files(folder: Path) -> list[Path]:
    from tests.test_upload_limits import (
        one_text_in_every_row,
        patched,
        rich_cells,
        sheet_data,
        with_strings,
        workbook,
    )

    def blank(xml: str) -> str:
        xml = re.sub(r'<dimension ref="[^"]*"\s*/>', "", xml)
        return sheet_data(xml, HEADER + DATA + "<row/>" * 2_000_000)

    legit = Workbook()
    legit.active.append([f"Column {i}" for i in range(20)])
    for r in range(19_999):
        legit.active.append([f"value {r} {i}" for i in range(20)])
    out = io.BytesIO()
    legit.save(out)
    plain = workbook()
    texts = "<si><t>Firma</t></si><si><t>Acme</t></si>"
    made = {
        "blank-rows-2m.xlsx": patched(plain, SHEET, blank),
        "shared-strings-100mb.xlsx": with_strings(texts + ("<si><t>" + "x" * 1000 + "</t></si>") * 100_000),
        "shared-strings-20mb.xlsx": with_strings(texts + ("<si><t>" + "x" * 1000 + "</t></si>") * 20_000),
        "columns-200k.csv": ";".join(f"c{i}" for i in range(200_000)).encode() + b"\n1\n",
        "sniffer-5mb.csv": (',"a' * 1_700_000).encode(),
        "truncated.xlsx": plain[:len(plain) // 2],
        "bad-shared-string.xlsx": patched(plain, SHEET, lambda x: sheet_data(
            x, '<row r="1"><c r="A1" t="s"><v>999</v></c></row>')),
        "rich-runs-5000x790.xlsx": rich_cells(5_000, 790),
        "cells-4999x200.xlsx": _wide(4_999, 200),
        "one-100kb-text-300-rows.xlsx": one_text_in_every_row(("ab " * 33_333).strip(), 300),
        "one-10kb-text-801-rows.xlsx": one_text_in_every_row("x" * 10_000, 801),
        "legit-20000x20.xlsx": out.getvalue(),
    }
    paths = []
    for name, data in made.items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


def _wide(rows: int, columns: int) -> bytes:
    """`rows` rows of `columns` numeric cells (the attacker's million cells in 2 MB)."""
    from openpyxl.utils import get_column_letter

    from tests.test_upload_limits import patched, sheet_data, workbook

    letters = [get_column_letter(c) for c in range(1, columns + 1)]
    head = "".join(f'<c r="{c}1" t="inlineStr"><is><t>H{c}</t></is></c>' for c in letters)
    body = f'<row r="1">{head}</row>' + "".join(
        f'<row r="{n}">' + "".join(f'<c r="{c}{n}"><v>1</v></c>' for c in letters) + "</row>"
        for n in range(2, rows + 2))
    return patched(workbook(), SHEET, lambda x: sheet_data(x, body, dimension=f"A1:{letters[-1]}{rows + 1}"))


def _peak_mb() -> float:
    """The process's RSS high-water mark (VmHWM: unlike ru_maxrss, not inherited over exec)."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def _read_one(path: str) -> None:
    from services.bulk_import_files import ImportFileError, read_table

    data = Path(path).read_bytes()
    base = _peak_mb()
    start = time.process_time()
    try:
        table = read_table(data)
        outcome = f"read {len(table.rows)} rows × {len(table.headers)} columns"
    except ImportFileError as exc:
        outcome = f"refused: {exc}"
    cpu = time.process_time() - start
    grown = _peak_mb() - base
    size = len(data) / 1024
    print(f"| {Path(path).name} | {size:,.0f} kB | {cpu:.2f} s | +{grown:.0f} MB | {outcome[:90]} |")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        _read_one(sys.argv[2])
        return
    with tempfile.TemporaryDirectory() as folder:
        print("| file | size | CPU | peak RSS | outcome |\n| --- | --- | --- | --- | --- |")
        for path in _files(Path(folder)):
            subprocess.run([sys.executable, "-m", "bench.hostile_uploads", "--one", str(path)], check=True)


if __name__ == "__main__":
    main()
