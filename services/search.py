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


def _listed_ranges(token_model, owner_column, text: str | None) -> list[Select]:
    """(sort_name, owner) of the listed word tokens (live records, see models.search_index) in
    each typed word's range: one SELECT per word, read from the index (token, sort_name, owner)."""
    return [select(token_model.sort_name, owner_column).where(
                token_model.token >= term, token_model.token < prefix_upper_bound(term),
                token_model.sort_name.is_not(None))
            for term in search_terms(text)]


def _one_word_page(session: Session, found: Select, sort_name, owner, offset: int,
                   limit: int) -> tuple[CappedCount, list[int]]:
    """A page of one word's listed matches and their capped count. A record with two words in
    the range ("nov": Novák and Nováková) has two rows, side by side in name order: the page
    reads the first rows in order and skips repeats (rather than a DISTINCT over every match,
    which PostgreSQL hashes whole — 78,000 contacts for "nov"), reading more in the rare case
    repeats left the page short."""
    wanted, fetch = offset + limit, offset + limit + 8
    while True:
        rows = session.execute(found.order_by(sort_name, owner).limit(fetch)).all()
        distinct = list(dict.fromkeys(row[1] for row in rows))
        if len(distinct) >= wanted or len(rows) < fetch:
            break
        fetch *= 2
    return _one_word_count(session, found, owner), distinct[offset:wanted]


def _one_word_count(session: Session, found: Select, owner) -> CappedCount:
    everyone = found.with_only_columns(owner).distinct()
    capped = select(func.count()).select_from(everyone.limit(COUNT_CAP + 1).subquery())
    if session.get_bind().dialect.name == "sqlite":
        return CappedCount(session.scalar(capped) or 0)  # SQLite's DISTINCT stops at the limit
    # PostgreSQL hashes the whole range before the limit applies: count the distinct records
    # among its first rows, up to twice the cap — more than the cap there is more than the cap
    # in all; fewer, with the whole range read, is exact.
    bound = 2 * (COUNT_CAP + 1)
    head = found.with_only_columns(owner).limit(bound).subquery()
    rows, records = session.execute(select(func.count(), func.count(head.c[owner.key].distinct()))).one()
    if records > COUNT_CAP or rows < bound:
        return CappedCount(min(records, COUNT_CAP + 1))
    return CappedCount(session.scalar(capped) or 0)


def _listed_page(session: Session, token_model, owner_column, text: str | None, offset: int,
                 limit: int) -> tuple[CappedCount, list[int]] | None:
    ranges = _listed_ranges(token_model, owner_column, text)
    if not ranges:
        return None
    if len(ranges) == 1:
        return _one_word_page(session, ranges[0], token_model.sort_name, owner_column, offset, limit)
    # Several words: the records having them all (INTERSECT), counted in the same pass that
    # sorts them (a second INTERSECT for the count took longer than the page).
    matches = intersect(*ranges).subquery()
    owner = matches.c[owner_column.key]
    rows = session.execute(select(owner, func.count().over()).order_by(matches.c.sort_name, owner)
                           .limit(limit).offset(offset)).all()
    total = rows[0][1] if rows else session.scalar(select(func.count()).select_from(matches))
    return CappedCount(min(total or 0, COUNT_CAP + 1)), [row[0] for row in rows]


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
