"""The audit trail: who changed which record, when, and which fields from what to what.

Events are written in the same transaction as the change they describe, so a change without
its event (or an event of a change that was rolled back) cannot exist. Secret fields are
recorded only as "changed", by one rule every writer passes through: whatever is put into an
event's `changes` (by `record` or by assigning it) is masked (`masked`) — a field whose name says
secret, a sealed value, and any text holding ciphertext. Nothing here updates or deletes an event.
"""

from __future__ import annotations

import enum
from contextlib import nullcontext
from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, inspect, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction, scoped_session

from i18n import _, when
from models import AuditEvent, Operator
from services.contact_info import stored_value
from services.errors import StaleRecord
from services.secrets import FERNET_TOKEN, MASK, is_sealed
from services.transactions import DbSession, flush

SECRET_MARKERS = ("password", "_encrypted", "secret", "_hash", "registration_key", "credential")
# Derived or bookkeeping columns: recording them would only repeat the real change.
NOT_RECORDED = {"display_name", "sort_name", "version", "created_at", "updated_at",
                "created_by_id", "updated_by_id", "id"}


def is_secret(field: str) -> bool:
    return any(marker in field for marker in SECRET_MARKERS)


def masked(value: Any) -> Any:
    """`value` (an event's changes) with no secret left in it, however deep: a secret field's
    values, a sealed value and any ciphertext inside a text become "changed"."""
    if is_sealed(value):
        return MASK
    if isinstance(value, dict):
        return {key: (_hidden(item) if is_secret(str(key)) else masked(item)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [masked(item) for item in value]
    if isinstance(value, str):
        return FERNET_TOKEN.sub(MASK, value)
    return value


def _hidden(value: Any) -> Any:
    """A secret field's value: whether there was one, never what ([old, new] stays a pair)."""
    if isinstance(value, list | tuple):
        return [None if item is None else MASK for item in value]
    return None if value is None else MASK


def _mask_changes(_target, value, _oldvalue, _initiator):
    return masked(value) if value is not None else None


if not sa_event.contains(AuditEvent.changes, "set", _mask_changes):
    sa_event.listen(AuditEvent.changes, "set", _mask_changes, retval=True)


def describe(value: Any) -> Any:
    """A JSON value a person can read: names for records, values for enums, ISO dates (shown
    in words by services.wording)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | set):
        return sorted(str(describe(v)) for v in value)
    if not hasattr(value, "__table__"):  # a plain value (a JSON mapping's dict …), not a record
        return str(value)
    return name_of(value)


def name_of(record: Any) -> str | None:
    """What people call a record: its own name (its __str__), or — for a record without one
    (a customer's settings, a portal account) — the name of the customer or contact it belongs
    to, or its `name`; never a repr such as "<CustomerSettings 1>" (None then)."""
    if record is None:
        return None
    if type(record).__str__ is not object.__str__:
        return str(record)
    for owner in ("customer", "contact", "operator"):
        related = getattr(record, owner, None)
        if related is not None and type(related).__str__ is not object.__str__:
            return str(related)
    name = getattr(record, "name", None)
    return str(name) if name else None


def changes_of(obj) -> dict[str, list]:
    """Field → [old, new] of the pending changes of `obj` (call before flushing). Reading the
    names of related records must not flush the half-saved record itself."""
    session = inspect(obj).session
    with session.no_autoflush if session is not None else nullcontext():
        return _changes_of(obj)


def _changes_of(obj) -> dict[str, list]:
    state = inspect(obj)
    mapper = state.mapper
    changes: dict[str, list] = {}
    for attr in mapper.column_attrs:
        column = attr.columns[0]
        # A number ending in _id points at a record (its relationship is recorded by name);
        # a text one is a value of its own (VAT ID, company ID).
        is_reference = attr.key.endswith("_id") and isinstance(column.type, Integer)
        if attr.key in NOT_RECORDED or column.foreign_keys or is_reference:
            continue
        history = state.attrs[attr.key].history
        if history.has_changes():
            old = history.deleted[0] if history.deleted else None
            new = history.added[0] if history.added else None
            if describe(old) != describe(new):
                changes[attr.key] = [describe(old), describe(new)]
    for rel in mapper.relationships:
        if rel.direction.name == "ONETOMANY" or rel.key in ("created_by", "updated_by"):
            continue
        if rel.direction.name == "MANYTOONE" and len(rel.local_columns) == 1:
            pair = _reference_change(obj, state, rel)
            if pair is not None:
                changes[rel.key] = pair
            continue
        history = state.attrs[rel.key].history
        if not history.has_changes():
            continue
        if rel.uselist:
            before = list(history.unchanged) + list(history.deleted)
            after = list(history.unchanged) + list(history.added)
            old, new = describe(before), describe(after)
        else:
            old = describe(history.deleted[0] if history.deleted else None)
            new = describe(history.added[0] if history.added else None)
        if old != new and (old or new):
            changes[rel.key] = [old, new]
    return {field: ([MASK, MASK] if is_secret(field) else values) for field, values in changes.items()}


def _reference_change(obj, state, rel) -> list | None:
    """[old, new] names of a reference to one record (a manager, a department, a status) that
    changed, however it was changed: the relationship set — its old value loaded or not (then
    the relationship's history does not know it) — or the key column set. The old record is
    the one the stored key names, so the event says who the manager was, not "nobody", and a
    reference cleared without being loaded is recorded too. Compared as records, not names:
    another manager of the same name is a change."""
    column = next(iter(rel.local_columns))
    key = state.mapper.get_property_by_column(column).key
    history, key_history = state.attrs[rel.key].history, state.attrs[key].history
    if not (history.has_changes() or key_history.has_changes()):
        return None
    session, related = state.session, rel.mapper.class_

    def by_key(value):
        return session.get(related, value) if value is not None and session is not None else None

    if history.deleted and history.deleted[0] is not None:
        old = history.deleted[0]
    else:  # not loaded before the change (or loaded as none): what the stored key names
        old = by_key(stored_value(obj, key))
    if history.added:
        new = history.added[0]
    elif key_history.added:
        new = by_key(key_history.added[0])
    else:
        new = history.unchanged[0] if history.unchanged else by_key(getattr(obj, key))
    if old is new or (old is None and new is None):
        return None
    return [describe(old), describe(new)]


def record(
    session: DbSession,
    actor: Operator | None,
    action: str,
    entity,
    changes: dict[str, list] | None = None,
    *,
    entity_type: str | None = None,
    actor_label: str | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    """Add an event to the session (committed with the change it describes). An entity whose
    pending change the database has not seen yet (a new row without its id, a versioned row
    whose version the flush raises) is read after the next flush instead: the event waits for
    it, so a command need not flush before recording, and a batch's rows and events each go in
    one flush. A waiting event is dropped with the (sub)transaction it was recorded in when
    that rolls back, and added at the latest when it commits."""
    event = AuditEvent(
        actor_id=actor.id if actor is not None else None,
        actor_label=actor_label or (actor.email if actor is not None else "system"),
        action=action,
        entity_type=entity_type or type(entity).__name__.lower(),
        changes={k: v for k, v in (changes or {}).items()} or None,
        ip_address=ip_address,
    )
    waiting = session.info.get(_WAITING)
    if waiting or not _settled(entity):  # behind a waiting one too: events keep their order
        current = session() if isinstance(session, scoped_session) else session
        transaction = current.get_nested_transaction() or current.get_transaction()
        session.info.setdefault(_WAITING, []).append((event, entity, transaction))
    else:
        _describe(event, entity)
        session.add(event)
    return event


_WAITING = "audit_events_waiting"  # session.info: [(event, entity, transaction recorded in)]


def _settled(entity) -> bool:
    """Whether `entity`'s id and version are already what its pending change makes them."""
    state = inspect(entity, raiseerr=False) if entity is not None else None
    if state is None:
        return True
    if state.transient or state.pending:
        return False
    return not (state.modified and state.mapper.version_id_col is not None)


def _describe(event: AuditEvent, entity) -> None:
    event.entity_id = getattr(entity, "id", None)
    label = name_of(entity)
    event.entity_label = label[:255] if label else None
    event.entity_version = getattr(entity, "version", None)


def _add_waiting(session: Session) -> None:
    for event, entity, _transaction in session.info.pop(_WAITING, None) or ():
        _describe(event, entity)
        session.add(event)


def _after_flush(session: Session, _flush_context) -> None:
    # The rows have their ids and versions now; the events go in the next flush, which a
    # commit or a savepoint's release runs at once (their flush loop).
    _add_waiting(session)


def _before_commit(session: Session) -> None:
    if session.info.get(_WAITING):
        session.flush()  # the entities first (the events follow in _after_flush)
        _add_waiting(session)  # events of entities the flush had nothing to write for


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # Committed: its events were added above. Rolled back: its events go with it.
    waiting = session.info.get(_WAITING)
    if waiting:
        session.info[_WAITING] = [w for w in waiting if not _within(w[2], transaction)]


def _within(recorded_in: SessionTransaction | None, ended: SessionTransaction) -> bool:
    current = recorded_in
    while current is not None:
        if current is ended:
            return True
        current = current.parent
    return recorded_in is None and ended.parent is None  # recorded before the session began one


for _name, _hook in (("after_flush_postexec", _after_flush), ("before_commit", _before_commit),
                     ("after_transaction_end", _after_transaction_end)):
    if not sa_event.contains(Session, _name, _hook):
        sa_event.listen(Session, _name, _hook)


def changes_since(session: DbSession, entity_type: str, entity_id: int, version: int) -> list[AuditEvent]:
    """Events that took the record past `version`, oldest first: who changed what meanwhile."""
    return list(session.scalars(
        select(AuditEvent)
        .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id,
               AuditEvent.entity_version > version)
        .order_by(AuditEvent.id)
    ))


def stale_message(session: DbSession, entity_type: str, entity_id: int, seen_version: int) -> str:
    """Who changed the record since the user loaded it, and which fields (their labels), when
    (to the minute in the reader's time zone)."""
    from services.wording import field_label

    parts = []
    for event in changes_since(session, entity_type, entity_id, seen_version):
        fields = ", ".join(sorted(field_label(entity_type, field)
                                  for field in (event.changes or {}) if field != "undo"))
        parts.append(_("%(who)s changed %(fields)s at %(when)s", who=event.actor_label,
                       fields=fields or _("the record"), when=when(event.at)))
    who = "; ".join(parts) or _("Somebody else changed it")
    return _("This record was changed while you were editing it: %(who)s. Your input is still in the "
             "form: check it against the current values and save again to apply it.", who=who)


def check_version(session: DbSession, entity_type: str, row, seen_version: int | None) -> None:
    """Raise StaleRecord when `record` is past the version the user's form was loaded at."""
    if seen_version is not None and row.id is not None and row.version != seen_version:
        raise StaleRecord(stale_message(session, entity_type, row.id, seen_version), row.version)


def save_audited(session: DbSession, actor: Operator | None, row) -> None:
    """Flush a simple row (a lookup, a team) with its create/update event (the door commits)."""
    is_new = inspect(row).transient or inspect(row).pending
    session.add(row)
    changes = changes_of(row)
    flush(session)
    record(session, actor, "create" if is_new else "update", row, changes)
    flush(session)
