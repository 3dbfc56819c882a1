"""Remembered import mappings, in the database and bounded.

The mapping a user chose for a set of headers is kept under the headers' signature, so the same
export next month maps itself. The table is bounded: only the mapped columns are stored (at most
one per target field, names of at most services.upload_limits.MAX_HEADER_LENGTH characters), and
only the MAX_REMEMBERED most recently used mappings are kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable

from sqlalchemy import delete, select

from models.base import utcnow
from models.import_mapping import ImportMapping
from services.bulk_import_files import TARGET_FIELDS, header_key, mapped_headers
from services.errors import ValidationFailed
from services.transactions import DbSession, flush, unit_of_work
from services.upload_limits import MAX_HEADER_LENGTH

MAX_REMEMBERED = 200


def mapping_signature(headers: Iterable[str]) -> str:
    """The same for the same header names in any order, case or accents; the Reason column of a
    rejected-rows report is no part of it."""
    names = sorted(header_key(h) for h in mapped_headers(headers))
    return hashlib.sha256(json.dumps(names).encode()).hexdigest()


def remembered_mapping(session: DbSession, headers: Iterable[str]) -> dict[str, str] | None:
    """Header → target field as last chosen for these headers ("" = not imported), or None."""
    headers = list(headers)
    entry = session.scalar(select(ImportMapping.mapping).where(
        ImportMapping.signature == mapping_signature(headers)))
    if not isinstance(entry, dict):
        return None
    return {h: entry.get(header_key(h), "") if entry.get(header_key(h), "") in TARGET_FIELDS else ""
            for h in mapped_headers(headers)}


def remember_mapping(session: DbSession, headers: Iterable[str], mapping: dict[str, str]) -> None:
    """Keep `mapping` for these headers (replacing the one kept before) and forget all but the
    MAX_REMEMBERED most recently used mappings. Flushes; the door's unit of work commits."""
    headers = list(headers)
    signature = mapping_signature(headers)
    stored = {header_key(h): mapping[h] for h in mapped_headers(headers)
              if mapping.get(h) in TARGET_FIELDS and len(header_key(h)) <= MAX_HEADER_LENGTH}
    row = session.scalar(select(ImportMapping).where(ImportMapping.signature == signature))
    if row is None:
        try:
            with unit_of_work(session, savepoint=True):
                session.add(ImportMapping(signature=signature, mapping=stored, used_at=utcnow()))
                flush(session)
        except ValidationFailed:  # the same headers were remembered by another upload meanwhile
            row = session.scalar(select(ImportMapping).where(ImportMapping.signature == signature))
    if row is not None:
        row.mapping, row.used_at = stored, utcnow()
        flush(session)
    kept = select(ImportMapping.id).order_by(ImportMapping.used_at.desc(), ImportMapping.id.desc()) \
        .limit(MAX_REMEMBERED).scalar_subquery()
    session.execute(delete(ImportMapping).where(ImportMapping.id.not_in(kept)))
