"""Normalisation and scoring of duplicate detection, without a database."""

from __future__ import annotations

import pytest

from services.duplicates import make_probe
from services.matching import Subject, compact_id, name_key, name_relation, name_weight, weigh


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
    "Acme Ltd", "ACME Ltd.", "Acme GmbH", "ACME, Inc.", "Acme LLC", "acme", "Acme G.m.b.H.",
    "ACME s. r. o.", "Acme spol. s r. o.", "ACME, spol.s r.o.", "Acme a. s.", "ACME Sp. z o.o.",
])
def test_company_legal_forms_are_ignored(name):
    assert name_key(name, company=True) == "acme"


def test_a_legal_form_word_inside_a_name_stays():
    assert name_key("AS Trading s.r.o.", company=True) == "as trading"
    assert name_key("Inc", company=True) == "inc"  # nothing left to be the name otherwise


def test_person_names_keep_words_that_look_like_legal_forms():
    assert name_key("Peter As", company=False) == "as peter"


def test_person_titles_are_left_out():
    assert name_key("Ing. Peter Kováč, PhD.", company=False) == name_key("Peter Kováč", company=False)


def test_probe_normalises_email_case_and_phone_formats():
    probe = make_probe(kind="person", name="Peter Kováč", email="Peter.Kovac@Example.SK",
                       phone="0903 123 456", phone_region="SK")
    assert probe.emails == {"peter.kovac@example.sk"}
    assert probe.phones == {"+421903123456"}
    for typed in ("+421 903 123 456", "00421903123456", "903123456", "(0903) 123-456"):
        assert make_probe(kind="person", name="", phone=typed, phone_region="SK").phones == {"+421903123456"}


def test_unparseable_email_or_phone_is_simply_not_compared():
    probe = make_probe(kind="person", name="X", email="not an email", phone="12", phone_region="SK")
    assert not probe.emails and not probe.phones


def test_company_ids_compare_without_spaces_or_case():
    assert compact_id("50 111 222") == compact_id("50111222") == "50111222"
    assert compact_id("sk 2020-123.456") == "SK2020123456"


def subject(**kw) -> Subject:
    defaults = {"company": False, "words": ("peter", "kovac")}
    return Subject(**{**defaults, **kw})


def weighed(probe, stored, namesakes=1, registry=100_000):
    return weigh(probe, stored, frequency=lambda relation, s: namesakes, registry=registry)


def test_identifying_keys_are_strong_whatever_the_name():
    probe = make_probe(kind="person", name="Somebody Else", email="PETER@example.sk", phone="0903123456")
    result = weighed(probe, subject(emails=frozenset({"peter@example.sk"}),
                                    phones=frozenset({"+421903123456"})))
    assert result is not None and result.strong
    assert result.reasons[:2] == ["same e-mail", "same phone"]


def test_company_id_and_vat_id_are_strong():
    probe = make_probe(kind="company", name="Other", registration_number="50 111 222", vat_id="sk2020123456")
    result = weighed(probe, Subject(company=True, words=("acme",), registration_number="50111222",
                                    vat_id="SK2020123456"))
    assert result is not None and result.reasons[:2] == ["same company ID", "same VAT ID"] and result.strong


def test_a_person_namesake_is_listed_but_never_refused():
    same = weighed(make_probe(kind="person", name="Kováč Peter"), subject(), namesakes=1)
    assert same is not None and same.name == "same" and not same.strong


def test_a_company_with_the_only_record_of_its_name_is_refused_unless_the_company_ids_differ():
    acme = Subject(company=True, words=("acme",), registration_number="50111222")
    refused = weighed(make_probe(kind="company", name="ACME s. r. o."), acme)
    assert refused is not None and refused.strong and "same company name" in refused.reasons
    other_id = weighed(make_probe(kind="company", name="ACME a.s.", registration_number="12345678"), acme)
    assert other_id is not None and not other_id.strong and "but a different company ID" in other_id.reasons
    common = weighed(make_probe(kind="company", name="ACME"), acme, namesakes=3)
    assert common is not None and not common.strong


def test_a_rare_name_with_a_typo_outranks_an_exact_common_namesake():
    rare_typo = weighed(make_probe(kind="person", name="Petr Kovac"), subject(), namesakes=1)
    common_same = weighed(make_probe(kind="person", name="Peter Kovac"), subject(), namesakes=400)
    assert rare_typo is not None and rare_typo.name == "typo"
    assert common_same is not None and rare_typo.weight > common_same.weight


def test_typos_anywhere_in_a_word_also_in_its_first_letters():
    assert name_relation(["tarta"], ("tatra",), partial=False) == ("typo", 1)
    assert name_relation(["kovac", "petre"], ("peter", "kovac"), partial=False) == ("typo", 1)
    assert name_relation(["novak"], ("novakova",), partial=False) == ("", 0)  # another person


def test_a_live_search_lists_names_that_start_with_what_is_typed_in_any_order():
    assert name_relation(["kov"], ("peter", "kovac"), partial=True)[0] == "prefix"
    assert name_relation(["kovac", "pe"], ("peter", "j", "kovac"), partial=True)[0] == "prefix"
    assert name_relation(["kovac", "pe"], ("peter", "kovac"), partial=False)[0] == ""
    assert name_relation(["kovac"], ("peter", "kovac"), partial=True)[0] == "part"


def test_a_whole_word_ranks_above_a_word_it_only_starts():
    kovac = weighed(make_probe(name="Kovac", partial=True), subject())
    kovacs = weighed(make_probe(name="Kovac", partial=True), subject(words=("matej", "kovacs")))
    assert kovac is not None and kovacs is not None and kovac.weight > kovacs.weight


def test_a_company_name_is_never_compared_with_a_person_name():
    assert weighed(make_probe(kind="company", name="Peter Kováč"), subject()) is None


def test_rarer_names_weigh_more():
    assert name_weight(1, 1_000_000) > name_weight(300, 1_000_000) > name_weight(30_000, 1_000_000) > 0


def test_more_agreeing_keys_rank_higher():
    probe = make_probe(kind="person", name="Peter Kováč", email="peter@example.sk")
    both = weighed(probe, subject(emails=frozenset({"peter@example.sk"})))
    name_only = weighed(probe, subject())
    assert both is not None and name_only is not None and both.weight > name_only.weight
