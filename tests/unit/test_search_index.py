"""The folding and tokenising behind every diacritics-free search (no database)."""

from models.search_index import fold, phone_tokens, prefix_upper_bound, search_terms, words


def test_fold_removes_case_and_diacritics():
    assert fold("Kováč") == "kovac"
    assert fold("ĽUBICA Čierna") == "lubica cierna"
    assert fold("Straße Łódź") == "strasse lodz"


def test_words_split_names_and_email_parts():
    assert words("Peter Kováč", "peter.kovac@Firma.sk") == {"peter", "kovac", "firma", "sk"}


def test_phone_tokens_cover_the_ways_people_type_a_number():
    assert phone_tokens("+421903123456") == {"421903123456", "903123456", "0903123456"}


def test_search_terms_of_a_phone_query_is_one_run_of_digits():
    assert search_terms("+421 903 12") == ["42190312"]
    assert search_terms("00421 903") == ["421903"]
    assert search_terms("0903 123 456") == ["0903123456"]


def test_search_terms_of_words_are_folded_words():
    assert search_terms("  Kováč  PETER ") == ["kovac", "peter"]
    assert search_terms("") == []


def test_prefix_upper_bound_is_just_above_every_word_with_that_start():
    upper = prefix_upper_bound("kov")
    assert "kov" < "kovac" < upper and "kow" >= upper
