"""Field limits from one source: the model's columns.

Forms, the quick form, the API schemas and the importers ask `max_length` for a column's limit,
and `check_lengths` refuses a too-long value with a message on its field before anything is
sent to the database. `guard_lengths` is the last line behind them all: a `before_flush` hook
that refuses any over-long text (and any NUL) on any row of any write, so nothing that passes a
door can end in PostgreSQL's StringDataRightTruncation or its refusal of NUL (SQLite would store
either silently).
"""

from __future__ import annotations

from sqlalchemy import String, event, inspect
from sqlalchemy.orm import InstrumentedAttribute, Session

from i18n import _
from services.contact_info import control_message
from services.errors import FORM, ErrorBag, ValidationFailed
from services.transactions import DbSession
from services.wording import field_label


def max_length(attribute: InstrumentedAttribute) -> int | None:
    """The length of a String column (`Customer.company_name` → 200); None when unlimited."""
    column_type = attribute.property.columns[0].type
    return getattr(column_type, "length", None) if isinstance(column_type, String) else None


def too_long(limit: int, given: int) -> str:
    """The one message of a too-long value, at every door (WTForms' Length says it in the same words)."""
    return _("At most %(limit)s characters, please (%(given)s given).", limit=limit, given=given)


def length_errors(row) -> dict[str, list[str]]:
    """Field → message for every text of `row` longer than its column allows."""
    bag = ErrorBag()
    mapper = inspect(row).mapper
    for attr in mapper.column_attrs:
        column_type = attr.columns[0].type
        limit = getattr(column_type, "length", None) if isinstance(column_type, String) else None
        value = getattr(row, attr.key, None)
        if limit and isinstance(value, str) and len(value) > limit:
            bag.add(attr.key, too_long(limit, len(value)))
        if isinstance(column_type, String) and isinstance(value, str) and "\x00" in value:
            bag.add(attr.key, control_message())  # PostgreSQL refuses NUL in any text (SQLite stores it)
    return bag.errors


def check_lengths(row, bag: ErrorBag, prefix: str = "") -> None:
    """Add a message per too-long field of `row` to `bag` (field names prefixed)."""
    for field, messages in length_errors(row).items():
        for message in messages:
            bag.add(prefix + field, message)


def _refuse_over_long(session: DbSession, _context, _instances) -> None:
    errors: dict[str, list[str]] = {}
    for row in [*session.new, *session.dirty]:
        for field, messages in length_errors(row).items():
            label = field_label(type(row).__name__.lower(), field)
            errors.setdefault(FORM, []).extend(f"{label}: {m}" for m in messages)
    if errors:
        raise ValidationFailed(errors)


def guard_lengths() -> None:
    """Install the before_flush guard on every session (once per process)."""
    if not event.contains(Session, "before_flush", _refuse_over_long):
        event.listen(Session, "before_flush", _refuse_over_long)
