"""Search conditions over the token index (see models.search_index): case and diacritics
are ignored, every typed word must be the start of a word of the record.

Each term is answered by gathering the records whose tokens fall in its range and sorting only
those. PostgreSQL left to itself may instead walk the name index from "A" and probe every record
for the term, expecting matches spread evenly through the alphabet; but a name prefix matches
names that sort together ("horv" → Horváth…), so the walk read 27,000 records at 100,000 to
find 20. `AmongMatches` therefore gathers first on PostgreSQL (`= ANY(ARRAY(…))`, which the
planner cannot turn into a walk) as SQLite's `IN (…)` always does.

A reader who may list every live record (a maintainer), searching the list in its own order
(no filter, no other sort), gets the page from the word tokens alone: each carries the name its
record is listed under (models.search_index), so a page of a common prefix ("nov": 17,000 of a
million customers) is one range of the index (token, sort_name, owner) and its capped count
another, without reading a single customer row (`customer_listed_page`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, Select, func, intersect, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.visitors import InternalTraversal

from models import Contact, ContactSearchToken, Customer, CustomerSearchToken
from models.search_index import prefix_upper_bound, search_terms
from services.counting import COUNT_CAP, CappedCount


class AmongMatches(ColumnElement[bool]):
    """`id_column` is one of the ids `matching` selects, the ids gathered before anything else."""

    inherit_cache = True
    _traverse_internals = [("id_column", InternalTraversal.dp_clauseelement),
                           ("matching", InternalTraversal.dp_clauseelement)]

    def __init__(self, id_column: ColumnElement[Any], matching: Select | CompoundSelect) -> None:
        self.id_column, self.matching = id_column, matching


@compiles(AmongMatches)
def _among_matches(element: AmongMatches, compiler, **kw) -> str:
    return compiler.process(element.id_column.in_(element.matching), **kw)


@compiles(AmongMatches, "postgresql")
def _among_matches_postgresql(element: AmongMatches, compiler, **kw) -> str:
    gathered = func.array(element.matching.scalar_subquery())
    return compiler.process(element.id_column == func.any(gathered), **kw)


def _conditions(id_column, token_model, owner_column, text: str | None) -> list[ColumnElement]:
    ranges = [select(owner_column).where(token_model.token >= term,
                                         token_model.token < prefix_upper_bound(term))
              for term in search_terms(text)]
    if not ranges:
        return []
    # Several words: the records having them all are gathered as one set (INTERSECT of index
    # ranges). As separate conditions PostgreSQL checked the second word's ids as an unhashed
    # array, row by row: 9 s for "kovac peter" at a million customers.
    matching = ranges[0] if len(ranges) == 1 else intersect(*ranges)
    return [AmongMatches(id_column, matching)]


def _listed_matches(token_model, owner_column, text: str | None, *columns) -> Select | CompoundSelect | None:
    """`columns` of the listed records (live, see models.search_index) having every typed word,
    each once; None when nothing was typed. Read from the index (token, sort_name, owner)."""
    ranges = [select(*columns).where(token_model.token >= term, token_model.token < prefix_upper_bound(term),
                                     token_model.sort_name.is_not(None))
              for term in search_terms(text)]
    if not ranges:
        return None
    return ranges[0].distinct() if len(ranges) == 1 else intersect(*ranges)


def _listed_page(session: Session, token_model, owner_column, text: str | None, offset: int,
                 limit: int) -> tuple[CappedCount, list[int]] | None:
    matches = _listed_matches(token_model, owner_column, text, token_model.sort_name, owner_column)
    if matches is None:
        return None
    found = matches.subquery()
    owner = found.c[owner_column.key]
    ids = session.scalars(select(owner).order_by(found.c.sort_name, owner).limit(limit).offset(offset)).all()
    counted = _listed_matches(token_model, owner_column, text, owner_column)
    assert counted is not None
    count = session.scalar(select(func.count()).select_from(counted.limit(COUNT_CAP + 1).subquery()))
    return CappedCount(count or 0), list(ids)


def customer_listed_page(session: Session, text: str | None, offset: int,
                         limit: int) -> tuple[CappedCount, list[int]] | None:
    """The ids of one page of the live customers matching `text` in name order (sort_name, id:
    the list's own order) and how many match, up to the cap — for a reader who may list every
    live customer (a maintainer), from the token index alone however many match. None: no text."""
    return _listed_page(session, CustomerSearchToken, CustomerSearchToken.customer_id, text, offset, limit)


def contact_listed_page(session: Session, text: str | None, offset: int,
                        limit: int) -> tuple[CappedCount, list[int]] | None:
    """As customer_listed_page, for contacts (a merge moves every contact to the survivor, so
    every contact belongs to a live customer)."""
    return _listed_page(session, ContactSearchToken, ContactSearchToken.contact_id, text, offset, limit)


def customer_search_conditions(text: str | None) -> list[ColumnElement]:
    """WHERE conditions selecting customers matching `text` (empty list: no search)."""
    return _conditions(Customer.id, CustomerSearchToken, CustomerSearchToken.customer_id, text)


def contact_search_conditions(text: str | None) -> list[ColumnElement]:
    """WHERE conditions selecting contacts matching `text`."""
    return _conditions(Contact.id, ContactSearchToken, ContactSearchToken.contact_id, text)
