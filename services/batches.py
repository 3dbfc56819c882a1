"""Work in batches on the unit of work: the importers' transactions (CSV/XLSX and directory).

A real run commits batch by batch (`unit_of_work` per batch), each record of a batch in a
savepoint of its own (`unit_of_work(session, savepoint=True)`), so a refused record drops alone
and a failure part-way keeps the batches before it. A dry run is the same work inside
`rolled_back`: one outer unit of work that every batch joins and that is rolled back in this one
place at the end, so a preview and the real run cannot disagree.

Flushing one record at a time costs most of an import's time: inside `one_flush` the commands
leave their flush to the batch, whose rows then go to the database in one flush (SQLAlchemy
sends a table's rows together), their audit events in the next (services.audit.record waits
for the ids and versions).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import TypeVar

from services.transactions import DbSession, flush, hold_transaction, unit_of_work

T = TypeVar("T")
_ONE_FLUSH = "commands_leave_flush_to_batch"


class _RollBack(Exception):
    """Raised at the end of a dry run, so that its unit of work rolls everything back."""


@contextmanager
def rolled_back(session: DbSession) -> Iterator[DbSession]:
    """A unit of work that always ends in a rollback: a dry run. Units opened inside join it
    (their commits wait for it); savepoints nest in it. What the body raises is raised after
    the rollback."""
    try:
        with unit_of_work(session):
            hold_transaction(session)
            yield session
            raise _RollBack
    except _RollBack:
        pass


@contextmanager
def batch_unit(session: DbSession) -> Iterator[DbSession]:
    """The unit of work of one batch: committed at its end in a real run, joined to the dry
    run's unit inside `rolled_back`."""
    with unit_of_work(session):
        hold_transaction(session)
        yield session


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last one shorter), read lazily."""
    iterator = iter(items)
    while batch := list(islice(iterator, max(size, 1))):
        yield batch


@contextmanager
def one_flush(session: DbSession) -> Iterator[DbSession]:
    """Commands called inside leave their flush to the caller (`flush_command`), which flushes
    the batch at its end — the release of the savepoint it runs in — and so answers for what
    that flush refuses: it cannot tell which record a refusal concerns, so it must be able to
    redo the batch one record at a time. Records a rule compares with other rows (anything but
    a new record's unique values, which the database's constraints check at the flush) need the
    rows before them flushed first."""
    session.info[_ONE_FLUSH] = session.info.get(_ONE_FLUSH, 0) + 1
    try:
        yield session
    finally:
        session.info[_ONE_FLUSH] -= 1


def flush_command(session: DbSession) -> None:
    """A command's flush: now (the row's id, a database refusal as ValidationFailed at the
    command), or inside `one_flush` with the rest of the batch."""
    if not session.info.get(_ONE_FLUSH):
        flush(session)
