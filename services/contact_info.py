"""E-mail addresses and phone numbers: checking, normalising and formatting."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import inspect, select

from i18n import _

CONTROL_CHARACTERS = {chr(c) for c in range(32)} - {"\t", "\n", "\r"} | {"\x7f"}
# English, for code that compares or logs it; a person reads control_message().
CONTROL_MESSAGE = "Remove the control characters (invisible characters) from this field."


def control_message() -> str:
    """What a field with control characters says, in the reader's language."""
    return _("Remove the control characters (invisible characters) from this field.")


def clean_text(value: str | None) -> str | None:
    """Strip a typed value; an empty one is stored as NULL, so unique keys ignore it.
    Raises ValueError for control characters (PostgreSQL refuses NUL; none belongs in a name)."""
    if value is None:
        return None
    if CONTROL_CHARACTERS.intersection(value):
        raise ValueError(control_message())
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
        raise ValueError(_("Not a valid e-mail address: it is longer than %(limit)s characters.",
                           limit=EMAIL_LENGTH))
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(_("Not a valid e-mail address: %(reason)s", reason=exc)) from None


def normalise_phone(value: str | None, region: str) -> str | None:
    """The number in E.164 ("+421903123456"), or ValueError. Numbers without a country code
    are read in `region` (configuration: PHONE_DEFAULT_REGION)."""
    value = clean_text(value)
    if value is None:
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValueError(_("Not a phone number. Use digits, optionally with +country code.")) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(_("Not a valid phone number for %(region)s.",
                           region=phonenumbers.region_code_for_number(number) or region))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_to_store(value: str | None, stored: str | None, region: str) -> str | None:
    """What a phone field being saved stores, given the number it holds (`stored`; None for a new
    record). The one rule for phones of records that already exist, for every door (the forms, the
    API, the import, the inline contacts of a company):

    - the stored number sent back — as stored, as the forms show it (`format_phone`), or written
      another way that reads as the same digits — is kept exactly as stored, without checking it
      again. A number saved under an earlier phonenumbers release (its metadata changes with each
      one: ranges are added and withdrawn) or imported before the check existed must not stop an
      operator from saving the record's other fields; it is shown as it is until someone changes it.
    - anything else (a new or changed number) must be valid now: `normalise_phone`.

    Raises ValueError with the message for the field."""
    typed = clean_text(value)
    if stored and typed is not None and _same_number(typed, stored, region):
        return stored
    return normalise_phone(typed, region)


def _same_number(typed: str, stored: str, region: str) -> bool:
    if typed in (stored, format_phone(stored)):
        return True
    try:
        number = phonenumbers.parse(typed, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == stored


def stored_value(record: Any, field: str) -> Any:
    """The value of `field` as the database holds it for `record` (an ORM object being saved,
    perhaps already changed in memory); None for a record not yet stored. From the attribute's
    history when the stored value was loaded, else read (a record whose values were expired)."""
    state = inspect(record)
    if state.key is None:
        return None
    history = state.attrs[field].history
    if history.deleted:
        return history.deleted[0]
    if history.unchanged:
        return history.unchanged[0]
    session = state.session
    if session is None:
        return None
    mapper = state.mapper
    key = [column == value for column, value in zip(mapper.primary_key, state.identity, strict=True)]
    with session.no_autoflush:  # the record's pending change must not be written to read the old value
        return session.scalar(select(mapper.columns[field]).where(*key))


@lru_cache(maxsize=4096)  # a list page shows the same few hundred numbers again and again
def format_phone(e164: str | None) -> str:
    """A stored E.164 number in international format for people ("+421 903 123 456")."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
