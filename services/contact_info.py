"""E-mail addresses and phone numbers: checking, normalising and formatting."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email

CONTROL_CHARACTERS = {chr(c) for c in range(32)} - {"\t", "\n", "\r"} | {"\x7f"}
CONTROL_MESSAGE = "Remove the control characters (invisible characters) from this field."


def clean_text(value: str | None) -> str | None:
    """Strip a typed value; an empty one is stored as NULL, so unique keys ignore it.
    Raises ValueError for control characters (PostgreSQL refuses NUL; none belongs in a name)."""
    if value is None:
        return None
    if CONTROL_CHARACTERS.intersection(value):
        raise ValueError(CONTROL_MESSAGE)
    value = value.strip()
    return value or None


EMAIL_LENGTH = 254


def normalise_email(value: str | None) -> str | None:
    """A syntactically valid e-mail address, domain lower-cased, or ValueError with a message
    for the user. Deliverability is not checked: this machine and many desks have no DNS."""
    value = clean_text(value)
    if value is None:
        return None
    if len(value) > EMAIL_LENGTH:  # RFC 5321's limit; checked first, the parser's cost grows with length
        raise ValueError(f"Not a valid e-mail address: it is longer than {EMAIL_LENGTH} characters.")
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"Not a valid e-mail address: {exc}") from None


def normalise_phone(value: str | None, region: str) -> str | None:
    """The number in E.164 ("+421903123456"), or ValueError. Numbers without a country code
    are read in `region` (configuration: PHONE_DEFAULT_REGION)."""
    value = clean_text(value)
    if value is None:
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValueError("Not a phone number. Use digits, optionally with +country code.") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(
            f"Not a valid phone number for {phonenumbers.region_code_for_number(number) or region}."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str | None) -> str:
    """A stored E.164 number in international format for people ("+421 903 123 456")."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
