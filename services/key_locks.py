"""Serialising creates that share an identifying key, so a duplicate check and the insert it
allows are one step for everyone else.

The check-then-insert of a new customer is only safe when no other transaction can insert a
record with the same key between the check and the commit. On PostgreSQL each normalised key
(e-mail, phone, company ID, VAT ID, a company's name) takes a transaction-level advisory lock
before the check: a second create with the same key waits until the first commits, then its
check sees the first one's row (READ COMMITTED reads what is committed when each statement
starts). Creates with different keys do not wait for each other. On SQLite, with one writer at a
time anyway, the transaction takes the write lock (BEGIN IMMEDIATE) before the check. A table of
keys with unique constraints would also refuse the second insert, but then "create anyway" could
never record a second customer sharing an e-mail, which users do on purpose (a family's address).
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import blake2b

from sqlalchemy import func, select

from services.transactions import DbSession, hold_transaction


def lock_id(field: str, value: str) -> int:
    """A stable signed 64-bit number for one key (PostgreSQL's advisory lock id)."""
    digest = blake2b(f"customer-key:{field}:{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_keys(session: DbSession, keys: Iterable[tuple[str, str]]) -> None:
    """Hold the keys until the door's transaction ends. In sorted order, so two creates sharing
    two keys cannot wait for each other in a circle."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        hold_transaction(session)
        return
    for number in sorted({lock_id(field, value) for field, value in keys if value}):
        session.execute(select(func.pg_advisory_xact_lock(number)))
