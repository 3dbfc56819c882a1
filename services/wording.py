"""The users' words for stored values: field labels instead of column names, values as a person
reads them. History, the audit trail, the merge page, the wizard's summary and directory
reports all show changes through here, so a value looks the same on every page.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from i18n import _

EMPTY = "—"


class ChangeLine(NamedTuple):
    label: str
    old: str
    new: str


def field_label(entity_type: str, field: str) -> str:
    """The label a person knows a field by (translated)."""
    return _(field.replace("_", " ").capitalize())


def shown_value(entity_type: str, field: str, value: Any) -> str:
    """A stored or audited value as a person reads it; "—" for nothing."""
    if value is None or value == "" or value == []:
        return EMPTY
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def change_lines(entity_type: str, changes: dict | None) -> list[ChangeLine]:
    """An audit event's `changes` (field → [old, new]) as labelled, readable lines."""
    lines = []
    for field, values in (changes or {}).items():
        if isinstance(values, list | tuple) and len(values) == 2:
            old, new = values
            lines.append(ChangeLine(field_label(entity_type, field), shown_value(entity_type, field, old),
                                    shown_value(entity_type, field, new)))
    return lines
