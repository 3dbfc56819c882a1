"""Reading record ids out of URLs and forms."""

from __future__ import annotations

MAX_ID = 2**31 - 1  # PostgreSQL INTEGER; a larger number can name no row and must not reach SQL


def parse_id(value) -> int | None:
    """A positive integer id, or None for anything else ("", "abc", "-1", 10**20, "١٢")."""
    text = str(value).strip() if value is not None else ""
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None
