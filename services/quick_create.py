"""Accelerated creation (the quick form): a customer from "Company or Name", e-mail and phone,
then a company's contacts. A company and its contacts are one creation (the company-contact rule
of `save_customer`): the modal checks the company first — the only refusal then is the missing
contact — and sends the company again with its contacts."""

from __future__ import annotations

from dataclasses import dataclass

from models import Contact, Customer, GlobalSettings, Operator
from models.enums import CustomerKind, PhoneType
from services.contact_info import clean_text
from services.contacts import contact_field_errors
from services.customers import SaveOptions, create_customer
from services.duplicates import DuplicateSuspected
from services.errors import ErrorBag, ValidationFailed
from services.transactions import DbSession

NO_EMAIL_WARNING = ("Without an e-mail C-Desk cannot write to this person: requests and their "
                    "communication will not reach them.")


@dataclass(frozen=True)
class QuickCustomer:
    """What the quick form's left side holds."""

    kind: str | None
    name: str | None
    email: str | None = None
    phone: str | None = None
    confirm_duplicate: bool = False
    contacts: tuple[dict, ...] = ()  # a company's contacts: first_name, last_name, email, phone, is_main


def email_required(session: DbSession) -> bool:
    """The maintainer's switch (Settings → Quick-create rules); on unless switched off."""
    row = session.get(GlobalSettings, 1)
    return True if row is None else row.quick_form_requires_email


def split_person_name(name: str) -> tuple[str | None, str | None]:
    """"Kováč, Peter" → (Peter, Kováč); "Peter Kováč" → (Peter, Kováč); one word → (None, word)."""
    if "," in name:
        last, _, first = name.partition(",")
        return clean_text(first), clean_text(last)
    parts = name.split()
    if len(parts) < 2:
        return None, clean_text(name)
    return " ".join(parts[:-1]), parts[-1]


def quick_create_customer(session: DbSession, actor: Operator | None, options: SaveOptions,
                          typed: QuickCustomer) -> Customer:
    """Create a company or a private person from the quick form. Raises ValidationFailed with
    messages on `kind`, `name`, `email`, `phone`; DuplicateSuspected (with the candidates) when a
    strong match exists and `confirm_duplicate` is not set. Nothing is written on failure."""
    bag = ErrorBag()
    if typed.kind is None or typed.kind not in {k.value for k in CustomerKind}:
        bag.add("kind", "Choose company or private person.")
        bag.raise_if_any()
    kind = CustomerKind(str(typed.kind))
    name = bag.check("name", clean_text, typed.name)
    if not name:
        bag.add("name", "Type the company's name." if kind == CustomerKind.COMPANY
                else "Type the person's first and last name.")
    if not (typed.email or "").strip() and email_required(session):
        bag.add("email", "An e-mail is required: C-Desk communicates with the customer by e-mail.")
    fields: dict = {"kind": kind, "email": typed.email, "primary_phone": typed.phone,
                    "primary_phone_type": PhoneType.WORK if typed.phone else None}
    if kind == CustomerKind.COMPANY:
        fields["company_name"] = name
    elif name and "name" not in bag.errors:  # an unclean name has its message already
        fields["first_name"], fields["last_name"] = split_person_name(name)
        if not fields["first_name"]:
            bag.add("name", "Type the first and the last name, e.g. “Peter Kováč”.")
    contacts = _contacts(typed.contacts, options, bag) if kind == CustomerKind.COMPANY else []
    bag.raise_if_any()
    try:
        return create_customer(session, actor, options, contacts=contacts,
                               confirm_duplicate=typed.confirm_duplicate, **fields)
    except DuplicateSuspected:
        raise
    except ValidationFailed as exc:  # field names of the full form → the quick form's
        renamed = {"company_name": "name", "first_name": "name", "last_name": "name",
                   "primary_phone": "phone"}
        errors: dict[str, list[str]] = {}
        for key, messages in exc.errors.items():
            errors.setdefault(renamed.get(key, key), []).extend(messages)
        raise ValidationFailed(errors) from None


def _contacts(rows: tuple[dict, ...], options: SaveOptions, bag: ErrorBag) -> list[dict]:
    """The typed contact rows as contact fields; messages keyed "contacts-N-field"."""
    contacts = []
    for index, row in enumerate(rows):
        contact = Contact(first_name=row.get("first_name"), last_name=row.get("last_name"),
                          email=row.get("email"), phone=row.get("phone"), is_main=bool(row.get("is_main")),
                          phone_type=PhoneType.WORK if row.get("phone") else None)
        for field, messages in contact_field_errors(contact, options.phone_region).items():
            for message in messages:
                bag.add(f"contacts-{index}-{field}", message)
        contacts.append({k: getattr(contact, k) for k in
                         ("first_name", "last_name", "email", "phone", "phone_type", "is_main")})
    return contacts
