"""Accelerated creation (the quick form): a customer from "Company or Name", e-mail and phone,
then a company's contacts. A company and its contacts are one creation (the company-contact rule
of `save_customer`): the modal checks the company first — the only refusal then is the missing
contact — and sends the company again with its contacts.

Every refusal of the typed values comes at once, each on its field: the quick form's own rules
(kind, name, the maintainer's e-mail switch), every field rule of the full form
(services.customers.validate_customer, on a customer that is never added to the session) and
every contact row; with a strong duplicate among them, the duplicate's answer carries the field
messages too. A found customer that is inactive is reactivated (`reactivate_customer`) through
the Change Status command, with its rights."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from i18n import _
from models import Contact, Customer, CustomerStatus, GlobalSettings, Operator
from models.enums import CustomerKind, PhoneType
from services.access import Right, load_customer
from services.contact_info import clean_text
from services.contacts import CONTACT_EMAIL_NEEDED, contact_field_errors
from services.customers import SaveOptions, change_status, create_customer, default_status, validate_customer
from services.duplicates import DuplicateSuspected, find_duplicates, make_probe
from services.errors import FORM, DomainError, ErrorBag, ValidationFailed
from services.transactions import DbSession
from services.versions import SeenVersion

# The full form's field names → the quick form's.
RENAMED = {"company_name": "name", "first_name": "name", "last_name": "name", "primary_phone": "phone"}


def no_email_warning() -> str:
    return _("Without an e-mail C-Desk cannot write to this person: requests and their "
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
        last, _sep, first = name.partition(",")
        return clean_text(first), clean_text(last)
    parts = name.split()
    if len(parts) < 2:
        return None, clean_text(name)
    return " ".join(parts[:-1]), parts[-1]


def _renamed(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, messages in errors.items():
        found.setdefault(RENAMED.get(key, key), []).extend(messages)
    return found


def quick_create_customer(session: DbSession, actor: Operator | None, options: SaveOptions,
                          typed: QuickCustomer) -> Customer:
    """Create a company or a private person from the quick form. Raises ValidationFailed with
    every message at once on `kind`, `name`, `email`, `phone` and the contact rows
    (`contacts-N-field`, or `contacts` for the company-contact rule); DuplicateSuspected (with the
    candidates, and the field messages if any) when a strong match exists and `confirm_duplicate`
    is not set. Nothing is written on failure."""
    bag = ErrorBag()
    if typed.kind is None or typed.kind not in {k.value for k in CustomerKind}:
        bag.add("kind", _("Choose company or private person."))
        bag.raise_if_any()
    kind = CustomerKind(str(typed.kind))
    name = bag.check("name", clean_text, typed.name)
    if not name:
        bag.add("name", _("Type the company's name.") if kind == CustomerKind.COMPANY
                else _("Type the person's first and last name."))
    if not (typed.email or "").strip() and email_required(session):
        bag.add("email", _("An e-mail is required: C-Desk communicates with the customer by e-mail."))
    fields: dict = {"kind": kind, "email": typed.email, "primary_phone": typed.phone,
                    "primary_phone_type": PhoneType.WORK if typed.phone else None}
    if kind == CustomerKind.COMPANY:
        fields["company_name"] = name
    elif name and "name" not in bag.errors:  # an unclean name has its message already
        fields["first_name"], fields["last_name"] = split_person_name(name)
        if not fields["first_name"]:
            bag.add("name", _("Type the first and the last name, e.g. “Peter Kováč”."))
    _field_errors(session, options, fields, bag)
    contacts = _contacts(typed.contacts, options, bag) if kind == CustomerKind.COMPANY else []
    if kind == CustomerKind.COMPANY and typed.contacts and bag.errors \
            and not any(row.get("email") for row in typed.contacts):
        bag.add("contacts", _(CONTACT_EMAIL_NEEDED))  # said now, not after the rows are put right
    if bag.errors:
        _refuse_with_duplicates(session, actor, options, typed, bag.errors)
        bag.raise_if_any()
    try:
        return create_customer(session, actor, options, contacts=contacts,
                               confirm_duplicate=typed.confirm_duplicate, **fields)
    except DuplicateSuspected:
        raise
    except ValidationFailed as exc:  # field names of the full form → the quick form's
        raise ValidationFailed(_renamed(exc.errors)) from None


def _field_errors(session: DbSession, options: SaveOptions, fields: dict, bag: ErrorBag) -> None:
    """The full form's rules for the typed fields, on a customer never added to the session; a
    field the quick form has already refused keeps its own message only."""
    probe = Customer(**fields)
    try:
        validate_customer(session, probe, options)
    except ValidationFailed as exc:
        for key, messages in _renamed(exc.errors).items():
            if key in bag.errors or key == "status":
                continue
            for message in messages:
                bag.add(key, message)
    finally:
        if probe in session:
            session.expunge(probe)


def _refuse_with_duplicates(session: DbSession, actor: Operator | None, options: SaveOptions,
                            typed: QuickCustomer, errors: dict[str, list[str]]) -> None:
    """A strong match of what was typed is said together with the field messages (one answer)."""
    if typed.confirm_duplicate:
        return
    probe = make_probe(kind=typed.kind, name=typed.name, email=typed.email, phone=typed.phone,
                       phone_region=options.phone_region)
    strong = [c for c in find_duplicates(session, actor, probe) if c.strong]
    if strong:
        refusal = DuplicateSuspected(strong)
        for key, messages in errors.items():
            refusal.errors.setdefault(key, []).extend(messages)
        raise refusal


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


def active_status(session: DbSession) -> CustomerStatus | None:
    """The status a reactivated customer gets: the default one if it is active, else the first
    active status."""
    default = default_status(session)
    if default is not None and default.is_active:
        return default
    return session.scalar(select(CustomerStatus).where(CustomerStatus.is_active.is_(True))
                          .order_by(CustomerStatus.id))


def reactivate_customer(session: DbSession, actor: Operator | None, options: SaveOptions, customer_id: object,
                        seen_version: SeenVersion) -> Customer:
    """The quick form's Reactivate: an inactive customer found as a match gets an active status
    through the Change Status command (services.customers.change_status: the edit right, the
    version check, the audit event). Raises NotFound for a customer the actor may not view,
    PermissionDenied without the edit right, DomainError when it is active already or no active
    status exists. Flushes; the door commits."""
    customer = load_customer(session, actor, customer_id, Right.EDIT)
    if customer.status is not None and customer.status.is_active:
        raise DomainError(_("%(name)s is active already.", name=customer.display_name))
    status = active_status(session)
    if status is None:
        raise ValidationFailed({FORM: [_("No active status exists: a maintainer must add one.")]})
    return change_status(session, customer, actor, status, options, seen_version=seen_version)
