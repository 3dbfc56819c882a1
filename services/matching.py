"""Pure normalisation and scoring for duplicate detection (no database).

Two records are the same customer when a strong key agrees — e-mail (case-insensitive), phone
(as E.164), company ID (IČO) or VAT ID (spaces ignored), or the identical normalised name — or
probably the same when their names are similar above the maintainer's threshold. Names are
compared after folding case and diacritics ("Kováč" = "kovac"), dropping punctuation and company
legal forms ("ACME, s.r.o." = "Acme"), in any word order ("Peter Kováč" = "Kováč Peter").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from models.search_index import fold

_WORD = re.compile(r"[a-z0-9]+")
_APOSTROPHES = re.compile(r"['’`´]")

# Legal forms as word sequences after folding and splitting at punctuation: "spol. s r.o." is
# ("spol", "s", "r", "o"). Removed only at the end of a name, where legal forms stand, so a
# word such as "as" inside a name survives.
LEGAL_FORMS: tuple[tuple[str, ...], ...] = tuple(sorted({
    tuple(form.split()) for form in (
        "spol s r o", "s r o", "sro", "spol", "a s", "as", "k s", "ks", "v o s", "vos", "s p", "se",
        "ltd", "limited", "plc", "llp", "llc", "l l c", "inc", "incorporated", "corp", "corporation",
        "co", "company", "gmbh", "mbh", "ag", "kg", "ohg", "ug", "e v", "sa", "s a", "sarl", "bv",
        "b v", "nv", "n v", "oy", "ab", "aps", "as", "sp z o o", "s c", "z s", "o p s", "o z",
    )
}, key=len, reverse=True))

STRONG_REASONS = ("same e-mail", "same phone", "same company ID", "same VAT ID", "same name")


def name_words(text: str | None, *, company: bool) -> list[str]:
    """Folded words of a name; for a company without its trailing legal forms (and "&")."""
    words = _WORD.findall(_APOSTROPHES.sub("", fold(text)))  # "O'Brien" is one word
    if company:
        stripped = True
        while stripped and len(words) > 1:
            stripped = False
            for form in LEGAL_FORMS:
                if len(form) < len(words) and tuple(words[-len(form):]) == form:
                    del words[-len(form):]
                    stripped = True
                    break
    return words


def name_key(text: str | None, *, company: bool) -> str:
    """The comparable form of a name: folded words without legal forms, in sorted order."""
    return " ".join(sorted(name_words(text, company=company)))


def compact_id(value: str | None) -> str:
    """A company ID or VAT ID without spaces, dots and dashes, upper-cased ("sk 2020 1234")."""
    return re.sub(r"[\s.\-/]", "", value or "").upper()


def name_similarity(a: str, b: str) -> int:
    """0–100: how alike two name keys are (rapidfuzz's token-sort ratio, order-insensitive)."""
    if not a or not b:
        return 0
    return round(fuzz.token_sort_ratio(a, b))


@dataclass(frozen=True)
class Probe:
    """What the user typed, normalised: the record to look for."""

    company: bool
    name_key: str
    email: str | None = None  # lower-cased
    phone: str | None = None  # E.164
    registration_number: str | None = None  # compact_id
    vat_id: str | None = None  # compact_id


@dataclass(frozen=True)
class Subject:
    """A stored customer or contact in comparable form."""

    company: bool
    name_key: str
    emails: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()
    registration_number: str = ""
    vat_id: str = ""


@dataclass
class Score:
    reasons: list[str] = field(default_factory=list)
    similarity: int = 0

    @property
    def strong(self) -> bool:
        return any(r in STRONG_REASONS for r in self.reasons)

    @property
    def value(self) -> int:
        """Strong keys outrank any name likeness; more agreeing keys outrank fewer."""
        return 100 * sum(r in STRONG_REASONS for r in self.reasons) + self.similarity


def score(probe: Probe, subject: Subject, threshold: int) -> Score | None:
    """Why `subject` may be the record `probe` describes, or None when nothing agrees.
    Names of a company and of a person are never compared with each other."""
    result = Score()
    if probe.email and probe.email in subject.emails:
        result.reasons.append("same e-mail")
    if probe.phone and probe.phone in subject.phones:
        result.reasons.append("same phone")
    if probe.registration_number and probe.registration_number == subject.registration_number:
        result.reasons.append("same company ID")
    if probe.vat_id and probe.vat_id == subject.vat_id:
        result.reasons.append("same VAT ID")
    if probe.company == subject.company and probe.name_key:
        similarity = name_similarity(probe.name_key, subject.name_key)
        if similarity == 100:
            result.reasons.append("same name")
            result.similarity = 100
        elif similarity >= threshold:
            result.reasons.append(f"similar name ({similarity} %)")
            result.similarity = similarity
    return result if result.reasons else None
