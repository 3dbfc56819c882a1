"""The vocabulary of name words, for finding a name typed with a typo anywhere — also in its
first letters, where a prefix lookup cannot help ("Tarta" for "Tatra").

Every distinct word of a customer's or contact's name is kept once, with its variants one
deletion away (the symmetric-delete method): two words within one edit — a letter wrong, missing,
added, or two swapped — share a variant. The table grows with the distinct words of the registry
(tens of thousands), not with its records, so a lookup is a handful of B-tree probes at any size.
Words are added in the same flush as the record (before_flush), never removed: a word nobody
bears any more only yields a candidate without records.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Model, binary_string

WORD_LENGTH = 64  # models.search_index.TOKEN_LENGTH
TYPO_MIN_LENGTH = 4  # shorter words have too many neighbours for a typo to say anything


class NameWord(Model):
    """A word that occurs in some customer's or contact's name."""

    __tablename__ = "name_word"
    word: Mapped[str] = mapped_column(binary_string(WORD_LENGTH), primary_key=True)


class NameWordVariant(Model):
    """`word` with one letter deleted (or the word itself): the key typos are looked up by."""

    __tablename__ = "name_word_variant"
    variant: Mapped[str] = mapped_column(binary_string(WORD_LENGTH), primary_key=True)
    word: Mapped[str] = mapped_column(binary_string(WORD_LENGTH), primary_key=True)


def word_variants(word: str) -> set[str]:
    """The word and every form of it with one letter deleted. A word is kept to WORD_LENGTH
    letters, as the vocabulary stores it: n variants of n letters each must not let a pasted
    100,000-letter "name" cost gigabytes."""
    word = word[:WORD_LENGTH]
    if len(word) < TYPO_MIN_LENGTH:
        return {word}
    return {word} | {word[:i] + word[i + 1:] for i in range(len(word))}


def _insert_ignoring_existing(connection: Connection, table, rows: list[dict]) -> None:
    if not rows:
        return
    statement: Any
    if connection.dialect.name == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing()
    elif connection.dialect.name == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing()
    else:  # pragma: no cover - the product runs on SQLite and PostgreSQL
        statement = insert(table)
    connection.execute(statement, rows)


def add_words(connection: Connection, words: Iterable[str]) -> None:
    """Add the words not yet known, with their variants. Sorted, so two transactions adding
    the same new words wait for each other in one order instead of deadlocking."""
    wanted = sorted({w[:WORD_LENGTH] for w in words if w})
    if not wanted:
        return
    known: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        known.update(connection.scalars(select(NameWord.word).where(NameWord.word.in_(chunk))))
    new = [w for w in wanted if w not in known]
    _insert_ignoring_existing(connection, NameWord.__table__, [{"word": w} for w in new])
    variants = sorted({(v, w) for w in new for v in word_variants(w)})
    _insert_ignoring_existing(connection, NameWordVariant.__table__,
                              [{"variant": v, "word": w} for v, w in variants])
