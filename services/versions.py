"""The version an edit is based on: no blind overwrite through any door.

Every command that changes an existing record — a customer (its fields, tabs, status, photo, a
merge), contact, customer or global settings, request, portal account or operator — takes the
version the user (or API client) read — `seen_version` — and calls `check_seen_version` once,
before it changes anything. A door that sends no version is refused (VersionRequired: the
panel's "reload" message, the API's 428); a stale one is refused by the domain's one
comparison, `services.audit.check_version` (StaleRecord: the panel's "changed meanwhile"
message, the API's 412).

The row is locked before its version is compared (SELECT … FOR UPDATE on PostgreSQL, the
write lock of BEGIN IMMEDIATE on SQLite), so two saves based on the same version cannot both
pass the check: the second waits for the first to commit, then reads the version the first
one wrote and is refused as stale — the same answer as when they come one after the other.

Jobs of the system that are based on no version a person read (a CSV or directory import
matching a record, the CLI, demo data) pass `ON_CURRENT`: they change the current record.
"""

from __future__ import annotations

from enum import Enum

from sqlalchemy import inspect

from i18n import _
from services.audit import check_version
from services.errors import N_, VersionRequired
from services.transactions import DbSession, hold_transaction

# English (compared by tests); raised as _(NO_VERSION).
NO_VERSION = N_("This form did not say which version of the record it was based on, so saving it could "
                "overwrite a change made meanwhile. Reload the page to see the current values, then "
                "apply your changes again.")


class Based(Enum):
    """What a change is based on when no person read a version: the record as it is now."""

    ON_CURRENT = "the current record"


ON_CURRENT = Based.ON_CURRENT
SeenVersion = int | None | Based


def check_seen_version(session: DbSession, entity_type: str, row, seen_version: SeenVersion) -> None:
    """Refuse a change of the existing `row` that names no version (VersionRequired) or a version
    the row is past (StaleRecord, naming who changed what meanwhile). A new row, and a change
    `ON_CURRENT`, pass. Locks the row until the door's unit of work ends."""
    state = inspect(row)
    if seen_version is ON_CURRENT or not state.has_identity:
        return
    if seen_version is None:
        raise VersionRequired(_(NO_VERSION))
    hold_transaction(session)  # SQLite: the write lock now, before the version is read
    # The version as committed now, under the lock; the user's pending changes stay on the row.
    session.refresh(row, attribute_names=["version"], with_for_update=True)
    check_version(session, entity_type, row, seen_version)
