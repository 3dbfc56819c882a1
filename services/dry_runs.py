"""Where a dry run (a CSV preview, a directory dry run) does its writing.

A dry run does the real work and rolls it back (services.batches.rolled_back), so its report is
what the real run would do. (STUB — the SQLite snapshot is being written: on SQLite the dry run
must not hold the database's only write lock for its whole length.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from services.transactions import DbSession


@contextmanager
def dry_run_session(session: DbSession) -> Iterator[Session]:
    """A session for a dry run's writes, closed at the end. Run state (progress, the report)
    must be written through another session on the real database, never through this one."""
    private = Session(bind=session.get_bind(), expire_on_commit=False)
    try:
        yield private
    finally:
        private.close()
