"""The quick form's live duplicate list against the customers list's own search, on SQLite and
PostgreSQL: whatever the list's search box finds for a typed name, the modal lists too — from the
first word typed, in either kind's mode, any word order, unfinished words, diacritics dropped —
with each record's kind and why it matched. An operator sees the same for the customers they may
view; a customer they may not view is never named: it shows up only for a typed key (e-mail,
phone, company ID), as "a record exists — ask X", without score, name or e-mail.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from models import Contact, Customer, CustomerStatus
from models.enums import CustomerKind
from services.access import Right, customer_condition
from services.duplicates import make_probe
from services.matching import name_relation
from services.search import customer_search_conditions

CANDIDATES = "/admin/customers/quick/candidates"
LIST = "/admin/customers/"
KINDS = ("company", "person")
KIND_LABEL = re.compile(r"^(Company|Private person|(Main contact|Contact) of .+)$")
KEY_REASONS = {"same e-mail", "same phone", "same company ID", "same VAT ID"}

# (first, middle, last, e-mail, phone); "olga" marks a customer the operator Olga is responsible for.
PERSONS = [
    ("Peter", "J.", "Kováč", "peter.kovac@example.sk", "0903 123 456", "olga"),
    ("Petra", None, "Kováčová", "petra.k@example.sk", None, "olga"),
    ("Martin", None, "Šťastný", "martin.stastny@example.sk", "0905 222 333", "olga"),
    ("Jana", None, "Horváthová", "jana.horvathova@example.sk", None, "olga"),
    ("Ján", None, "Horváth", "jan.horvath@example.sk", None, "oskar"),
    ("Zuzana", None, "Nová", "zuzana.nova@example.sk", None, "olga"),
    ("Eva", None, "Nováková", "eva.novakova@example.sk", None, "oskar"),
    ("Tomáš", None, "Novák", "tomas.novak@example.cz", "+420 601 123 456", "olga"),
    ("Lukáš", None, "Dvořák", "lukas.dvorak@example.cz", None, "oskar"),
    ("Marek", None, "Šimko", "marek.simko@example.sk", None, "olga"),
    ("Katarína", None, "Černá", "katarina.cerna@example.sk", None, "olga"),
    ("Ľubomír", None, "Ďurčo", "lubo.durco@example.sk", None, "oskar"),
    ("Jürgen", None, "Schäfer", "j.schaefer@example.de", None, "olga"),
    ("Zoltán", None, "Nagy", "zoltan.nagy@example.hu", None, "olga"),
    ("Ágnes", None, "Kovács", "agnes.kovacs@example.hu", None, "oskar"),
    ("Michal", None, "Svoboda", "michal.svoboda@example.cz", None, "olga"),
    ("Ondřej", None, "Procházka", "ondrej.p@example.cz", None, "olga"),
    ("Veronika", None, "Malá", "veronika.mala@example.sk", None, "olga"),
    ("Igor", None, "Tichý", "igor.tichy@example.sk", "0911 444 555", "oskar"),
    ("Róbert", None, "Vereš", "robert.veres@example.sk", None, "olga"),
    ("Jana", None, "Horáková", "jana.horakova@example.sk", None, "olga"),
    ("Peter", None, "Petrík", "peter.petrik@example.sk", None, "olga"),
    ("Anna", None, "Tatarová", "anna.tatarova@example.sk", None, "olga"),  # "tat…" is a person too
]
# (name, company ID, owner, contacts [(first, last, e-mail, main)])
COMPANIES = [
    ("Tatra Logistics a.s.", "31 111 111", "olga", [("Jana", "Horváthová", "jh@tatralog.sk", True),
                                                     ("Marek", "Šimko", "ms@tatralog.sk", False)]),
    ("Müller G.m.b.H.", "HRB 12345", "olga", [("Hans", "Müller", "hans@mueller.de", True)]),
    ("Šťastný a syn, s. r. o.", "44 222 333", "olga", [("Ivan", "Šťastný", "ivan@stastny.sk", True)]),
    ("Kovo Pet s.r.o.", "50 000 001", "olga", [("Oto", "Kmeť", "oto@kovopet.sk", True)]),
    ("Horváth & Partners, spol. s r.o.", "36 777 888", "oskar",
     [("Pavol", "Horváth", "pavol@horvath-partners.sk", True)]),
    ("Slovenská sporiteľňa, a.s.", "00 151 653", "olga", [("Ľudmila", "Kováčová", "lk@slsp.sk", True)]),
    ("Nová Tatra spol. s r. o.", "46 555 666", "oskar", [("Karol", "Tatar", "karol@novatatra.sk", True)]),
    ("Dvořák Stavby s.r.o.", "27 111 222", "olga", [("Lukáš", "Dvořák", "ld@dvorak-stavby.cz", True)]),
    ("Café Kováč", "47 888 999", "olga", [("Peter", "Kováč", "cafe@kovac.sk", True)]),
    ("Ernst & Young Ltd.", "GB 123", "oskar", [("Emma", "Young", "emma@ey.example", True)]),
    ("ACME Corporation", "12 345 678", "olga", [("Jana", "Nová", "jana@acme.example", True)]),
    ("Stredná odborná škola Tatranská", "00 160 911", "olga",
     [("Mária", "Horváthová", "maria@sos-tatranska.sk", True)]),
    ("Östliche Kaffee AG", "CHE 1", "oskar", [("Jörg", "Österreicher", "jo@kaffee.example", True)]),
    ("Nagy és Társa Kft.", "01 09 123", "olga", [("Zoltán", "Nagy", "zoltan@nagy.hu", True)]),
    ("Peter Kováč – stolárstvo", "53 333 444", "olga", [("Peter", "Kováč", "stolar@kovac.sk", True)]),
    ("Šimko Trans s.r.o.", "35 999 000", "olga", [("Marek", "Šimko", "dispecing@simko.sk", True)]),
    ("Zlatá Tatra, s.r.o.", "36 000 777", "olga", [("Eva", "Zlatá", "eva@zlatatatra.sk", True)]),
]

# What a user types while creating: first words, prefixes, two words in either order, unfinished
# last words, two unfinished words, diacritics dropped or kept, legal forms in other spellings.
TYPED = [
    "Tatra", "tatra", "tat", "ta", "t", "Tatra Log", "logistics tatra", "Tatra Logistics a.s.",
    "tatra logistics as", "Kovac", "kov", "Kováč", "KOVÁČ PETER", "peter kovac", "kovac pet", "kov pet",
    "pet kov", "Peter J. Kováč", "Ing. Peter Kováč", "Šťastný", "stastny", "stastn", "Štastny",
    "stastny a syn", "jana horv", "horv jana", "jana horvathova", "Horváthová Jana", "horvat", "jan",
    "Müller", "muller", "Muller GmbH", "müller g.m.b.h.", "hans mul", "novak", "nova", "Nová", "nov",
    "zuz nov", "eva nov", "dvorak", "Dvořák Stavby", "durco", "lubomir", "schafer", "jurgen",
    "nagy", "nagy es tarsa", "kovacs", "svoboda", "prochazka ondrej", "simko", "simko trans",
    "cerna katarina", "tichy", "veres", "kmet", "acme", "acme corp", "ernst young", "young",
    "ostliche", "kaffee", "sporitelna", "slovenska spor", "stredna odborna", "zlata tatra",
    "example", "petrik", "tatarova", "petra",
]


def add_registry(session, new_customer, operator, make_operator):
    """About forty customers and their contacts; Olga is responsible for those marked "olga",
    Oskar for the others (Olga may not view those)."""
    oskar = make_operator("oskar@example.com", first_name="Oskar", last_name="Owner")
    owners = {"olga": operator, "oskar": oskar}
    for first, middle, last, email, phone, owner in PERSONS:
        new_customer(kind=CustomerKind.PERSON, first_name=first, middle_name=middle, last_name=last,
                     email=email, primary_phone=phone, operators=[owners[owner]])
    for name, company_id, owner, contacts in COMPANIES:
        new_customer(kind=CustomerKind.COMPANY, company_name=name, registration_number=company_id,
                     operators=[owners[owner]],
                     contacts=[{"first_name": f, "last_name": la, "email": e, "is_main": main}
                               for f, la, e, main in contacts])
    inactive = session.scalars(select(CustomerStatus).where(CustomerStatus.is_active.is_(False))).first()
    dvorak = session.scalars(select(Customer).where(Customer.last_name == "Dvořák")).one()
    dvorak.status = inactive
    session.commit()
    return oskar


@pytest.fixture
def registry(session, new_customer, operator, make_operator):
    return add_registry(session, new_customer, operator, make_operator)


def candidates(client, name="", kind="company", **keys) -> list[dict]:
    answer = client.get(f"{CANDIDATES}?{urlencode({'kind': kind, 'name': name, **keys})}")
    assert answer.status_code == 200
    return answer.get_json()["candidates"]


def list_finds(session, actor, text) -> set[int]:
    """What the Customers list's search box finds for `text`, among what `actor` may view."""
    conditions = customer_search_conditions(text)
    if not conditions:
        return set()
    return set(session.scalars(select(Customer.id).where(
        *conditions, customer_condition(session, actor, Right.VIEW))))


def by_label(found: list[dict]) -> dict[str, dict]:
    return {c["label"]: c for c in found if c["visible"]}


def assert_well_described(found: list[dict], *, maintainer: bool = True) -> None:
    """Every item says what it is and why it is listed; hidden ones say nothing more than a key.
    Only a maintainer sees scores: an operator's would weigh names by records they may not view."""
    for c in found:
        assert c["reasons"], c
        if c["visible"]:
            assert c["label"] and KIND_LABEL.match(c["kind"]), c
            assert isinstance(c["score"], float | int) if maintainer else c["score"] is None, c
        else:
            assert set(c["reasons"]) <= KEY_REASONS and c["ask"].startswith("Ask "), c
            assert (c["id"], c["customer_id"], c["score"], c["label"], c["email"], c["phone"], c["kind"]) == \
                (None, None, None, "", "", "", ""), c


def test_the_list_search_query_is_the_customers_list_page(maintainer_client, session, maintainer, registry):
    """`list_finds` is the list's own search: the page shows exactly those names."""
    names = {c.id: c.display_name for c in session.scalars(select(Customer))}
    for text in ("tat", "kov pet", "stastny", "jana horv", "muller"):
        page = maintainer_client.get(f"{LIST}?{urlencode({'search': text})}").get_data(as_text=True)
        shown = {i for i, name in names.items()
                 if re.search(r">\s*" + re.escape(name.replace("&", "&amp;")) + r"\s*<", page)}
        assert shown == list_finds(session, maintainer, text), text


@pytest.mark.parametrize("kind", KINDS)
def test_whatever_the_list_finds_the_modal_lists(maintainer_client, session, maintainer, registry, kind):
    silent = []
    for text in TYPED:
        in_list = list_finds(session, maintainer, text)
        found = candidates(maintainer_client, text, kind)
        assert_well_described(found)
        listed = {c["customer_id"] for c in found}
        if in_list and not (listed & in_list):
            silent.append((text, sorted(names_of(session, in_list)), [c["label"] for c in found]))
    assert silent == [], f"{kind} mode: the list finds these, the modal lists none of them"


def names_of(session, ids) -> list[str]:
    return [c.display_name for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))]


def test_first_words_find_the_records_the_issue_names(maintainer_client, registry):
    # One word, in the default Company mode: the company and the person both.
    tatra = by_label(candidates(maintainer_client, "Tatra"))
    assert tatra["Tatra Logistics a.s."]["kind"] == "Company"
    assert "name starts with what you typed" in tatra["Tatra Logistics a.s."]["reasons"]
    kovac = by_label(candidates(maintainer_client, "Kovac"))
    assert kovac["Kováč, Peter J."]["kind"] == "Private person"  # a person, listed in Company mode
    assert kovac["Peter Kováč"]["kind"].endswith(" of Café Kováč") or \
        kovac["Peter Kováč"]["kind"].endswith(" of Peter Kováč – stolárstvo")
    for typed in ("Šťastný", "stastny", "STASTNY", "Štastny"):
        for kind in KINDS:
            found = by_label(candidates(maintainer_client, typed, kind))
            assert "Šťastný, Martin" in found, (typed, kind, list(found))
            assert "Šťastný a syn, s. r. o." in found, (typed, kind, list(found))
            assert "Ivan Šťastný" in found, (typed, kind, list(found))
    # A prefix lists what starts with it, companies and persons alike.
    tat = by_label(candidates(maintainer_client, "tat"))
    assert {"Tatra Logistics a.s.", "Tatarová, Anna"} <= set(tat)
    assert "Kováč, Peter J." in by_label(candidates(maintainer_client, "kov"))
    # Two words in either order, unfinished ones too; the person and the contact of the same name.
    for typed in ("jana horv", "horv jana", "Horváthová Jana"):
        found = by_label(candidates(maintainer_client, typed))
        assert {"Horváthová, Jana", "Jana Horváthová"} <= set(found), (typed, list(found))
        assert found["Jana Horváthová"]["kind"] == "Main contact of Tatra Logistics a.s."
    for typed in ("kov pet", "Kovac Pet", "peter kov"):
        assert "Kováč, Peter J." in by_label(candidates(maintainer_client, typed)), typed
    # Legal forms in another spelling, umlauts dropped.
    for typed in ("Muller GmbH", "müller g.m.b.h.", "muller"):
        assert "Müller G.m.b.H." in by_label(candidates(maintainer_client, typed)), typed


def test_strong_matches_and_inactive_records_say_so(maintainer_client, registry):
    [peter] = [c for c in candidates(maintainer_client, "Peter Kovac", "person",
                                     email="PETER.KOVAC@example.sk") if c["label"] == "Kováč, Peter J."]
    assert peter["strong"] and peter["reasons"][0] == "same e-mail"
    by_phone = by_label(candidates(maintainer_client, "", "person", phone="+421 905 222 333"))
    assert by_phone["Šťastný, Martin"]["strong"] and by_phone["Šťastný, Martin"]["reasons"] == ["same phone"]
    namesakes = candidates(maintainer_client, "Peter Kovac", "person")
    assert namesakes and not any(c["strong"] for c in namesakes)  # a name alone is never strong
    dvorak = by_label(candidates(maintainer_client, "dvorak"))["Dvořák, Lukáš"]
    assert dvorak["inactive"] and dvorak["status"] == "Inactive"


def test_the_list_is_limited_to_ten_best_first(maintainer_client, registry):
    found = candidates(maintainer_client, "j")
    assert len(found) <= 10
    scores = [c["score"] for c in found]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize("kind", KINDS)
def test_an_operator_sees_what_they_may_view_and_no_other_name(operator_client, session, operator, registry,
                                                              kind):
    hidden = {c.id: c.display_name for c in session.scalars(select(Customer).where(
        Customer.id.not_in(select(Customer.id).where(customer_condition(session, operator, Right.VIEW)))))}
    assert len(hidden) >= 8
    hidden_names = set(hidden.values()) | {c.display_name for c in session.scalars(
        select(Contact).where(Contact.customer_id.in_(hidden)))}
    silent = []
    for text in TYPED:
        answer = operator_client.get(f"{CANDIDATES}?{urlencode({'kind': kind, 'name': text})}")
        found = answer.get_json()["candidates"]
        assert_well_described(found, maintainer=False)
        # Typed a name only: nothing of another operator's customers, not even "it exists".
        assert all(c["visible"] for c in found), (text, found)
        assert not {c["customer_id"] for c in found} & set(hidden), text
        shown = json.dumps(found, ensure_ascii=False)
        assert not [name for name in hidden_names if name in shown], text
        in_list = list_finds(session, operator, text)
        if in_list and not ({c["customer_id"] for c in found} & in_list):
            silent.append((text, names_of(session, in_list)))
    assert silent == []
    # The operator's own records are found as the maintainer's are.
    assert "Tatra Logistics a.s." in by_label(candidates(operator_client, "Tatra", kind))
    assert "Kováč, Peter J." in by_label(candidates(operator_client, "Kovac", kind))
    assert "Šťastný, Martin" in by_label(candidates(operator_client, "stastny", kind))
    # Oskar's Horváth is his: Olga types his name and sees only her own Horváths.
    assert "Horváth, Ján" not in by_label(candidates(operator_client, "jan horvath", kind))


def test_an_operator_learns_only_that_a_key_exists_and_whom_to_ask(operator_client, registry):
    def hidden_only(found):
        return [c for c in found if not c["visible"]]

    # Oskar's Igor Tichý by e-mail and by phone; Oskar's Horváth & Partners by company ID.
    for typed in ({"email": "IGOR.TICHY@example.sk"}, {"phone": "0911 444 555"},
                  {"registration_number": "36777888"}):
        for kind in KINDS:
            found = candidates(operator_client, "Igor Tichý", kind, **typed)
            [hidden] = hidden_only(found)
            assert hidden["ask"] == "Ask Oskar Owner, or a maintainer."
            assert hidden["reasons"] in (["same e-mail"], ["same phone"], ["same company ID"])
            assert (hidden["score"], hidden["label"], hidden["email"], hidden["phone"], hidden["kind"]) == \
                (None, "", "", "", "")
            assert "Tich" not in str(found) and "Horváth &" not in str(found)
    # The name alone gives nothing away.
    assert candidates(operator_client, "Igor Tichý", "person") == []
    assert candidates(operator_client, "Horváth & Partners") == [] or \
        all("Partners" not in c["label"] for c in candidates(operator_client, "Horváth & Partners"))



def name_matches(session, text: str, kind: str) -> set[tuple[str, int]]:
    """Every customer and contact whose name words start with the typed words, any order, no
    typo allowed: what the issue's first point says the live list finds."""
    probe = make_probe(kind=kind, name=text, partial=True)
    found = set()
    for record, rows in (("customer", select(Customer)), ("contact", select(Contact))):
        for row in session.scalars(rows):
            company = record == "customer" and row.kind == CustomerKind.COMPANY
            typed = probe.words(company=company)
            relation, typos = name_relation(typed, tuple(row.name_words()), partial=True)
            if relation and not typos:
                found.add((record, row.id))
    return found




@pytest.mark.parametrize("kind", KINDS)
def test_every_record_the_typed_words_start_is_listed(maintainer_client, session, registry, kind):
    missing = {}
    for text in TYPED:
        expected = name_matches(session, text, kind)
        if not expected or len(expected) > 10:
            continue
        found = {(c["record"], c["id"]) for c in candidates(maintainer_client, text, kind)}
        if expected - found:
            missing[text] = sorted(expected - found)
    assert not missing, f"listed by the customers list, not by the modal: {missing}"
