"""Requests (incidents) for customers: the same access policy and audit trail as customers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import or_, select

from i18n import _
from models import Contact, Customer, Operator, Request
from models.enums import CustomerKind, RequestStatus
from services.access import MAX_ID, Right, require
from services.audit import changes_of, record
from services.contact_info import clean_text
from services.errors import ErrorBag, ValidationFailed
from services.transactions import DbSession, delete, flush
from services.versions import ON_CURRENT, SeenVersion, check_seen_version


def not_its_contacts(ids: Iterable[int]) -> str:
    """The one refusal of assigned contacts that are not the customer's. It names only the ids
    the user sent, and says the same of an id that names nothing, a contact of another customer
    and one the user may not see: it tells nothing about records they cannot open."""
    return _("Assign only contacts of the request's customer; these contact ids are not among its "
             "contacts: %(ids)s.", ids=", ".join(str(i) for i in sorted(set(ids))))


def contacts_of_customer(session: DbSession, customer: Customer, ids: Iterable[int],
                         field: str = "contacts") -> list[Contact]:
    """The contacts of `customer` with these ids (a door that takes contact ids: the API). Raises
    ValidationFailed on `field` with `not_its_contacts` for every id that is not one of them."""
    wanted = {i for i in ids if 0 < i <= MAX_ID}
    found = list(session.scalars(select(Contact).where(Contact.id.in_(wanted),
                                                       Contact.customer_id == customer.id))) if wanted else []
    strangers = set(ids) - {c.id for c in found}
    if strangers:
        raise ValidationFailed({field: [not_its_contacts(strangers)]})
    return sorted(found, key=lambda c: c.id)


def offered_contacts(session: DbSession, customer: Customer | None,
                     assigned: Iterable[int] = ()) -> list[Contact]:
    """The contacts a request of `customer` may be assigned (the request form's picker): its
    active contacts, main contacts first, then by name — and those of `assigned` that are its
    contacts but deactivated since, so that saving the form does not drop them unseen. A private
    person has none. The door decides whether the operator may view `customer`."""
    if customer is None or customer.id is None:
        return []
    kept = [i for i in assigned if 0 < i <= MAX_ID]
    active = Contact.is_active.is_(True)
    shown = or_(active, Contact.id.in_(kept)) if kept else active
    return list(session.scalars(select(Contact).where(Contact.customer_id == customer.id, shown)
                                .order_by(Contact.is_main.desc(), Contact.sort_name, Contact.id)))


def validate_request(request: Request) -> None:
    """A subject, a customer, and assigned contacts only of that customer. Raises ValidationFailed."""
    bag = ErrorBag()
    request.subject = bag.check("subject", clean_text, request.subject)
    if not request.subject:
        bag.add("subject", _("A request needs a subject."))
    if request.customer is None:
        bag.add("customer", _("Choose the customer this request is for."))
    else:
        strangers = [c.id for c in request.contacts if c.customer_id != request.customer.id]
        if strangers:
            bag.add("contacts", not_its_contacts(strangers))
    bag.raise_if_any()


def save_request(session: DbSession, request: Request, actor: Operator | None, *,
                 seen_version: SeenVersion = ON_CURRENT) -> Request:
    """Validate and flush a new or changed request with its audit event (the door's unit of work
    commits). The actor needs the view right on the customer (whoever may see a customer may
    raise an incident for it). A change of an existing request is based on `seen_version`
    (services.versions: VersionRequired when a door sends None, StaleRecord when it changed
    since). Raises ValidationFailed or PermissionDenied; the door's unit of work then rolls back."""
    is_new = request.id is None
    old_status = None if is_new else _stored_status(request)
    with session.no_autoflush:
        validate_request(request)
        if actor is not None:
            require(session, actor, request.customer.id, Right.VIEW)
        check_seen_version(session, "request", request, seen_version)
    if is_new:
        request.created_by = actor
    session.add(request)
    changes = changes_of(request)
    flush(session)
    record(session, actor, "create" if is_new else "update", request, changes)
    flush(session)
    _tell_recipients(session, request, actor, is_new=is_new, old_status=old_status)
    return request


def _stored_status(request: Request) -> RequestStatus | None:
    from sqlalchemy import inspect

    history = inspect(request).attrs.status.history
    if history.deleted:
        return history.deleted[0]
    return request.status


def _tell_recipients(session: DbSession, request: Request, actor: Operator | None, *, is_new: bool,
                     old_status: RequestStatus | None) -> None:
    """A request raised at the desk, or its status changed on the edit form, reaches its recipients
    and the status history like any other (services.discussion is where those rules live)."""
    from services.discussion import Author, note_status_change
    from services.mail_out import queue_copies

    if is_new:
        queue_copies(session, request, created=True, exclude_email=actor.email if actor else None)
    elif old_status is not None and old_status != request.status and actor is not None:
        note_status_change(session, request, Author.of_operator(actor), old_status, request.status)


def delete_request(session: DbSession, request: Request, actor: Operator | None) -> None:
    """Delete a request with an audit event. Deleting needs the edit right on its customer (the
    panel's delete scope); raises PermissionDenied without it. Flushes; the door commits."""
    if actor is not None:
        require(session, actor, request.customer_id, Right.EDIT)
    record(session, actor, "delete", request)
    delete(session, request)


@dataclass(frozen=True)
class Recipient:
    name: str
    email: str
    why: str


def request_recipients(request: Request) -> list[Recipient]:
    """Who receives copies of a request's communication: the customer's main contacts (all its
    requests), the contacts assigned to this request, and a private person's own e-mail. Each
    address once (case-insensitive), with the first reason that put it on the list; people
    without an e-mail cannot receive anything and are left out."""
    customer = request.customer
    found: list[Recipient] = []
    seen: set[str] = set()

    def add(name: str, email: str | None, why: str) -> None:
        if email and email.casefold() not in seen:
            seen.add(email.casefold())
            found.append(Recipient(name, email, why))

    if customer is None:
        return found
    if customer.kind == CustomerKind.PERSON:
        add(customer.display_name, customer.email, "the customer")
    # A deactivated contact receives nothing (the links in its copies would be refused).
    for contact in sorted(customer.contacts, key=lambda c: c.sort_name):
        if contact.is_main and contact.is_active:
            add(contact.display_name, contact.email, "main contact")
    for contact in sorted(request.contacts, key=lambda c: c.sort_name):
        # A contact moved to another company keeps its old assignments until someone edits them.
        if contact.is_active and contact.customer_id == customer.id:
            add(contact.display_name, contact.email, "assigned to this request")
    requester = request.requester_contact
    if requester is not None and requester.customer_id == customer.id and requester.is_active:
        add(requester.display_name, requester.email, "raised this request")
    return found
