"""Reading record ids out of URLs and forms."""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1  # PostgreSQL INTEGER; a larger number can name no row and must not reach SQL


def parse_id(value) -> int | None:
    """A positive integer id, or None for anything else ("", "abc", "-1", 10**20, "١٢")."""
    text = str(value).strip() if value is not None else ""
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


class RecordIdConverter(IntegerConverter):
    """`<int:…>` in every URL of the app: a number beyond MAX_ID matches no route (404) rather
    than reaching the database, where it overflows (PostgreSQL INTEGER, SQLite's 64 bits)."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ID,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)
