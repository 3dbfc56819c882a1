"""The search index behind every "ignores case and diacritics" search.

Each customer and contact keeps a set of folded word tokens (names, e-mail parts, phone
digits). A search term matches a record when it is a prefix of one of its tokens, which both
databases answer from a B-tree range on (token, id) instead of scanning every row with
ILIKE '%term%'. The tokens are refreshed in `before_flush`, so every write path — forms,
wizard, API, importer, CLI — keeps them current without remembering to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import phonenumbers
from sqlalchemy import ForeignKey, Index, String, event, inspect
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Model, binary_string
from models.name_vocabulary import add_words
from models.names import fold

TOKEN_LENGTH = 64
_WORD = re.compile(r"[a-z0-9]+")
_PHONE_QUERY = re.compile(r"^[\d\s+().\-/]+$")
# Name pairs ("~jana horvathova") sort after every word token, so a search range over words
# ("nov" ≤ token < "now") never meets them.
PAIR_MARK = "~"
PAIR_WORDS = 6  # pairs of the first six name words: at most thirty tokens, for the longest names
# The whole name ("=kovac peter", words sorted) sorts between digits and letters, so no search
# range meets it either; it counts namesakes exactly, which an e-mail's words would blur.
NAME_MARK = "="


def words(*texts: str | None) -> set[str]:
    """The folded words of `texts`, e-mail addresses split at their punctuation."""
    found: set[str] = set()
    for text in texts:
        found.update(w[:TOKEN_LENGTH] for w in _WORD.findall(fold(text)))
    return found


def pair_token(first: str, second: str) -> str:
    return f"{PAIR_MARK}{first} {second}"[:TOKEN_LENGTH]


def whole_name_token(name_words: Iterable[str]) -> str | None:
    words = sorted(name_words)
    return f"{NAME_MARK}{' '.join(words)}"[:TOKEN_LENGTH] if words else None


def name_tokens(name_words: Iterable[str]) -> set[str]:
    """The whole-name token and the pair tokens of a name (see `name_pair_tokens`)."""
    name_words = list(name_words)
    whole = whole_name_token(name_words)
    return name_pair_tokens(name_words) | ({whole} if whole else set())


def name_pair_tokens(name_words: Iterable[str]) -> set[str]:
    """Every ordered pair of a name's words, so "jana horv" — the words typed so far, the last
    one unfinished — is one B-tree range over "~jana horv…", and an exact namesake one key,
    whatever the order the name was written in."""
    distinct = list(dict.fromkeys(name_words))[:PAIR_WORDS]
    return {pair_token(a, b) for a in distinct for b in distinct if a != b}


def phone_tokens(e164: str | None) -> set[str]:
    """Digits a user may type for a stored E.164 number: with country code, national
    significant number, and national form with trunk prefix ("0903…")."""
    if not e164:
        return set()
    tokens = {re.sub(r"\D", "", e164)}
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return tokens
    tokens.add(str(number.national_number))
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    tokens.add(re.sub(r"\D", "", national))
    return {t for t in tokens if t}


def search_terms(query: str | None) -> list[str]:
    """Split a typed query into terms. A query that looks like a phone number becomes one
    term of its digits ("+421 903 12" → "42190312"), since people type numbers in groups."""
    if not query or not query.strip():
        return []
    query = query.strip()
    digits = re.sub(r"\D", "", query)
    if _PHONE_QUERY.match(query) and len(digits) >= 3:
        if digits.startswith("00"):
            digits = digits[2:]
        return [digits[:TOKEN_LENGTH]]
    return sorted(words(query))


def prefix_upper_bound(term: str) -> str:
    """The smallest string greater than every string starting with `term` (ASCII tokens)."""
    return term[:-1] + chr(ord(term[-1]) + 1)


def is_word(token: str) -> bool:
    """A word token (what a list search meets), not a name pair or whole name (duplicates)."""
    return not token.startswith((PAIR_MARK, NAME_MARK))


LISTED = sql_text("sort_name IS NOT NULL")  # the tokens a list search reads (partial indexes)


class CustomerSearchToken(Model):
    """One searchable word of a customer. Primary key (token, customer_id) is the index.

    `sort_name` is the customer's while its word tokens are listed (a live customer): a list
    search reads a page of matches in name order from the index (token, sort_name, customer_id)
    alone, however many match. NULL: a name pair or whole name, or a merged-away customer."""

    __tablename__ = "customer_search_token"
    __table_args__ = (
        Index("ix_customer_search_token_listed", "token", "sort_name", "customer_id",
              sqlite_where=LISTED, postgresql_where=LISTED),
    )
    token: Mapped[str] = mapped_column(binary_string(TOKEN_LENGTH), primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    sort_name: Mapped[str | None] = mapped_column(String(255))


class ContactSearchToken(Model):
    """One searchable word of a contact (`sort_name`: as on CustomerSearchToken)."""

    __tablename__ = "contact_search_token"
    __table_args__ = (
        Index("ix_contact_search_token_listed", "token", "sort_name", "contact_id",
              sqlite_where=LISTED, postgresql_where=LISTED),
    )
    token: Mapped[str] = mapped_column(binary_string(TOKEN_LENGTH), primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    sort_name: Mapped[str | None] = mapped_column(String(200))


NEW_NAME_WORDS = "_new_name_words"  # set by refresh_derived: the vocabulary the flush must know


def sync_tokens(collection: list, wanted: Iterable[str], token_model, listed_as: str | None) -> None:
    """Make `collection` hold exactly `wanted`, keeping rows that stay (deleting and
    re-inserting the same (token, id) key in one flush would collide), each word token listed
    under `listed_as` (the record's sort name; None: not listed)."""
    def listing(token: str) -> str | None:
        return listed_as if is_word(token) else None

    wanted = set(wanted)
    for row in list(collection):
        if row.token in wanted:
            wanted.discard(row.token)
            if row.sort_name != listing(row.token):
                row.sort_name = listing(row.token)
        else:
            collection.remove(row)
    collection.extend(token_model(token=token, sort_name=listing(token)) for token in sorted(wanted))


def inputs_changed(obj, fields: Iterable[str]) -> bool:
    """Whether derived values of `obj` may be stale: it is new, or one of `fields` changed.
    Saves loading a record's tokens when only, say, its manager or status changed."""
    state = inspect(obj)
    if state.transient or state.pending:
        return True
    return any(state.attrs[name].history.has_changes() for name in fields)


def _refresh_derived(session: Session, _flush_context, _instances) -> None:
    name_words: set[str] = set()
    for obj in list(session.new) + list(session.dirty):
        refresh = getattr(obj, "refresh_derived", None)
        if refresh is not None and obj not in session.deleted:
            refresh()
            name_words.update(obj.__dict__.pop(NEW_NAME_WORDS, ()))
    if name_words:
        add_words(session.connection(), name_words)


event.listen(Session, "before_flush", _refresh_derived)
