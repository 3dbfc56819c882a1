"""Contacts of company customers: edited on their own or inline on their company."""

from __future__ import annotations

from sqlalchemy import func, inspect, select

from i18n import _
from models import Contact, Operator
from models.enums import CustomerKind
from services.access import Right, require
from services.audit import changes_of, record
from services.batches import flush_command
from services.contact_info import clean_text, normalise_email, phone_to_store, stored_value
from services.errors import N_, ErrorBag, ValidationFailed
from services.limits import check_lengths
from services.transactions import DbSession, flush
from services.versions import ON_CURRENT, SeenVersion, check_seen_version

# English (compared by code and tests); shown as _(CONTACT_EMAIL_NEEDED).
CONTACT_EMAIL_NEEDED = N_("A company needs at least one contact with an e-mail: C-Desk sends the "
                          "communication on a company's requests to its contacts, not to the company.")


def _check_fields(contact: Contact, phone_region: str, bag: ErrorBag) -> None:
    for field in ("first_name", "last_name", "title"):
        setattr(contact, field, bag.check(field, clean_text, getattr(contact, field)))
    if not contact.last_name:
        bag.add("last_name", _("A contact needs a last name."))
    contact.email = bag.check("email", normalise_email, contact.email)
    typed, stored = contact.phone, stored_value(contact, "phone")
    contact.phone = bag.check("phone", lambda v: phone_to_store(v, stored, phone_region), typed)
    if not contact.phone:
        contact.phone_type = None
    check_lengths(contact, bag)


def _keeps_an_email_contact(session: DbSession, contact: Contact, company_id: int | None = None,
                            field: str = "email") -> None:
    """A company may not lose its last contact with an e-mail (services.customers'
    company-contact rule), whether by deleting that contact, by clearing its e-mail or by moving
    it to another company: ValidationFailed on `field` unless another contact of the company
    (`company_id`, else the contact's own) has one."""
    if company_id is None:
        company_id = contact.customer_id if contact.customer_id is not None else (
            contact.customer.id if contact.customer is not None else None)
    if company_id is None:
        return
    others = session.scalar(select(func.count()).select_from(Contact).where(
        Contact.customer_id == company_id, Contact.id != contact.id, Contact.email.is_not(None),
        Contact.email != ""))
    if not others:
        raise ValidationFailed({field: [_(CONTACT_EMAIL_NEEDED)]})


def _check_what_it_leaves(session: DbSession, contact: Contact) -> None:
    """An existing contact that had an e-mail (as stored) and loses it, or leaves its company:
    the company it had may not be left without a contact with an e-mail. Read from the stored
    row, so it holds however the change was made (the relationship, the key, loaded or not)."""
    stored = session.execute(select(Contact.customer_id, Contact.email)
                             .where(Contact.id == contact.id)).one_or_none()
    if stored is None or not stored.email:
        return
    company = contact.customer.id if contact.customer is not None else contact.customer_id
    if company != stored.customer_id:
        _keeps_an_email_contact(session, contact, stored.customer_id, field="customer")
    elif not contact.email:
        _keeps_an_email_contact(session, contact, stored.customer_id)


def contact_field_errors(contact: Contact, phone_region: str) -> dict[str, list[str]]:
    """Normalise a new contact; its messages per field (empty when it may be saved)."""
    bag = ErrorBag()
    _check_fields(contact, phone_region, bag)
    return bag.errors


def check_contact(contact: Contact, phone_region: str) -> list[str]:
    """Normalise a contact of a company being saved; the messages of broken rules."""
    return [m for messages in contact_field_errors(contact, phone_region).values() for m in messages]


def validate_contact(session: DbSession, contact: Contact, phone_region: str) -> None:
    """Check a contact edited on its own; raises ValidationFailed with field messages."""
    bag = ErrorBag()
    with session.no_autoflush:
        _check_fields(contact, phone_region, bag)
        if contact.customer is None:
            bag.add("customer", _("Choose the company this contact belongs to."))
        elif contact.customer.kind != CustomerKind.COMPANY:
            bag.add("customer", _("Only a company has contacts; a person is reached directly."))
    bag.raise_if_any()


def _check_rights(session: DbSession, contact: Contact, actor: Operator | None) -> None:
    """Editing a contact edits its company: the edit right on the company it belongs to, and
    on the company it is taken from when it moves."""
    if actor is None:
        return
    history = inspect(contact).attrs.customer.history
    for company in [*history.deleted, *history.unchanged, *history.added]:
        if company is not None and company.id is not None:
            require(session, actor, company.id, Right.EDIT)


def save_contact(
    session: DbSession,
    contact: Contact,
    actor: Operator | None,
    phone_region: str,
    *,
    seen_version: SeenVersion = ON_CURRENT,
) -> Contact:
    """Validate and flush a contact with its audit event (the door's unit of work commits). A
    change of an existing contact is based on `seen_version` (services.versions: VersionRequired
    when a door sends None, StaleRecord when changed since; `ON_CURRENT`, the default, for the
    system's jobs and new contacts). Raises ValidationFailed or PermissionDenied; the door's unit
    of work then rolls back."""
    is_new = contact.id is None
    with session.no_autoflush:
        _check_rights(session, contact, actor)
        check_seen_version(session, "contact", contact, seen_version)
    validate_contact(session, contact, phone_region)
    if not is_new:
        with session.no_autoflush:
            _check_what_it_leaves(session, contact)
    session.add(contact)
    changes = changes_of(contact)
    record(session, actor, "create" if is_new else "update", contact, changes)
    flush_command(session)  # the event takes the id and version this flush gives (services.audit)
    return contact


def delete_contact(session: DbSession, contact: Contact, actor: Operator | None) -> None:
    """Delete a contact (an edit of its company); raises PermissionDenied without that right."""
    if actor is not None:
        require(session, actor, contact.customer_id, Right.EDIT)
    if contact.email:
        _keeps_an_email_contact(session, contact)
    record(session, actor, "delete", contact)
    session.delete(contact)
    flush(session)
