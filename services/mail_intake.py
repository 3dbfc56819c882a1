"""Requests by e-mail: what one mail read from an intake mailbox becomes, decided and written in
the caller's unit of work (services.pop3_reader is the door: one unit of work per mail, committed
before the mail is deleted from the mailbox).

1. The mail is remembered first: an IncomingMail row unique per (mailbox, Message-ID — or the
   sha256 of the raw bytes without one) is flushed before anything else, so of two fetchers
   reading the same mail one waits and then fails on the unique key, and a mail whose key is
   recorded already is only deleted again, never processed twice (`Received.already`).
2. The sender (From, case-insensitive) is recognised as a private person (e-mail or secondary
   e-mail) or an active contact — of the mailbox's customer for a customer's own mailbox, of
   any customer for the built-in one. An address of several people is held with their names.
   Unknown senders never become customers: held or refused (GlobalSettings.unknown_senders).
   A refused mail is recorded (sender, subject, reason) without its text and gets no reply of
   any kind: answering forged senders is how a desk becomes a spam source (backscatter).
3. A customer whose requests by e-mail are off: held. Otherwise the mail answers a request when
   In-Reply-To / References name one of our copies (OutgoingMail.message_id) or a request's
   thread (services.mail_out.THREAD_ID, on our MAIL_DOMAIN), or its subject carries "[CD-123]":
   a comment, when the sender may see that request (services.discussion.may_see), else held.
   Without a reference: a new request (source e-mail). Either way as the sender
   (Author.of_sender, via e-mail), with its attachments.
4. Automatic mail (Auto-Submitted, Precedence bulk/junk/list, bounces) never raises a request and
   its comment sends no copies, so two out-of-office replies cannot ping-pong through the desk.
5. The same Message-ID already made a request or comment through another intake mailbox (a mail
   sent to two intake addresses): recorded as discarded, pointing at that request.
6. A mail the domain refuses (services.discussion's rules) or whose MIME structure is broken is
   held with the reason; the savepoint around the decision leaves nothing half-written. A held
   mail keeps its safe text (and the names of its attachments, not their bytes: an unknown
   sender's mail must not fill the database); services.held_mail is where an operator decides.
7. A mail over MAIL_MESSAGE_LIMIT is refused on its headers alone, never read whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select

from models import Contact, Customer, GlobalSettings, Request
from models.discussion import RequestComment
from models.enums import CustomerKind, IntakeOutcome, RequestSource, UnknownSenders, Via
from models.mail import IncomingMail, OutgoingMail
from services.customer_settings import settings_of
from services.discussion import (
    COMMENT_LIMIT,
    SUBJECT_LIMIT,
    Author,
    add_comment,
    attach,
    may_see,
    raise_request,
)
from services.errors import DomainError, ValidationFailed
from services.mail_out import REFERENCE, THREAD_ID, mail_domain, one_line
from services.mail_parse import ParsedMail, megabytes, message_key, parse_mail, read_headers
from services.mail_text import trim_quoted
from services.transactions import DbSession, flush, unit_of_work

BUILTIN = "builtin"
LOOP_MAILS, LOOP_MINUTES = 10, 10  # more mails from one sender within the minutes: a mail loop
NO_REPLY = "No reply was sent."


@dataclass(frozen=True)
class IntakeScope:
    """The mailbox a mail came from: "builtin", or "customer:<id>" — a customer's own mailbox,
    whose senders are recognised among that customer's people only. A dedicated mailbox holds
    only mail for the desk; a shared one (the customer's C-Monitor mailbox, whose address is not
    its intake address) holds other mail too, of which only what is addressed to an intake
    address is ours — the rest is left where it is."""

    mailbox: str = BUILTIN
    customer_id: int | None = None
    intake_addresses: frozenset[str] = frozenset()
    dedicated: bool = True

    @classmethod
    def of_customer(cls, customer_id: int, mailbox_address: str | None, intake_address: str | None):
        own, intake = (mailbox_address or "").lower(), (intake_address or "").lower()
        return cls(f"customer:{customer_id}", customer_id, frozenset({intake} - {""}),
                   dedicated=not own or not intake or own == intake)

    def takes(self, parsed: ParsedMail) -> bool:
        return self.dedicated or bool(parsed.recipients & self.intake_addresses)


@dataclass(frozen=True)
class Limits:
    message: int
    attachment: int

    @classmethod
    def of(cls, config: Any) -> Limits:
        return cls(int(config["MAIL_MESSAGE_LIMIT"]), int(config["MAIL_ATTACHMENT_LIMIT"]))


@dataclass(frozen=True)
class Received:
    """What became of a mail: `delete` it from the mailbox once the unit of work has committed."""

    key: str
    outcome: IntakeOutcome | None = None
    mail_id: int | None = None
    already: bool = False  # recorded before (a second delivery, or a run that died before DELE)
    not_ours: bool = False  # a shared mailbox's mail for someone else: left in the mailbox

    @property
    def delete(self) -> bool:
        return not self.not_ours


@dataclass(frozen=True)
class Incoming:
    """A mail as read from the mailbox, before any decision: parsed, and the key it is
    remembered by. `oversized`: only its headers were read (it is over MAIL_MESSAGE_LIMIT)."""

    parsed: ParsedMail
    key: str
    size: int
    oversized: bool = False


def read_mail(raw: bytes, limits: Limits) -> Incoming:
    parsed = parse_mail(raw, limits.attachment)
    return Incoming(parsed, message_key(parsed, raw), len(raw))


def read_oversized(headers: bytes, size: int) -> Incoming:
    """A mail over the limit, known by its headers only; without a Message-ID it is remembered by
    the digest of its headers (its raw bytes are never read)."""
    parsed = read_headers(headers)
    return Incoming(parsed, message_key(parsed, headers), size, oversized=True)


def receive(session: DbSession, scope: IntakeScope, incoming: Incoming, limits: Limits) -> Received:
    """Decide what the mail becomes and write it (flushed; the door commits)."""
    parsed, key = incoming.parsed, incoming.key
    if not scope.takes(parsed):
        return Received(key, not_ours=True)
    if is_recorded(session, scope, key):
        return Received(key, already=True)
    row = _remember(session, scope, key, parsed, incoming.size)
    twin = _twin(session, scope, key)
    if twin is not None:
        # Sent to two intake addresses read from two mailboxes: one request, not two.
        row.outcome = IntakeOutcome.DISCARDED
        row.customer_id, row.request_id = twin.customer_id, twin.request_id
        row.reason = "The same mail came in through another intake mailbox and was added there."
    elif parsed.message_id and session.scalar(select(OutgoingMail.id).where(
            OutgoingMail.message_id == parsed.message_id)) is not None:
        row.outcome = IntakeOutcome.DISCARDED
        row.reason = "Our own copy came back to the intake (a forward or redirect): not added."
    elif incoming.oversized:
        row.outcome = IntakeOutcome.REFUSED
        row.reason = (f"The mail is {megabytes(incoming.size)}, over the limit of "
                      f"{megabytes(limits.message)}: refused without reading it. {NO_REPLY}")
    else:
        try:
            with unit_of_work(session, savepoint=True):
                _decide(session, scope, parsed, row)
        except DomainError as exc:
            _hold(row, f"Not added automatically: {_words(exc)}", parsed)
    flush(session)
    return Received(key, row.outcome, row.id)


def hold_unprocessed(session: DbSession, scope: IntakeScope, incoming: Incoming, why: str) -> Received:
    """The last resort of the door when deciding failed unexpectedly: the mail is held with what
    could be read of it, for an operator, instead of being read again and again."""
    if is_recorded(session, scope, incoming.key):
        return Received(incoming.key, already=True)
    row = _remember(session, scope, incoming.key, incoming.parsed, incoming.size)
    _hold(row, why, incoming.parsed)
    flush(session)
    return Received(incoming.key, row.outcome, row.id)


def is_recorded(session: DbSession, scope: IntakeScope, key: str) -> bool:
    return session.scalar(select(IncomingMail.id).where(IncomingMail.mailbox == scope.mailbox,
                                                        IncomingMail.message_key == key)) is not None


def _twin(session: DbSession, scope: IntakeScope, key: str) -> IncomingMail | None:
    """The same Message-ID made a request or comment from another mailbox already."""
    if key.startswith("sha256"):
        return None  # a digest of bytes says less than a sender's Message-ID: each mailbox decides
    return session.scalar(select(IncomingMail).where(
        IncomingMail.message_key == key, IncomingMail.mailbox != scope.mailbox,
        IncomingMail.outcome.in_([IntakeOutcome.REQUEST_CREATED, IntakeOutcome.COMMENT_ADDED])).limit(1))


def _remember(session: DbSession, scope: IntakeScope, key: str, parsed: ParsedMail,
              size: int) -> IncomingMail:
    row = IncomingMail(mailbox=scope.mailbox, message_key=key, from_address=parsed.from_address,
                       from_name=parsed.from_name[:255] or None, subject=parsed.subject[:400] or None,
                       size=size, outcome=IntakeOutcome.HELD, customer_id=scope.customer_id)
    session.add(row)
    flush(session)  # first: a second fetcher of the same mail stops here
    return row


# --- the decision ---------------------------------------------------------------------------------

def _decide(session: DbSession, scope: IntakeScope, parsed: ParsedMail, row: IncomingMail) -> None:
    people = recognise(session, parsed.from_address, scope.customer_id) if parsed.from_address else []
    if len(people) == 1:  # its customer's operators see it even when it is held below
        row.customer_id = people[0][0].id
    if parsed.problem:
        return _hold(row, parsed.problem, parsed)
    if parsed.sender_problem == "The mail names more than one sender.":
        return _hold(row, parsed.sender_problem, parsed)
    if not people:
        return _unknown(session, row, parsed)
    if len(people) > 1:
        names = "; ".join(_name_of(customer, contact) for customer, contact in people[:5])
        return _hold(row, f"{parsed.from_address} is the address of more than one person ({names}): choose "
                          "whose mail this is.", parsed)
    customer, contact = people[0]
    row.customer_id = customer.id
    if not settings_of(session, customer).requests_by_email_enabled:
        return _hold(row, f"Requests by e-mail are off for this customer ({customer.display_name}).", parsed)
    if _looping(session, parsed.from_address):
        return _hold(row, f"{parsed.from_address} sent more than {LOOP_MAILS} mails in {LOOP_MINUTES} "
                          "minutes: held, in case of a mail loop (a forward rule, an autoresponder).", parsed)
    author = Author.of_sender(Via.EMAIL, parsed.from_address or "", customer, contact)
    named, request = referenced_request(session, parsed)
    if named is not None:
        if request is None or request.customer_id != customer.id:
            return _hold(row, f"It names {named}, which is no request of {customer.display_name}.", parsed)
        if not may_see(session, request, author):
            return _hold(row, f"{author.name} may not see {named}.", parsed)
        return _comment(session, row, request, author, parsed)
    if parsed.auto_submitted:
        return _hold(row, "An automatic message (an out-of-office reply or a delivery report) that names no "
                          "request: not turned into a request.", parsed)
    return _new_request(session, row, author, parsed)


def _looping(session: DbSession, address: str | None) -> bool:
    from datetime import timedelta

    from models.base import utcnow

    since = utcnow() - timedelta(minutes=LOOP_MINUTES)
    recent = session.scalar(select(func.count(IncomingMail.id)).where(
        IncomingMail.from_address == address, IncomingMail.received_at >= since,
        IncomingMail.outcome.in_([IntakeOutcome.REQUEST_CREATED, IntakeOutcome.COMMENT_ADDED])))
    return (recent or 0) >= LOOP_MAILS


def _unknown(session: DbSession, row: IncomingMail, parsed: ParsedMail) -> None:
    who = parsed.from_address or "The sender"
    if parsed.from_address is None:
        why = parsed.sender_problem or "The mail has no sender address."
    else:
        where = " of this mailbox's customer" if row.customer_id is not None else ""
        why = f"{who} is not the address of a customer or contact{where}."
    settings = session.get(GlobalSettings, 1)
    if settings is not None and settings.unknown_senders == UnknownSenders.REFUSE:
        row.outcome = IntakeOutcome.REFUSED
        row.reason = f"{why} Refused (the setting for unknown senders). {NO_REPLY}"[:500]
        return
    _hold(row, why, parsed)


def _hold(row: IncomingMail, reason: str, parsed: ParsedMail) -> None:
    row.outcome = IntakeOutcome.HELD
    row.reason = reason[:500]
    notes = list(parsed.notes)
    if parsed.attachments:
        names = ", ".join(f"“{a.filename}”" for a in parsed.attachments)
        notes.append(f"A held mail keeps its text only; its attachments were not kept: {names}.")
    row.body_text = with_notes(parsed.text, notes)


def _comment(session: DbSession, row: IncomingMail, request: Request, author: Author,
             parsed: ParsedMail) -> None:
    body = with_notes(trim_quoted(parsed.text) if parsed.text else "", parsed.notes,
                      empty="(The e-mail had no text.)" if not parsed.attachments else "(Attachments only.)")
    # An automatic reply joins the thread but sends no copies: no mail loop between autoresponders.
    comment = add_comment(session, request, author, body, notify=not parsed.auto_submitted)
    _attach_all(session, request, comment, parsed)
    row.outcome, row.request_id, row.comment_id = IntakeOutcome.COMMENT_ADDED, request.id, comment.id
    row.reason = "An automatic reply: added without sending copies." if parsed.auto_submitted else None


def _new_request(session: DbSession, row: IncomingMail, author: Author, parsed: ParsedMail) -> None:
    description = with_notes(parsed.text, parsed.notes, empty="")
    first_line = next((line for line in description.split("\n") if line.strip()), "")
    subject = one_line(parsed.subject or first_line[:120]) or "(no subject)"
    if len(subject) > SUBJECT_LIMIT:
        subject = subject[:SUBJECT_LIMIT - 1] + "…"
    request = raise_request(session, author, subject, description or None, source=RequestSource.EMAIL)
    _attach_all(session, request, None, parsed)
    row.outcome, row.request_id = IntakeOutcome.REQUEST_CREATED, request.id


def _attach_all(session: DbSession, request: Request, comment: RequestComment | None,
                parsed: ParsedMail) -> None:
    for item in parsed.attachments:
        attach(session, comment, item.filename, item.content_type, item.data, request=request)
    if parsed.attachments:
        flush(session)


def with_notes(text: str, notes: list[str], empty: str = "(The e-mail had no text.)") -> str:
    """The text, then what was changed or left out in brackets; within COMMENT_LIMIT."""
    tail = "\n".join(f"[{note}]" for note in notes)
    room = COMMENT_LIMIT - len(tail) - 2
    cut = "\n[… the e-mail was longer; the rest is left out]"
    if len(text) > room:
        text = text[:max(0, room - len(cut))].rstrip() + cut
    text = text.strip() or empty
    return "\n\n".join(part for part in (text, tail) if part)[:COMMENT_LIMIT]


def _words(exc: DomainError) -> str:
    if isinstance(exc, ValidationFailed):
        return " ".join(message for messages in exc.errors.values() for message in messages)
    return str(exc)


# --- who wrote, about what ----------------------------------------------------------------------

def recognise(session: DbSession, address: str | None, customer_id: int | None = None
              ) -> list[tuple[Customer, Contact | None]]:
    """The people `address` belongs to: private persons (e-mail or secondary e-mail) and active
    contacts, of live customers (not merged away) — of `customer_id` only, when given."""
    if not address:
        return []
    folded = address.lower()
    alive: list[ColumnElement[bool]] = [Customer.merged_into_id.is_(None)]
    if customer_id is not None:
        alive.append(Customer.id == customer_id)
    persons = session.scalars(select(Customer).where(
        Customer.kind == CustomerKind.PERSON, *alive,
        or_(func.lower(Customer.email) == folded, func.lower(Customer.secondary_email) == folded))
        .order_by(Customer.id))
    contacts = session.scalars(select(Contact).join(Customer, Contact.customer_id == Customer.id).where(
        func.lower(Contact.email) == folded, Contact.is_active.is_(True), *alive).order_by(Contact.id))
    return [(person, None) for person in persons] + [(contact.customer, contact) for contact in contacts]


def _name_of(customer: Customer, contact: Contact | None) -> str:
    if contact is None:
        return customer.display_name
    return f"{contact.display_name} of {customer.display_name}"


def referenced_request(session: DbSession, parsed: ParsedMail) -> tuple[str | None, Request | None]:
    """(the reference the mail names, its request or None). Our Message-IDs in In-Reply-To /
    References come first (a reply to one of our copies), then "[CD-123]" in the subject."""
    domain = mail_domain().lower()
    for message_id in parsed.references:
        thread = THREAD_ID.fullmatch(message_id)
        if thread and thread.group(2).lower() == domain:
            number = int(thread.group(1))
            found = session.get(Request, number) if number < 2**31 else None
            if found is not None:
                return found.reference, found
            continue
        request_id = session.scalar(select(OutgoingMail.request_id)
                                    .where(OutgoingMail.message_id == message_id))
        if request_id is not None:
            found = session.get(Request, request_id)
            return (found.reference if found else f"CD-{request_id}"), found
    match = REFERENCE.search(parsed.subject or "")
    if match:
        number = int(match.group(1))
        found = session.get(Request, number) if number < 2**31 else None
        return f"CD-{number}", found
    return None, None
