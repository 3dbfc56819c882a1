"""Held mail: what an operator decides about a mail the intake could not place (an unknown or
ambiguous sender, requests by e-mail off, a reference the sender may not see, broken MIME).

Who sees what: an operator the held mail of customers they may view (services.access); a
maintainer all of it, also mail that belongs to no customer (unknown senders). Decisions:
- create a request for a chosen customer (and optionally one of its contacts, who is then its
  requester and receives its copies): raised as from the mail's sender, source e-mail;
- add the mail's text to a request as a comment from its sender;
- discard it.
Each decision is audited with the operator, and is taken once: two operators deciding the same
mail at the same moment — one wins, the other is told (a conditional UPDATE of the outcome).
A held mail keeps its text only (services.mail_intake), so a decision never has attachments.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, select, true, update

from i18n import _, _l
from models import Contact, Customer, Operator, Request
from models.base import utcnow
from models.enums import IntakeOutcome, RequestSource, Via
from models.mail import IncomingMail
from services.access import MAX_ID, Right, can, customer_condition, require
from services.audit import record
from services.discussion import SUBJECT_LIMIT, Author, add_comment, raise_request
from services.errors import DomainError, NotFound, ValidationFailed
from services.mail_out import REFERENCE, one_line
from services.transactions import DbSession, flush

DECIDED = _l("Another operator has decided about this mail already.")


def visible_mail(session: DbSession, actor: Operator | None) -> ColumnElement[bool]:
    """WHERE condition on IncomingMail: what `actor` may see."""
    if actor is None or not actor.is_active:
        return false()
    if actor.is_maintainer:
        return true()
    visible = select(Customer.id).where(customer_condition(session, actor, Right.VIEW))
    return and_(IncomingMail.customer_id.is_not(None), IncomingMail.customer_id.in_(visible))


def held_mail(session: DbSession, actor: Operator | None, outcome: IntakeOutcome = IntakeOutcome.HELD,
              limit: int = 200) -> list[IncomingMail]:
    """The mail of one outcome `actor` may see, newest first."""
    return list(session.scalars(select(IncomingMail).where(
        IncomingMail.outcome == outcome, visible_mail(session, actor))
        .order_by(IncomingMail.id.desc()).limit(limit)))


def load_mail(session: DbSession, actor: Operator | None, mail_id: int | None) -> IncomingMail:
    """The mail for `actor`, or NotFound (also for one they may not see: its existence is not told)."""
    if mail_id is None or not 0 < mail_id <= MAX_ID:
        raise NotFound(_("No such mail."))
    found = session.scalar(select(IncomingMail).where(IncomingMail.id == mail_id,
                                                      visible_mail(session, actor)))
    if found is None:
        raise NotFound(_("No such mail."))
    return found


def candidates(session: DbSession, actor: Operator, mail: IncomingMail, search: str | None = None,
               limit: int = 20) -> list[Customer]:
    """Customers to offer for the mail: the mailbox's or sender's customer and those whose people
    have the sender's address, or those found by `search` — only ones `actor` may view."""
    from services.mail_intake import recognise
    from services.search import customer_search_conditions

    allowed = customer_condition(session, actor, Right.VIEW)
    if search and search.strip():
        query = select(Customer).where(allowed, *customer_search_conditions(search))
        return list(session.scalars(query.order_by(Customer.sort_name).limit(limit)))
    ids = {customer.id for customer, _ in recognise(session, mail.from_address)}
    if mail.customer_id is not None:
        ids.add(mail.customer_id)
    if not ids:
        return []
    return list(session.scalars(select(Customer).where(allowed, Customer.id.in_(ids))
                                .order_by(Customer.sort_name).limit(limit)))


def create_request(session: DbSession, actor: Operator, mail: IncomingMail, customer_id: int | None,
                   contact_id: int | None = None) -> Request:
    """Raise a request from the held mail for the chosen customer (and contact). Raises
    ValidationFailed (no customer chosen, a contact of another customer, decided already),
    PermissionDenied or NotFound."""
    if customer_id is None:
        raise ValidationFailed({"customer": [_("Choose the customer this request is for.")]})
    require(session, actor, customer_id, Right.VIEW)
    customer = session.get(Customer, customer_id)
    if customer is None or customer.merged_into_id is not None:
        raise NotFound(_("No such customer."))
    contact = None
    if contact_id is not None:
        contact = session.get(Contact, contact_id)
        if contact is None or contact.customer_id != customer.id:
            raise ValidationFailed({"contact": [_("Choose one of this customer's contacts, or none.")]})
    _decide(session, mail, IntakeOutcome.REQUEST_CREATED, actor)
    subject = one_line(mail.subject) or "(no subject)"
    if len(subject) > SUBJECT_LIMIT:
        subject = subject[:SUBJECT_LIMIT - 1] + "…"
    request = raise_request(session, _sender(mail, customer, contact), subject, mail.body_text or None,
                            source=RequestSource.EMAIL)
    mail.customer_id, mail.request_id = customer.id, request.id
    _audit(session, actor, mail, f"request {request.reference} created for {customer.display_name}")
    return request


def add_to_request(session: DbSession, actor: Operator, mail: IncomingMail, reference: str | None) -> Request:
    """Add the held mail to the request `reference` ("CD-12", "[CD-12]" or "12") as a comment from
    its sender. Raises ValidationFailed (also for a request the operator may not see)."""
    number = _request_number(reference)
    request = session.get(Request, number) if number is not None else None
    if request is None or not can(session, actor, request.customer_id, Right.VIEW):
        # The same words for a request the operator may not see: its existence is not told.
        raise ValidationFailed({"request": [_("Type the reference of a request you may see, like CD-12.")]})
    _decide(session, mail, IntakeOutcome.COMMENT_ADDED, actor)
    author = _sender(mail, request.customer, None)
    comment = add_comment(session, request, author, mail.body_text or "(The e-mail had no text.)")
    mail.customer_id, mail.request_id, mail.comment_id = request.customer_id, request.id, comment.id
    _audit(session, actor, mail, f"added to {request.reference}")
    return request


def discard(session: DbSession, actor: Operator, mail: IncomingMail) -> None:
    """Throw the held mail away (its row stays, so a second delivery is still recognised)."""
    _decide(session, mail, IntakeOutcome.DISCARDED, actor)
    _audit(session, actor, mail, "discarded")


def _decide(session: DbSession, mail: IncomingMail, outcome: IntakeOutcome, actor: Operator) -> None:
    """Take the decision once: only a mail still held moves on (one UPDATE, so of two operators
    at the same moment only one succeeds)."""
    if mail.outcome != IntakeOutcome.HELD:
        raise DomainError(str(DECIDED))
    moved = session.execute(update(IncomingMail).where(
        IncomingMail.id == mail.id, IncomingMail.outcome == IntakeOutcome.HELD)
        .values(outcome=outcome, decided_by_id=actor.id, decided_at=utcnow())
        .execution_options(synchronize_session=False))
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise DomainError(str(DECIDED))
    session.refresh(mail)


def _sender(mail: IncomingMail, customer: Customer, contact: Contact | None) -> Author:
    """The mail's sender on the customer's side, as the operator placed them."""
    if contact is not None:
        return Author.of_sender(Via.EMAIL, mail.from_address or contact.email or "", customer, contact)
    name = mail.from_name or mail.from_address or customer.display_name
    return Author(name=name, via=Via.EMAIL, email=mail.from_address, customer=customer)


def _audit(session: DbSession, actor: Operator, mail: IncomingMail, what: str) -> None:
    flush(session)
    record(session, actor, "intake_decision", mail,
           {"outcome": [IntakeOutcome.HELD.value, mail.outcome.value], "decision": [None, what]},
           entity_type="incomingmail")


def _request_number(reference: str | None) -> int | None:
    text = (reference or "").strip()
    match = REFERENCE.search(f"[{text.strip('[]')}]") if text else None
    digits = match.group(1) if match else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 10:
        return None
    number = int(digits)
    return number if 0 < number <= MAX_ID else None


__all__ = ["add_to_request", "candidates", "create_request", "discard", "held_mail", "load_mail",
           "visible_mail"]
