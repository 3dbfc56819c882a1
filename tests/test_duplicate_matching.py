"""Duplicate matching against the database, as users meet it — on SQLite and PostgreSQL: typos in a
name's first letters, legal forms in any spelling, crowds of namesakes (listed newest first, never
refused), tombstones of merged customers, and the vocabulary the typo lookup reads."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Customer, NameWord, NameWordVariant
from models.enums import CustomerKind
from services.bulk_import import MatchRule, OnMatch, run_import
from services.bulk_import_files import read_table, suggest_mapping
from services.customers import SaveOptions
from services.duplicates import find_duplicates, make_probe
from services.merge import merge_customers
from services.secrets import SecretBox
from tests.conftest import ENCRYPTION_KEY, csrf_from, written

PERSON = CustomerKind.PERSON
COMPANY = CustomerKind.COMPANY


def labels(session, actor=None, **typed) -> list[str]:
    return [c.label for c in find_duplicates(session, actor, make_probe(phone_region="SK", **typed))]


def test_a_one_word_company_with_a_typo_in_its_first_letters_is_found(session, new_customer):
    new_customer(kind=COMPANY, company_name="Tatra a.s.", email="info@tatra.example.sk")
    for typed in ("Tarta", "Ttara", "Atra", "Tatar"):
        [candidate] = find_duplicates(session, None, make_probe(kind="company", name=typed))
        assert candidate.label == "Tatra a.s." and candidate.reasons == ["similar name (a typo?)"]
        assert not candidate.strong


def test_legal_forms_in_any_spelling_are_the_same_company(session, new_customer):
    new_customer(kind=COMPANY, company_name="Müller G.m.b.H.", email="office@mueller.example.de")
    for typed in ("Müller GmbH", "MULLER gmbh", "Müller, G. m. b. H."):
        [candidate] = find_duplicates(session, None, make_probe(kind="company", name=typed))
        assert candidate.label == "Müller G.m.b.H." and candidate.strong
        assert candidate.reasons == ["same company name"]
    new_customer(kind=COMPANY, company_name="Stavby Kysuce, spol. s r. o.", email="stavby@example.sk")
    assert labels(session, kind="company", name="STAVBY KYSUCE s.r.o.") == ["Stavby Kysuce, spol. s r. o."]


def test_namesakes_are_listed_newest_first_and_a_new_namesake_is_created(session, new_customer,
                                                                          maintainer_client):
    made = [new_customer(kind=PERSON, first_name="Peter", last_name="Novák", email=f"peter.{n}@example.sk")
            for n in range(14)]
    candidates = find_duplicates(session, None, make_probe(kind="person", name="Novák Peter"))
    assert [c.customer_id for c in candidates] == [c.id for c in reversed(made)][:10]
    assert not any(c.strong for c in candidates)
    assert "same name (14 records bear it)" in candidates[0].reasons
    page = maintainer_client.get("/admin/customers/").get_data(as_text=True)
    created = maintainer_client.post("/admin/customers/quick/create", data={
        "kind": "person", "name": "Peter Novák", "email": "another.peter@example.sk",
        "csrf_token": csrf_from(page)})
    assert created.status_code == 201
    newest = session.scalar(select(Customer.id).order_by(Customer.id.desc()).limit(1))
    assert newest == created.get_json()["id"]


def test_a_rare_name_with_a_typo_ranks_above_common_namesakes(session, new_customer):
    for n in range(6):
        new_customer(kind=PERSON, first_name="Jana", last_name="Horváthová", email=f"jana.{n}@example.sk")
    rare = new_customer(kind=PERSON, first_name="Jana", last_name="Horvátová", email="rare@example.sk")
    first = find_duplicates(session, None, make_probe(kind="person", name="Jana Horvatova"))[0]
    assert first.customer_id == rare.id and first.reasons == ["same name"]
    typo = find_duplicates(session, None, make_probe(kind="person", name="Jana Horavtova"))
    assert typo[0].customer_id == rare.id


def test_a_person_is_refused_for_a_key_not_for_a_name(session, new_customer, maintainer_client):
    new_customer(kind=PERSON, first_name="Ľubica", last_name="Šťastná", email="lubica@example.sk",
                 primary_phone="0905 111 222")
    page = maintainer_client.get("/admin/customers/").get_data(as_text=True)

    def create(**typed):
        return maintainer_client.post("/admin/customers/quick/create",
                                      data={"kind": "person", "csrf_token": csrf_from(page), **typed})

    by_phone = create(name="Lubica Stastna", email="other@example.sk", phone="+421 905 111 222")
    assert by_phone.status_code == 409
    assert by_phone.get_json()["candidates"][0]["reasons"][0] == "same phone"
    assert create(name="Ľubica Šťastná", email="lubica.second@example.sk").status_code == 201


def test_bulk_import_name_matching_ignores_merged_away_tombstones(session, new_customer, maintainer):
    survivor = new_customer(kind=COMPANY, company_name="Firma Alfa s.r.o.", email="alfa@example.sk")
    other = new_customer(kind=COMPANY, company_name="Firma Alfa a.s.", email="alfa2@example.sk")
    written(session, lambda: merge_customers(session, maintainer, survivor, other, SecretBox(ENCRYPTION_KEY),
                                             choices={}, decisions={}))
    read = read_table("Názov firmy;Telefón\nFirma Alfa;0905 333 444\n".encode())
    report = run_import(session, maintainer, read.rows, suggest_mapping(read.headers), [MatchRule.NAME],
                        OnMatch.UPDATE_ALL, SaveOptions("SK"), dry_run=False)
    assert not report.rejected and [r.customer_id for r in report.updated] == [survivor.id]
    found = find_duplicates(session, None, make_probe(kind="company", name="Firma Alfa"))
    assert [c.customer_id for c in found] == [survivor.id]


def test_the_vocabulary_learns_every_name_word_with_its_variants(session, new_customer):
    new_customer(kind=PERSON, first_name="Zdenka", last_name="Kvapilová", email="zk@example.sk")
    words = set(session.scalars(select(NameWord.word)))
    assert {"zdenka", "kvapilova"} <= words
    variants = set(session.scalars(select(NameWordVariant.variant).where(NameWordVariant.word == "zdenka")))
    assert variants == {"zdenka", "denka", "zenka", "zdnka", "zdeka", "zdena", "zdenk"}


@pytest.mark.parametrize("typed", ["jana horv", "horv jana", "jana", "horvathova ja"])
def test_a_live_search_lists_what_is_typed_so_far_in_any_order(session, new_customer, typed):
    jana = new_customer(kind=PERSON, first_name="Jana", last_name="Horváthová", email="jh@example.sk")
    found = find_duplicates(session, None, make_probe(kind="company", name=typed, partial=True))
    assert jana.id in [c.customer_id for c in found]


# -- found by an attack on the first version ------------------------------------------------------

def test_an_operator_learns_nothing_of_records_they_may_not_view(session, new_customer, make_operator):
    olga = make_operator("olga@example.com", first_name="Olga", last_name="Own")
    oskar = make_operator("oskar@example.com", first_name="Oskar", last_name="Other")
    new_customer(kind=PERSON, first_name="Peter", last_name="Kováč", email="p1@example.sk", operators=[olga])
    for n in range(3):
        new_customer(kind=PERSON, first_name="Peter", last_name="Kováč", email=f"hidden{n}@example.sk",
                     operators=[oskar])
    [mine] = find_duplicates(session, olga, make_probe(kind="person", name="Peter Kováč"))
    assert mine.reasons == ["same name"] and mine.score is None  # no count of the hidden namesakes
    new_customer(kind=COMPANY, company_name="Zlatý Bažant s.r.o.", registration_number="11223344",
                 email="zb@example.sk", operators=[oskar])
    for name in ("Zlatý Bažant", "Modrý Bažant"):
        [hidden] = find_duplicates(session, olga, make_probe(kind="company", name=name,
                                                             registration_number="11223344"))
        assert hidden.reasons == ["same company ID"] and not hidden.visible  # the name is not confirmed
    new_customer(kind=PERSON, first_name="Jana", last_name="Horváthová", email="jh.visible@example.sk",
                 primary_phone="+421903111222", operators=[olga])
    new_customer(kind=PERSON, first_name="Jana", last_name="Horváthová", email="secret@example.sk",
                 operators=[oskar])
    new_customer(kind=PERSON, first_name="Karol", last_name="Iný", email="secret2@example.sk",
                 operators=[oskar])
    for secret in ("secret@example.sk", "secret2@example.sk"):  # the order does not tell whose name fits
        found = find_duplicates(session, olga, make_probe(kind="person", name="Jana Horváthová",
                                                          phone="+421903111222", email=secret))
        assert [c.visible for c in found][:2] == [False, True]


def test_an_identical_email_with_a_capital_beyond_ascii_is_refused(session, new_customer, maintainer_client):
    new_customer(kind=PERSON, first_name="Štefan", last_name="Novák", email="ŠTEFAN.Novák@firma.sk")
    page = maintainer_client.get("/admin/customers/").get_data(as_text=True)
    refused = maintainer_client.post("/admin/customers/quick/create", data={
        "kind": "person", "name": "Eva Malá", "email": "ŠTEFAN.Novák@firma.sk",
        "csrf_token": csrf_from(page)})
    assert refused.status_code == 409
    assert refused.get_json()["candidates"][0]["reasons"] == ["same e-mail"]


def test_company_ids_typed_in_other_digits_are_the_same(session, new_customer):
    stored = new_customer(kind=COMPANY, company_name="Plné Šírky s.r.o.", email="ps@example.sk",
                          registration_number="１２３４５６７８")
    assert stored.registration_number == "12345678"
    for typed in ("12345678", "１２３４ ５６７８", "١٢٣٤٥٦٧٨"):
        probe = make_probe(kind="company", name="Iná", registration_number=typed)
        [candidate] = find_duplicates(session, None, probe)
        assert candidate.reasons == ["same company ID"] and candidate.strong


def test_the_live_list_finds_a_phone_typed_as_the_name_and_long_names(session, new_customer):
    ivan = new_customer(kind=PERSON, first_name="Ivan", last_name="Telefón", email="it@example.sk",
                        primary_phone="0903 555 666")
    for typed in ("0903 555 666", "+421 903 555 666"):
        found = find_duplicates(session, None, make_probe(name=typed, partial=True))
        assert ivan.id in [c.customer_id for c in found]
    long = new_customer(kind=COMPANY, company_name="Bank Alfa Beta Gama Trnava", email="b@example.sk")
    plus = new_customer(kind=COMPANY, company_name="Gama Trnavaplus", email="g@example.sk")
    found = find_duplicates(session, None, make_probe(name="gama trnava", partial=True))
    assert {long.id, plus.id} <= {c.customer_id for c in found}
