"""The bounded index lookups behind duplicate matching: which records may be the one typed.

Every lookup is an equality or a range on a B-tree (the token index, the vocabulary, the
lower(email) indexes, the unique company ID / VAT ID columns) with a LIMIT, so its cost does not
grow with the registry and its plan does not depend on statistics: no IN-subquery whose row
estimate could flip a plan, no GROUP BY over a range. Name lookups use the name pair tokens
("~jana horvathova"): the last two words typed are one key — or one range while the last word is
being typed — whatever order the name was stored in. Namesakes come newest first, since the
record a user just created is the likeliest to be created again. Typos are looked up through the
vocabulary (models.name_vocabulary), also in a word's first letters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rapidfuzz.distance import DamerauLevenshtein
from sqlalchemy import ColumnElement, Select, bindparam, exists, func, literal, or_, select, union_all
from sqlalchemy.orm import aliased

from models import Contact, ContactSearchToken, Customer, CustomerSearchToken, GlobalSettings, NameWordVariant
from models.name_vocabulary import TYPO_MIN_LENGTH, WORD_LENGTH, word_variants
from models.names import TITLES, name_words
from models.search_index import (
    PAIR_MARK,
    pair_token,
    phone_tokens,
    prefix_upper_bound,
    search_terms,
    whole_name_token,
)
from services.matching import Probe
from services.transactions import DbSession

PER_LOOKUP = 25  # rows one index lookup may return (the list shows ten)
VISIBLE_FENCE = 400  # token rows an operator's lookup looks through for records they may view
PER_TYPO_LOOKUP = 12  # rows of corrected names: a typo is weaker evidence than what was typed
COUNT_CAP = 1000  # frequencies are counted up to here: beyond, a name is simply common
CORRECTIONS = 4  # typo corrections tried per word


@dataclass
class Found:
    """Candidate ids per table, and which of them the typed text itself finds (a search hit is
    listed even when its name does not explain the match, e.g. a word of its e-mail)."""

    customers: set[int] = field(default_factory=set)
    contacts: set[int] = field(default_factory=set)
    searched_customers: set[int] = field(default_factory=set)
    searched_contacts: set[int] = field(default_factory=set)
    typed_key: str | None = None  # the token (or, while typing, the token range) the typed name is
    typed_prefix: bool = False

    def add(self, table: str, ids, *, searched: bool = False) -> None:
        ids = set(ids)
        (self.customers if table == "customer" else self.contacts).update(ids)
        if searched:
            (self.searched_customers if table == "customer" else self.searched_contacts).update(ids)


@dataclass
class Batch:
    """Lookups collected to be sent as one UNION ALL: one round trip instead of a dozen, which
    on a busy PostgreSQL costs more than the lookups themselves. The statements take their values
    as bound parameters, so the same shapes are built (and their cache keys computed) once per
    process, not per keystroke."""

    parts: list[tuple[str, bool, Select]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def slot(self) -> str:
        """A prefix for the next part's parameter names."""
        return f"p{len(self.parts)}_"

    def add(self, table: str, lookup: tuple[Select, dict[str, Any]], *, searched: bool = False) -> None:
        query, params = lookup
        self.parts.append((table, searched, query))
        self.params.update(params)

    def run(self, session: DbSession, found: Found) -> None:
        if not self.parts:
            return
        statement = _union(tuple(query for _table, _searched, query in self.parts))
        for number, owner in session.execute(statement, self.params):
            table, searched, _query = self.parts[number]
            found.add(table, (owner,), searched=searched)
        self.parts.clear()
        self.params.clear()


@lru_cache(maxsize=256)
def _union(queries: tuple[Select, ...]) -> Any:
    branches = []
    for number, query in enumerate(queries):
        inner = query.subquery()
        branches.append(select(literal(number).label("part"), list(inner.c)[0].label("id")))
    return union_all(*branches)


@dataclass(frozen=True)
class TokenTable:
    name: str
    model: type
    owner: Any  # the owner id column of the token table

    def owners(self, condition: ColumnElement, visible: ColumnElement | None, *, newest: bool,
               limit: int = PER_LOOKUP) -> Select:
        """Owners of the tokens meeting `condition` (newest first, or in token order), among the
        records `visible` allows. The token lookup is fenced in a subquery with its own order and
        limit, so no planner walks a whole table in id order to meet the visibility first (a
        merge join over a million customers was the plan PostgreSQL chose without it)."""
        token = self.model.token  # type: ignore[attr-defined]
        order: list[Any] = [self.owner.desc()] if newest else [token, self.owner]
        if visible is None:
            return select(self.owner).where(condition).order_by(*order).limit(limit)
        inner = select(token.label("token"), self.owner.label("owner")).where(condition) \
            .order_by(*order).limit(VISIBLE_FENCE).subquery()
        outer: list[Any] = [inner.c.owner.desc()] if newest else [inner.c.token, inner.c.owner]
        return self.visible_only(select(inner.c.owner), inner.c.owner, visible).order_by(*outer).limit(limit)

    def visible_only(self, query: Select, owner: Any, visible: ColumnElement) -> Select:
        """`query` restricted to owners whose customer `visible` allows."""
        if self.name == "customer":
            query = query.join(Customer, Customer.id == owner)
        else:
            query = query.join(Contact, Contact.id == owner)
            query = query.join(Customer, Customer.id == Contact.customer_id)
        return query.where(visible)

    def started(self, term: str) -> ColumnElement:
        column = self.model.token  # type: ignore[attr-defined]
        return (column >= term) & (column < prefix_upper_bound(term))


TABLES = (TokenTable("customer", CustomerSearchToken, CustomerSearchToken.customer_id),
          TokenTable("contact", ContactSearchToken, ContactSearchToken.contact_id))


def lookup_words(probe: Probe) -> list[str]:
    """The typed name's words to look up, in the order typed: without a trailing legal form or
    titles, whichever kind the name turns out to be."""
    # While typing the kind decides nothing: a legal form typed in Person mode still goes.
    words = name_words(probe.text, company=probe.company is not False or probe.partial)
    return [w for w in words if w not in TITLES] or words


def corrections(session: DbSession, words: list[str]) -> dict[str, list[str]]:
    """Known name words one edit away from each of `words` (two for long words), closest first —
    one query for all of them. A word that is itself a known name word lists itself first."""
    words = [w[:WORD_LENGTH] for w in words]
    variants = {w: word_variants(w) | {w} for w in words}
    wanted = sorted(set().union(*variants.values()))
    rows = {(variant, word) for variant, word in session.execute(_CORRECTIONS, {"variants": wanted})}
    near: dict[str, list[str]] = {w: [w] for w in words if (w, w) in rows}
    if any(len(w) < TYPO_MIN_LENGTH for w in variants):
        variants = {w: v for w, v in variants.items() if len(w) >= TYPO_MIN_LENGTH}
    for word, own in variants.items():
        allowed = 1 if len(word) < 8 else 2
        known = {known for variant, known in rows if variant in own and known != word}
        scored = sorted((DamerauLevenshtein.distance(word, k), k) for k in known)
        near[word] = near.get(word, []) + [k for distance, k in scored if distance <= allowed][:CORRECTIONS]
    return near


_CORRECTIONS = select(NameWordVariant.variant, NameWordVariant.word).where(
    NameWordVariant.variant.in_(bindparam("variants", expanding=True))).limit(400)

Lookup = tuple[Select, dict[str, Any]]


def _exact(table: TokenTable, tokens: list[str], visible, slot: str, limit: int = PER_LOOKUP) -> Lookup:
    """Owners of any of `tokens`, newest first."""
    return _owners(table, "exact", slot, limit, visible), {f"{slot}tokens": sorted(set(tokens))}


def _range(table: TokenTable, low: str, visible, slot: str) -> Lookup:
    """Tokens that start with `low` and go on (the exact one is `_exact`'s)."""
    return _owners(table, "range", slot, PER_LOOKUP, visible), {f"{slot}low": low,
                                                                 f"{slot}high": prefix_upper_bound(low)}


def _both_started(table: TokenTable, first: str, last: str, visible, slot: str) -> Lookup:
    """Pairs whose words start with `first` and `last` — both perhaps unfinished ("kov pet"):
    a range over the pairs starting with the longer one (pairs are stored in both orders),
    filtered by the other on the index entries."""
    drive, other = (first, last) if len(first) >= len(last) else (last, first)
    low = pair_token(drive, "")[:-1]  # "~kov"
    return _owners(table, "both", slot, PER_LOOKUP, visible), {
        f"{slot}low": low, f"{slot}high": prefix_upper_bound(low), f"{slot}like": f"{low}% {other}%"}


def _owners(table: TokenTable, kind: str, slot: str, limit: int, visible) -> Select:
    if visible is None:
        return _cached_owners(table.name, kind, slot, limit)
    return _build_owners(table, kind, slot, limit, visible)


@lru_cache(maxsize=512)
def _cached_owners(table_name: str, kind: str, slot: str, limit: int) -> Select:
    return _build_owners(next(t for t in TABLES if t.name == table_name), kind, slot, limit, None)


def _build_owners(table: TokenTable, kind: str, slot: str, limit: int, visible) -> Select:
    column = table.model.token  # type: ignore[attr-defined]
    if kind == "exact":
        return table.owners(column.in_(bindparam(f"{slot}tokens", expanding=True)), visible,
                            newest=True, limit=limit)
    condition = (column > bindparam(f"{slot}low")) & (column < bindparam(f"{slot}high"))
    if kind == "both":
        condition = condition & column.like(bindparam(f"{slot}like"))
    return table.owners(condition, visible, newest=False, limit=limit)


def _typo_keys(session: DbSession, words: list[str]) -> tuple[list[str], list[str]]:
    """Tokens of the typed name with one word corrected, and with both of the last two corrected
    (tried only when nothing else is found)."""
    near = corrections(session, words[-2:])
    fixed = {w: [c for c in near.get(w, []) if c != w] for w in words[-2:]}
    if len(words) == 1:
        return fixed[words[0]], []
    first, last = words[-2], words[-1]
    one = [pair_token(c, last) for c in fixed[first]] + [pair_token(first, c) for c in fixed[last]]
    return one, [pair_token(a, b) for a in fixed[first][:2] for b in fixed[last][:2]]


def add_name_lookups(session: DbSession, probe: Probe, visible: ColumnElement | None, batch: Batch,
                     found: Found) -> list[str]:
    """Add the lookups of records whose name is, starts with (a live search) or is a typo away
    from the typed one; return the keys with both last words corrected, for `find_by_name_again`."""
    words = [w for w in lookup_words(probe) if len(w) >= 2] or lookup_words(probe)
    if not words:
        return []
    key = words[0] if len(words) == 1 else pair_token(words[-2], words[-1])
    typo_keys, both_wrong = _typo_keys(session, words)
    whole = whole_name_token(words)
    searched = probe.partial  # a live search lists whatever its words find, a check only names
    for table in TABLES:
        batch.add(table.name, _exact(table, [whole], visible, batch.slot()))  # type: ignore[list-item]
        batch.add(table.name, _exact(table, [key], visible, batch.slot()), searched=searched)
        if probe.partial:
            batch.add(table.name, _range(table, key, visible, batch.slot()), searched=True)
            if len(words) > 1:
                batch.add(table.name, _both_started(table, words[-2], words[-1], visible, batch.slot()),
                          searched=True)
        if typo_keys:
            batch.add(table.name, _exact(table, typo_keys, visible, batch.slot(), PER_TYPO_LOOKUP))
    found.typed_key, found.typed_prefix = key, probe.partial
    return both_wrong


def find_by_name_again(session: DbSession, probe: Probe, visible: ColumnElement | None, found: Found,
                       both_wrong: list[str]) -> None:
    """When the lookups found nothing: a typo in both of the last two words, and (a live search)
    the customers list's own search."""
    if both_wrong and not (found.customers or found.contacts):
        batch = Batch()
        for table in TABLES:
            batch.add(table.name, _exact(table, both_wrong, visible, batch.slot(), PER_TYPO_LOOKUP))
        batch.run(session, found)
    if probe.partial and probe.text.strip() and not (found.searched_customers or found.searched_contacts):
        _find_as_the_list_searches(session, probe, visible, found)


def find_by_name(session: DbSession, probe: Probe, visible: ColumnElement | None, found: Found) -> None:
    """Records whose name is, starts with (a live search) or is a typo away from the typed one."""
    batch = Batch()
    both_wrong = add_name_lookups(session, probe, visible, batch, found)
    batch.run(session, found)
    find_by_name_again(session, probe, visible, found, both_wrong)


def _find_as_the_list_searches(session: DbSession, probe: Probe, visible, found: Found) -> None:
    """The customers list's own rule (every typed word starts a word of the record — its name,
    e-mail, phone) for several words the name pairs did not answer ("kovac gmail"), so the
    modal does not miss what the list would find. Driven by the longest word's range, fenced,
    the others checked per record on the token index: no IN-subquery for a planner to misjudge."""
    terms = sorted(search_terms(probe.text), key=len, reverse=True)
    if not terms:
        return
    batch = Batch()
    for table in TABLES:
        column = table.model.token  # type: ignore[attr-defined]
        inner = select(table.owner.label("owner")).where(table.started(terms[0])) \
            .order_by(column, table.owner).limit(VISIBLE_FENCE).subquery()
        other: Any = aliased(table.model)
        others = [exists().where(getattr(other, table.owner.key) == inner.c.owner,
                                 other.token >= term, other.token < prefix_upper_bound(term))
                  for term in terms[1:]]
        query = select(inner.c.owner).where(*others)
        if visible is not None:
            query = table.visible_only(query, inner.c.owner, visible)
        batch.add(table.name, (query.distinct().limit(PER_LOOKUP), {}), searched=True)
    batch.run(session, found)


def add_key_lookups(probe: Probe, batch: Batch) -> None:
    """Add the lookups of records sharing an identifying key, whoever may see them (a hidden one
    is described without its details)."""
    if probe.emails:
        emails = sorted(probe.emails | probe.email_forms)
        for table, column in (("customer", "email"), ("customer", "secondary_email"), ("contact", "contact")):
            slot = batch.slot()
            batch.add(table, (_by_email(column, slot), {f"{slot}emails": emails}))
    if probe.phones:
        digits = [max(phone_tokens(phone), key=len) for phone in probe.phones]  # the international number
        for token_table in TABLES:
            batch.add(token_table.name, _exact(token_table, digits, None, batch.slot()))
    ids = [v for v in (probe.registration_number, probe.vat_id) if v]
    if ids:
        slot = batch.slot()
        batch.add("customer", (_by_company_ids(slot), {f"{slot}ids": ids}))


@lru_cache(maxsize=64)
def _by_email(column: str, slot: str) -> Select:
    """One e-mail column per branch: an OR of two would let SQLite's statistics decide between both
    indexes and a scan of every customer (it scans when no customer has a second e-mail)."""
    emails: Any = bindparam(f"{slot}emails", expanding=True)
    if column == "contact":
        return select(Contact.id).where(func.lower(Contact.email).in_(emails)).limit(PER_LOOKUP)
    return select(Customer.id).where(func.lower(getattr(Customer, column)).in_(emails)).limit(PER_LOOKUP)


@lru_cache(maxsize=64)
def _by_company_ids(slot: str) -> Select:
    ids: Any = bindparam(f"{slot}ids", expanding=True)
    return select(Customer.id).where(or_(Customer.registration_number.in_(ids),
                                         Customer.vat_id.in_(ids))).limit(PER_LOOKUP)


@dataclass
class Counts:
    """What weighing needs to know of the registry as a whole."""

    namesakes: dict[str, int]  # records bearing each whole-name token asked about
    started: int  # records bearing a token that starts with the typed prefix (up to COUNT_CAP)
    registry: int  # about how many records there are
    threshold: int | None  # the maintainer's similarity threshold for names, if set


STARTED_MARK, SIZE_MARK, THRESHOLD_MARK = PAIR_MARK * 2, "#", "%"  # no token is any of them


@lru_cache(maxsize=4)
def _count_statement(tokens: bool, prefix: bool) -> Any:
    branches: list[Any] = [select(literal(SIZE_MARK).label("token"), func.max(Customer.id).label("number")),
                           select(literal(SIZE_MARK).label("token"), func.max(Contact.id).label("number")),
                           select(literal(THRESHOLD_MARK), GlobalSettings.duplicate_name_threshold)
                           .where(GlobalSettings.id == 1)]
    for table in TABLES:
        column = table.model.token  # type: ignore[attr-defined]
        if tokens:
            branches.append(select(column.label("token"), func.count().label("number"))
                            .where(column.in_(bindparam("tokens", expanding=True))).group_by(column))
        if prefix:
            capped = select(table.owner).where((column >= bindparam("low")) & (column < bindparam("high"))) \
                .limit(COUNT_CAP).subquery()
            branches.append(select(literal(STARTED_MARK).label("token"), func.count().label("number"))
                            .select_from(capped))
    return union_all(*branches)


def count_tokens(session: DbSession, tokens: set[str], prefix: str | None = None) -> Counts:
    """How many records bear each of `tokens` (whole names: the namesakes), how many bear a token
    starting with `prefix` (up to COUNT_CAP), about how many records there are (the highest ids,
    read from the indexes) and the similarity threshold — in one statement, one round trip."""
    counts: dict[str, int] = dict.fromkeys(tokens, 0)
    params: dict[str, Any] = {}
    if tokens:
        params["tokens"] = sorted(tokens)
    if prefix is not None:
        params.update(low=prefix, high=prefix_upper_bound(prefix))
    statement = _count_statement(bool(tokens), prefix is not None)
    started = registry = 0
    threshold = None
    for token, number in session.execute(statement, params):
        if token == SIZE_MARK:
            registry += number or 0
        elif token == STARTED_MARK:
            started += number
        elif token == THRESHOLD_MARK:
            threshold = number
        else:
            counts[token] += number
    return Counts(counts, min(started, COUNT_CAP), registry, threshold)


def name_token(words: tuple[str, ...] | list[str]) -> str | None:
    """The one token all records with exactly this name share."""
    return whole_name_token(words)
