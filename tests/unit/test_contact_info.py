"""E-mail and phone rules (no database)."""

import pytest

from services.contact_info import format_phone, normalise_email, normalise_phone


def test_phone_without_country_code_is_read_in_the_default_region():
    assert normalise_phone("0903 123 456", "SK") == "+421903123456"
    assert normalise_phone("+420 601 123 456", "SK") == "+420601123456"


@pytest.mark.parametrize("typed", ["12", "hello", "+421 1"])
def test_a_non_number_is_refused_with_a_message(typed):
    with pytest.raises(ValueError, match="phone"):
        normalise_phone(typed, "SK")


def test_empty_phone_and_email_are_stored_as_nothing():
    assert normalise_phone("  ", "SK") is None
    assert normalise_email("") is None


def test_phone_is_shown_in_international_format():
    assert format_phone("+421903123456") == "+421 903 123 456"


def test_email_domain_is_normalised_and_bad_syntax_refused():
    assert normalise_email(" Peter.Kovac@FIRMA.SK ") == "Peter.Kovac@firma.sk"
    with pytest.raises(ValueError, match="e-mail"):
        normalise_email("peter@@firma")
