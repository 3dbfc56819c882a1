"""Normalisation and scoring of duplicate detection, without a database."""

from __future__ import annotations

import pytest

from services.duplicates import make_probe
from services.matching import Subject, compact_id, name_key, name_similarity, score


@pytest.mark.parametrize(("typed", "stored"), [
    ("Kováč", "Kovac"),
    ("Peter Kováč", "Kováč Peter"),
    ("  PETER   kováč ", "peter kovac"),
    ("Šťastná-Nováková Ľubica", "Ľubica Šťastná Nováková"),
    ("O'Brien Seán", "sean obrien"),
])
def test_person_names_compare_without_case_diacritics_spacing_or_order(typed, stored):
    assert name_key(typed, company=False) == name_key(stored, company=False) != ""


@pytest.mark.parametrize("name", [
    "ACME s.r.o.", "ACME, s. r. o.", "Acme spol. s r.o.", "ACME a.s.", "Acme k.s.", "ACME v.o.s.",
    "Acme Ltd", "ACME Ltd.", "Acme GmbH", "ACME, Inc.", "Acme LLC", "acme",
])
def test_company_legal_forms_are_ignored(name):
    assert name_key(name, company=True) == "acme"


def test_a_legal_form_word_inside_a_name_stays():
    assert name_key("AS Trading s.r.o.", company=True) == "as trading"
    assert name_key("Inc", company=True) == "inc"  # nothing left to be the name otherwise


def test_person_names_keep_words_that_look_like_legal_forms():
    assert name_key("Peter As", company=False) == "as peter"


def test_probe_normalises_email_case_and_phone_formats():
    probe = make_probe(kind="person", name="Peter Kováč", email="Peter.Kovac@Example.SK",
                       phone="0903 123 456", phone_region="SK")
    assert probe.email == "peter.kovac@example.sk"
    assert probe.phone == "+421903123456"
    for typed in ("+421 903 123 456", "00421903123456", "903123456", "(0903) 123-456"):
        assert make_probe(kind="person", name="", phone=typed, phone_region="SK").phone == "+421903123456"


def test_unparseable_email_or_phone_is_simply_not_compared():
    probe = make_probe(kind="person", name="X", email="not an email", phone="12", phone_region="SK")
    assert probe.email is None and probe.phone is None


def test_company_ids_compare_without_spaces_or_case():
    assert compact_id("50 111 222") == compact_id("50111222") == "50111222"
    assert compact_id("sk 2020-123.456") == "SK2020123456"


def subject(**kw) -> Subject:
    defaults = {"company": False, "name_key": name_key("Peter Kováč", company=False)}
    return Subject(**{**defaults, **kw})


def test_strong_keys_make_a_strong_match_with_their_reasons():
    probe = make_probe(kind="person", name="Somebody Else", email="PETER@example.sk", phone="0903123456")
    result = score(probe, subject(emails=frozenset({"peter@example.sk"}),
                                  phones=frozenset({"+421903123456"})), threshold=88)
    assert result is not None and result.strong
    assert result.reasons == ["same e-mail", "same phone"]


def test_company_id_and_vat_id_are_strong():
    probe = make_probe(kind="company", name="Other", registration_number="50 111 222", vat_id="sk2020123456")
    result = score(probe, Subject(company=True, name_key="acme", registration_number="50111222",
                                  vat_id="SK2020123456"), threshold=88)
    assert result is not None and result.reasons == ["same company ID", "same VAT ID"] and result.strong


def test_identical_normalised_name_is_strong_and_a_similar_one_is_a_hint():
    same = score(make_probe(kind="person", name="Kováč Peter"), subject(), threshold=88)
    assert same is not None and same.reasons == ["same name"] and same.strong
    typo = score(make_probe(kind="person", name="Peter Kovács"), subject(), threshold=80)
    assert typo is not None and not typo.strong and typo.reasons[0].startswith("similar name (")


def test_threshold_decides_what_counts_as_similar():
    probe = make_probe(kind="person", name="Petra Kováčová")
    similarity = name_similarity(probe.name_key, subject().name_key)
    assert score(probe, subject(), threshold=similarity) is not None
    assert score(probe, subject(), threshold=similarity + 1) is None


def test_a_company_name_is_never_compared_with_a_person_name():
    probe = make_probe(kind="company", name="Peter Kováč")
    assert score(probe, subject(), threshold=50) is None


def test_more_agreeing_keys_rank_higher():
    probe = make_probe(kind="person", name="Peter Kováč", email="peter@example.sk")
    both = score(probe, subject(emails=frozenset({"peter@example.sk"})), threshold=88)
    name_only = score(probe, subject(), threshold=88)
    assert both is not None and name_only is not None and both.value > name_only.value
