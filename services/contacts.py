"""Contacts of company customers."""

from __future__ import annotations

from sqlalchemy.orm import Session

from models import Contact, Operator
from models.enums import CustomerKind
from services.contact_info import clean_text, normalise_email, normalise_phone
from services.errors import ErrorBag, ValidationFailed
from services.transactions import commit


def _check_fields(contact: Contact, phone_region: str, bag: ErrorBag) -> None:
    for field in ("first_name", "last_name", "title"):
        setattr(contact, field, clean_text(getattr(contact, field)))
    if not contact.last_name:
        bag.add("last_name", "A contact needs a last name.")
    contact.email = bag.check("email", normalise_email, contact.email)
    contact.phone = bag.check("phone", lambda v: normalise_phone(v, phone_region), contact.phone)
    if not contact.phone:
        contact.phone_type = None


def check_contact(contact: Contact, phone_region: str) -> list[str]:
    """Normalise a contact of a company being saved; the messages of broken rules."""
    bag = ErrorBag()
    _check_fields(contact, phone_region, bag)
    return [message for messages in bag.errors.values() for message in messages]


def validate_contact(session: Session, contact: Contact, phone_region: str) -> None:
    """Check a contact edited on its own; raises ValidationFailed with field messages."""
    bag = ErrorBag()
    with session.no_autoflush:
        _check_fields(contact, phone_region, bag)
        if contact.customer is None:
            bag.add("customer", "Choose the company this contact belongs to.")
        elif contact.customer.kind != CustomerKind.COMPANY:
            bag.add("customer", "Only a company has contacts; a person is reached directly.")
    bag.raise_if_any()


def save_contact(
    session: Session, contact: Contact, actor: Operator | None, phone_region: str
) -> Contact:
    """Validate and commit a contact; raises ValidationFailed (session rolled back)."""
    try:
        validate_contact(session, contact, phone_region)
    except ValidationFailed:
        session.rollback()
        raise
    session.add(contact)
    commit(session)
    return contact
