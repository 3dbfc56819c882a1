"""Names in comparable form, shared by the search index (models.search_index) and duplicate
matching (services.matching). Pure functions, no database.

A name becomes its folded words (case and diacritics ignored: "Kováč" → "kovac"). A company name
loses its trailing legal form in any spelling — "s.r.o.", "s. r. o.", "spol. s r. o.", "a.s.",
"G.m.b.H." — because letters split at dots are joined before the comparison; a person's name
loses academic titles ("Ing. Peter Kováč, PhD."), which people write or leave out at will.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Letters NFKD does not decompose into a base letter plus a mark.
_EXTRA_FOLDS = str.maketrans({"ß": "ss", "ł": "l", "đ": "d", "ø": "o", "æ": "ae", "œ": "oe"})
_WORD = re.compile(r"[a-z0-9]+")
_APOSTROPHES = re.compile(r"['’`´]")

# Legal forms with their letters joined: "spol. s r. o." is "spolsro", "G.m.b.H." is "gmbh".
LEGAL_FORMS = frozenset({
    "spolsro", "sro", "spol", "as", "ks", "vos", "sp", "se", "ops", "oz", "zs", "sz", "druzstvo",
    "ltd", "limited", "plc", "llp", "llc", "inc", "incorporated", "corp", "corporation", "co",
    "company", "gmbh", "mbh", "ag", "kg", "ohg", "ug", "ev", "sa", "sarl", "bv", "nv", "oy", "ab",
    "aps", "spzoo", "sc", "kft", "zrt", "nyrt", "bt", "doo", "srl", "spa", "sas", "snc", "ou",
})
LONGEST_FORM = 5  # words a legal form may be written in ("s. r. o." is three, "sp. z o. o." five)
# Academic and professional titles written before or after Central-European names.
TITLES = frozenset({
    "ing", "mgr", "bc", "phd", "phdr", "mudr", "judr", "rndr", "paeddr", "mvdr", "mddr", "pharmdr",
    "thdr", "thlic", "artd", "csc", "drsc", "doc", "prof", "dr", "dipl", "mba", "msc", "bsc",
    "llm", "dis", "akad", "arch", "ingarch", "mag",
})  # not "Ma", "Pan", "Mr": surnames and words a live search would drop half-typed


def fold(text: str | None) -> str:
    """Lower-case `text` without diacritics: "Kováč" → "kovac"."""
    if not text:
        return ""
    lowered = text.casefold().translate(_EXTRA_FOLDS)
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def folded_words(text: str | None) -> list[str]:
    """The folded words of `text` in their order ("O'Brien" is one word)."""
    return _WORD.findall(_APOSTROPHES.sub("", fold(text)))


def _legal_form_at_end(words: list[str]) -> int:
    """How many trailing words form a legal form (0 when none does). A form written in several
    words counts only when they are short pieces ("s r o", "spol s r o"), so a name that merely
    ends in ordinary words is left alone."""
    for size in range(min(LONGEST_FORM, len(words) - 1), 0, -1):
        tail = words[-size:]
        if "".join(tail) in LEGAL_FORMS and (size == 1 or all(len(w) <= 4 for w in tail)):
            return size
    return 0


def name_words(text: str | None, *, company: bool) -> list[str]:
    """Folded words of a name: a company's without its trailing legal forms (and "&"), a
    person's without titles. A name that would lose every word keeps them."""
    return list(_name_words(text or "", company))


@lru_cache(maxsize=65536)  # names repeat (a registry's common names): matching weighs hundreds a lookup
def _name_words(text: str, company: bool) -> tuple[str, ...]:
    words = folded_words(text)
    if company:
        while (size := _legal_form_at_end(words)) and len(words) > size:
            del words[-size:]
        return tuple(words)
    kept = [w for w in words if w not in TITLES]
    return tuple(kept or words)


def name_key(text: str | None, *, company: bool) -> str:
    """The comparable form of a whole name: its words in sorted order ("kovac peter")."""
    return " ".join(sorted(name_words(text, company=company)))


def person_name(*parts: str | None) -> str:
    return " ".join(p for p in parts if p)
