"""Work in batches on the unit of work: the importers' transactions (CSV/XLSX and directory).

A real run commits batch by batch (`unit_of_work` per batch), each record of a batch in a
savepoint of its own (`unit_of_work(session, savepoint=True)`), so a refused record drops alone
and a failure part-way keeps the batches before it. A dry run is the same work inside
`rolled_back`: one outer unit of work that every batch joins and that is rolled back in this one
place at the end, so a preview and the real run cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import TypeVar

from services.transactions import DbSession, hold_transaction, unit_of_work

T = TypeVar("T")


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
