"""Weighing the evidence that a stored record is the one being typed (pure, no database).

Each field that both sides have either agrees or disagrees, and each outcome carries a weight in
bits — the Fellegi–Sunter agreement weight log2(m/u), where m is how often the field agrees when
the records are the same and u how often it agrees by chance. Identifying keys (e-mail, phone,
company ID, VAT ID) agree by chance almost never, so one of them is strong evidence and the
server refuses a new record that shares it. A name agrees by chance as often as it is common:
its weight comes from how many records in the registry bear it, so a rare name outranks a common
one and a rare name with a typo still ranks above a crowd of namesakes. A person's name alone
never refuses a new record — in a registry of a million people common names have hundreds of
namesakes — it only lists them. A company's exact name that no other record bears refuses,
unless the company IDs differ: registers do not give two companies one name.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from rapidfuzz.distance import DamerauLevenshtein

from models.names import name_key, name_words

__all__ = ["Evidence", "Probe", "Subject", "compact_id", "name_key", "name_words", "weigh"]

# log2(m/u) for agreement and log2((1-m)/(1-u)) for disagreement, with m and u as estimated for
# a service desk's registry: people keep an e-mail for years but have several; a company ID
# differs only between different legal entities.
KEY_WEIGHTS = {  # field: (agreement, disagreement, reason)
    "email": (20.0, -2.0, "same e-mail"),
    "phone": (18.0, -1.0, "same phone"),
    "registration_number": (22.0, -8.0, "same company ID"),
    "vat_id": (22.0, -8.0, "same VAT ID"),
}
NAME_M = 0.9  # how often a duplicate carries the same name (the rest: typos, marriages, renames)
TYPO_COST = 3.0  # bits a typo costs: a near name is less telling than the same one
PREFIX_COST = 4.0  # bits an unfinished name costs: what is typed so far fits longer names too
PART_COST = 2.0  # bits a part of a name costs ("Kováč" for "Kováč, Peter"): whole words, fewer fits
MAX_NAME_WEIGHT = 20.0


def compact_id(value: str | None) -> str:
    """A company ID or VAT ID without spaces, dots and dashes, upper-cased ("sk 2020 1234"), its
    digits as ASCII digits whatever script they were typed in ("１２３" and "١٢٣" are "123")."""
    text = unicodedata.normalize("NFKC", value or "")
    text = "".join(str(unicodedata.digit(c)) if c.isdigit() and not c.isascii() else c for c in text)
    return re.sub(r"[\s.\-/]", "", text).upper()


@lru_cache(maxsize=256)
def _typed_words(text: str, company: bool) -> list[str]:
    return name_words(text, company=company)


@dataclass(frozen=True)
class Probe:
    """What the user typed, normalised. `text` is the name as typed; `company` None means the
    kind is not known (the live list searches both kinds); `partial` that the last word may be
    unfinished (typing in progress)."""

    text: str = ""
    company: bool | None = None
    partial: bool = False
    emails: frozenset[str] = frozenset()  # lower-cased
    # The e-mails as SQLite's lower() folds them (ASCII letters only), so a stored "ŠTEFAN@…"
    # typed again identically is found there too.
    email_forms: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()  # E.164
    registration_number: str = ""  # compact_id
    vat_id: str = ""

    def words(self, *, company: bool) -> list[str]:
        """The typed name's words as a name of that kind is compared, in the order typed."""
        return _typed_words(self.text, company)

    def keys(self) -> list[tuple[str, str]]:
        """The identifying values a concurrent create could share with this one."""
        keys = [("email", e) for e in self.emails] + [("phone", p) for p in self.phones]
        keys += [(f, v) for f, v in (("registration_number", self.registration_number),
                                      ("vat_id", self.vat_id)) if v]
        if self.company is not False and self.text:
            keys.append(("company_name", name_key(self.text, company=True)))
        return sorted(keys)


@dataclass(frozen=True)
class Subject:
    """A stored customer or contact in comparable form."""

    company: bool
    words: tuple[str, ...]
    emails: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()
    registration_number: str = ""
    vat_id: str = ""


@dataclass
class Evidence:
    """Why a subject may be the probed record, with the total weight in bits."""

    reasons: list[str] = field(default_factory=list)
    key_reasons: list[str] = field(default_factory=list)  # identifying keys that agree
    weight: float = 0.0
    name: str = ""  # "same", "typo", "prefix" or ""
    ids_differ: bool = False

    @property
    def strong(self) -> bool:
        return bool(self.key_reasons)


def _word_matches(typed: str, stored: str, *, prefix: bool) -> str:
    """"same", "prefix" (what is typed so far starts the stored word) or "typo" (one edit
    away, for words of four letters or more), or "" when the words are unrelated."""
    if typed == stored:
        return "same"
    if prefix and stored.startswith(typed):
        return "prefix"
    if min(len(typed), len(stored)) >= 4 and DamerauLevenshtein.distance(typed, stored) <= 1:
        return "typo"
    if prefix and len(typed) >= 5 and DamerauLevenshtein.distance(typed, stored[:len(typed)]) <= 1:
        return "typo"
    return ""


def name_relation(typed: list[str], stored: tuple[str, ...], *, partial: bool) -> tuple[str, int]:
    """How a typed name relates to a stored one, any word order: ("same" | "typo" | "part" |
    "prefix" | "", typos). "same" and "typo": every word of both names pairs up, exactly or one
    edit apart; "part": the typed words are whole words of the stored name, which has more;
    "prefix" (a live search): a typed word is the start of a stored one. Every typed word must
    match a different stored word."""
    if not typed or not stored:
        return "", 0
    free = list(stored)
    partly, typos = False, 0
    # Exact words first, so "jana jan" does not let "jan" take the stored "jana" by prefix.
    order = sorted(range(len(typed)), key=lambda i: typed[i] not in free)
    for index in order:
        word = typed[index]
        best, best_at = "", -1
        for at, candidate in enumerate(free):
            how = _word_matches(word, candidate, prefix=partial)
            if how == "same":
                best, best_at = how, at
                break
            if how and not best:
                best, best_at = how, at
        if not best:
            return "", 0
        free.pop(best_at)
        typos += best == "typo"
        partly = partly or best == "prefix"
    if partly:
        return "prefix", typos
    if free:
        return "part", typos  # every typed word is a whole word of the name, which has more
    return ("typo" if typos else "same"), typos


@lru_cache(maxsize=8192)
def _related(typed: tuple[str, ...], stored: tuple[str, ...], partial: bool) -> tuple[str, int]:
    """name_relation, remembered: weighing asks it twice per candidate, and namesakes share it."""
    return name_relation(list(typed), stored, partial=partial)


def name_weight(namesakes: int, registry: int) -> float:
    """log2(m/u) with u the share of the registry bearing the name: rare names weigh more."""
    share = max(namesakes, 1) / max(registry, namesakes, 1)
    return min(MAX_NAME_WEIGHT, math.log2(NAME_M / share)) if share < NAME_M else 0.0


def weigh(probe: Probe, subject: Subject, *, frequency: Callable[[str, Subject], int],
          registry: int) -> Evidence | None:
    """The evidence that `subject` is the record `probe` describes, or None when nothing agrees.
    `frequency(relation, subject)` tells how many records bear the subject's name ("same",
    "typo") or start with what is typed ("prefix"); `registry` how many records there are."""
    evidence = Evidence()
    pairs = (("email", probe.emails, subject.emails), ("phone", probe.phones, subject.phones),
             ("registration_number", probe.registration_number, subject.registration_number),
             ("vat_id", probe.vat_id, subject.vat_id))
    for key, typed, stored in pairs:
        if not (typed and stored):
            continue
        agree, disagree, reason = KEY_WEIGHTS[key]
        if typed == stored if isinstance(typed, str) else not typed.isdisjoint(stored):  # type: ignore[union-attr]
            evidence.weight += agree
            evidence.key_reasons.append(reason)
        else:
            evidence.weight += disagree
            evidence.ids_differ = evidence.ids_differ or isinstance(typed, str)
    typed_words = probe.words(company=subject.company)
    if probe.company is not None and probe.company != subject.company and not probe.partial:
        typed_words = []  # a company's name and a person's name say nothing about each other
    relation, typos = _related(tuple(typed_words), subject.words, probe.partial)
    namesakes = frequency(relation, subject) if relation else 0
    weight = name_weight(namesakes, registry)
    if relation == "same":
        evidence.weight += weight
        evidence.reasons.append("same name" if namesakes <= 1 else f"same name ({namesakes} records bear it)")
    elif relation == "typo":
        evidence.weight += max(weight - TYPO_COST * typos, 1.0)
        evidence.reasons.append("similar name (a typo?)")
    elif relation in ("prefix", "part"):
        cost = PREFIX_COST if relation == "prefix" else PART_COST
        evidence.weight += max(weight - cost - TYPO_COST * typos, 0.5)
        evidence.reasons.append("similar name (a typo?)" if typos else "name starts with what you typed")
    evidence.name = relation
    evidence.reasons = evidence.key_reasons + evidence.reasons
    if evidence.ids_differ:
        evidence.reasons.append("but a different company ID")
    unique_company = relation == "same" and subject.company and probe.company and namesakes <= 1
    if unique_company and not evidence.ids_differ:
        evidence.key_reasons.append("same company name")  # registers give no two companies one name
        evidence.reasons[evidence.reasons.index("same name")] = "same company name"
    return evidence if evidence.reasons and (evidence.key_reasons or relation) else None
