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

Other users write meanwhile. A batch holds SQLite's only write lock from its start to its
commit, so `batches` keeps each one short in time as well as in rows (BATCH_SECONDS), and a
real batch on SQLite pauses after its commit (WRITER_PAUSE): SQLite queues no writers — a
waiting one sleeps in its busy handler and tries again, up to 100 ms later — so a writer that
begins its next batch right after committing takes the lock again before any waiting writer
wakes. Measured with a loop of 0.5-s batches and 8 users writing: without the pause 46 of 48
user writes failed after waiting the whole busy timeout (15 s); with it none did, and none
waited longer than one batch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import TypeVar

from services.transactions import DbSession, flush, hold_transaction, in_unit_of_work, unit_of_work

T = TypeVar("T")
BATCH_SECONDS = 1.0  # what a batch may take (and so hold SQLite's write lock) before the next is smaller
FIRST_BATCH = 10  # items, before the time one takes is known
WRITER_PAUSE = 0.12  # s after a real batch's commit on SQLite: longer than the busy handler's 100-ms nap
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
    """The unit of work of one batch: committed at its end in a real run (on SQLite followed by
    WRITER_PAUSE, so that writers waiting for the lock get it), joined to the dry run's unit
    inside `rolled_back`."""
    committed_here = not in_unit_of_work(session)
    with unit_of_work(session):
        hold_transaction(session)
        yield session
    if committed_here and session.get_bind().dialect.name == "sqlite":
        time.sleep(WRITER_PAUSE)


def batches(items: Iterable[T], size: int, *, seconds: float = BATCH_SECONDS) -> Iterator[list[T]]:
    """`items` in lists of at most `size`, read lazily. The first list is short (FIRST_BATCH);
    each next one holds as many items as the caller got through in `seconds` over the last
    (at least one, at most `size`): a batch's transaction stays short whatever a record costs
    (a large database, a busy machine)."""
    iterator, size = iter(items), max(size, 1)
    wanted = min(size, FIRST_BATCH)
    while batch := list(islice(iterator, wanted)):
        started = time.monotonic()
        yield batch
        took = time.monotonic() - started
        if took > 0:
            wanted = max(1, min(size, int(len(batch) * seconds / took)))


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
