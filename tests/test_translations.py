"""Slovak and Czech: every word a template shows is marked for translation, and every marked
string of the product (templates and Python, as `scripts/i18n.sh update` extracts them) has a
Slovak and a Czech translation in the catalogs the app reads.

A template's own text is found with Jinja's lexer: text between tags and the attributes a person
reads (title, placeholder, alt, aria-label, a button's value), and string literals in
expressions that read like a sentence. Marked text is `{{ _('…') }}` / `{% trans %}`.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from jinja2 import Environment

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))
# Words that are the same in every language of the desk: names, acronyms, symbols.
SAME_IN_EVERY_LANGUAGE = {
    "Customer Desk", "API", "CSV", "XLSX", "JSON", "LDAP", "LDAPS", "DN", "URL", "URLs", "UTC", "SMTP",
    "POP3", "IMAP", "SLA", "VAT", "ID", "OK", "E-mail", "e-mail", "Swagger", "OpenAPI", "CD",
    "sAMAccountName",
    "Cherwell", "Active Directory", "TLS", "STARTTLS", "IP", "ReDoc",
}
READ_ATTRIBUTES = {"title", "placeholder", "alt", "aria-label", "data-confirm", "label"}
HOLE = "\x00"  # where a Jinja expression or statement was
LETTERS = re.compile(r"[^\W\d_]{2,}")
SENTENCE = re.compile(r"\b[A-ZÁČĎÉÍĹĽŇÓÔŔŠŤÚÝŽ][a-záäčďéíĺľňóôŕšťúýžěřů]+\b.*\s|\s.*[a-z][.?!:]$")
MARKERS = {"_", "gettext", "ngettext", "pgettext", "lazy_gettext", "_l"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        attributes = dict(attrs)
        for name, value in attrs:
            shown = name in READ_ATTRIBUTES or (
                name == "value" and tag in ("input", "button")
                and (attributes.get("type") or "") in ("submit", "button", "reset"))
            if shown and value:
                self.found.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.found.append(data)


def _needs_words(text: str) -> bool:
    text = text.replace(HOLE, " ").strip()
    if not text or text in SAME_IN_EVERY_LANGUAGE:
        return False
    words = [w for w in LETTERS.findall(text) if w not in SAME_IN_EVERY_LANGUAGE]
    return bool(words)


def untranslated(path: Path) -> list[str]:
    """The texts of a template a person reads that are not marked for translation."""
    env = Environment(extensions=["jinja2.ext.i18n"])
    source = path.read_text()
    html: list[str] = []
    literals: list[str] = []
    tokens = list(env.lex(source))
    in_trans = False
    for index, (_line, kind, value) in enumerate(tokens):
        if kind == "name" and value == "trans" and index and tokens[index - 1][1] in ("block_begin",):
            in_trans = True
        if kind == "name" and value == "endtrans":
            in_trans = False
        if kind == "data":
            html.append(HOLE if in_trans else value)
            continue
        if html and html[-1] != HOLE:
            html.append(HOLE)
        if kind == "string" and SENTENCE.search(value.strip('"\'')):
            before = [t for t in tokens[max(0, index - 3):index] if t[1] not in ("whitespace",)]
            marked = len(before) >= 2 and before[-1][2] == "(" and before[-2][2] in MARKERS
            if not marked:
                literals.append(value)
    parser = _Text()
    parser.feed("".join(html))
    parser.close()
    return [t.strip() for t in parser.found if _needs_words(t)] + literals


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT / "templates")))
def test_every_word_of_a_template_is_marked_for_translation(template):
    assert untranslated(template) == []


def _catalog(language: str):
    path = ROOT / "translations" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        return read_po(handle)


def _marked_strings() -> set[str]:
    keywords = {"_": None, "gettext": None, "lazy_gettext": None, "_l": None, "ngettext": (1, 2)}
    method_map = [("**/.venv/**", "ignore"), ("**/tests/**", "ignore"), ("**/bench/**", "ignore"),
                  ("**/testing/**", "ignore"), ("**/migrations/**", "ignore"), ("**.py", "python"),
                  ("templates/**.html", "jinja2")]
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map=method_map, keywords=keywords,
            options_map={"templates/**.html": {"extensions": "jinja2.ext.do"}}):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def _flask_admin_catalog(language: str):
    import flask_admin

    path = Path(flask_admin.__file__).parent / "translations" / language / "LC_MESSAGES" / "admin.po"
    with path.open("rb") as handle:
        return read_po(handle)


@pytest.mark.parametrize("language", ["sk", "cs"])
def test_every_marked_string_has_a_translation(language):
    catalog = _catalog(language)
    # Flask-Admin's own words (admin_views.base uses its lazy_gettext) come from its catalogs.
    theirs = _flask_admin_catalog(language)
    missing = []
    for message in sorted(_marked_strings()):
        if theirs.get(message) is not None and theirs.get(message).string:
            continue
        entry = catalog.get(message)
        translated = entry is not None and (all(entry.string) if isinstance(entry.string, tuple | list)
                                            else bool(entry.string))
        if not translated or (entry is not None and entry.fuzzy):
            missing.append(message)
    assert missing == [], f"{len(missing)} strings have no {language} translation; run scripts/i18n.sh update"


@pytest.mark.parametrize("language", ["sk", "cs"])
def test_the_app_reads_the_translations(app, language):
    """The compiled catalogs (scripts/i18n.sh compile, run by bootstrap) are the ones the app
    reads: a fuzzy or stale catalog would compile to nothing and show English."""
    from flask_babel import force_locale, gettext

    client = app.test_client()
    with app.test_request_context(), force_locale(language):
        shown = {message: gettext(message) for message in ("Quick add", "Add with the wizard")}
    assert all(shown[m] != m for m in shown), shown
    page = client.get("/login", headers={"Accept-Language": language}).get_data(as_text=True)
    assert f'lang="{language}"' in page or f"lang={language}" in page
    assert gettext_in(language, "Sign in") in page


def gettext_in(language: str, message: str) -> str:
    from babel.support import Translations

    return Translations.load(str(ROOT / "translations"), [language]).gettext(message)
