"""Accelerated creation (the quick form): a customer from "Company or Name", e-mail and phone,
then a company's contacts. Both end in the same `save_customer` as every other path, after the
same duplicate refusal as the wizard and the API."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from models import Contact, Customer, GlobalSettings, Operator
from models.enums import CustomerKind, PhoneType
from services.contact_info import clean_text
from services.contacts import contact_field_errors
from services.customers import SaveOptions, create_customer, save_customer
from services.duplicates import make_probe, refuse_duplicates
from services.errors import FORM, ErrorBag, ValidationFailed

NO_EMAIL_WARNING = ("Without an e-mail C-Desk cannot write to this person: requests and their "
                    "communication will not reach them.")
CONTACT_EMAIL_NEEDED = ("At least one contact needs an e-mail: C-Desk sends the communication on a "
                        "company's requests to its contacts, not to the company.")


@dataclass(frozen=True)
class QuickCustomer:
    """What the quick form's left side holds."""

    kind: str | None
    name: str | None
    email: str | None = None
    phone: str | None = None
    confirm_duplicate: bool = False


def email_required(session: Session) -> bool:
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


def quick_create_customer(session: Session, actor: Operator | None, options: SaveOptions,
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
    elif name:
        fields["first_name"], fields["last_name"] = split_person_name(name)
        if not fields["first_name"]:
            bag.add("name", "Type the first and the last name, e.g. “Peter Kováč”.")
    bag.raise_if_any()
    refuse_duplicates(session, actor, make_probe(kind=kind, name=name, email=typed.email, phone=typed.phone,
                                                 phone_region=options.phone_region),
                      confirmed=typed.confirm_duplicate)
    try:
        return create_customer(session, actor, options, **fields)
    except ValidationFailed as exc:  # field names of the full form → the quick form's
        renamed = {"company_name": "name", "first_name": "name", "last_name": "name",
                   "primary_phone": "phone"}
        errors: dict[str, list[str]] = {}
        for key, messages in exc.errors.items():
            errors.setdefault(renamed.get(key, key), []).extend(messages)
        raise ValidationFailed(errors) from None


def add_contacts(session: Session, actor: Operator | None, options: SaveOptions, customer: Customer,
                 rows: list[dict]) -> list[Contact]:
    """Add contacts to a company in one transaction. Each row: first_name, last_name, email,
    phone, is_main. Messages are keyed "contacts-N-field"; the company must end with at least
    one contact that has an e-mail. Raises ValidationFailed or PermissionDenied."""
    if customer.kind != CustomerKind.COMPANY:
        raise ValidationFailed({FORM: ["Only a company has contacts; a private person is reached "
                                       "at their own e-mail."]})
    errors: dict[str, list[str]] = {}
    added = []
    for index, row in enumerate(rows):
        contact = Contact(first_name=row.get("first_name"), last_name=row.get("last_name"),
                          email=row.get("email"), phone=row.get("phone"), is_main=bool(row.get("is_main")),
                          phone_type=PhoneType.WORK if row.get("phone") else None)
        for field, messages in contact_field_errors(contact, options.phone_region).items():
            errors[f"contacts-{index}-{field}"] = messages
        added.append(contact)
    if not added:
        errors[FORM] = ["Add at least one contact."]
    elif not any(c.email for c in [*customer.contacts, *added]):
        errors[FORM] = [CONTACT_EMAIL_NEEDED]
    if errors:
        raise ValidationFailed(errors)
    with session.no_autoflush:
        customer.contacts.extend(added)
    save_customer(session, customer, actor, options)
    return added
