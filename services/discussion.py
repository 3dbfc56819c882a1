"""A request's discussion and status flow — the one place their rules live. Every door (the
operator's request page, the portal, a signed link in an e-mail, a mail read from an intake
mailbox, the API) calls these; each flushes, and the door's unit of work commits.

Status flow: New → In progress → Completed (RESOLVED, by an operator) → Accepted (CLOSED, by the
customer, optionally with a rating) — or Reopened (by the customer, always with a comment), which
an operator takes back to In progress. Operators may set any status (a desk closes a request whose
customer never answers); the customer's side may only accept or reopen a completed request, or
reopen an accepted one.

Every comment and status change the customer may see queues a copy for the request's recipients
(services.mail_out); internal notes never leave the desk.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, exists, false, or_, select

from i18n import _
from models import Contact, Customer, Operator, PortalAccount, Request, request_contact
from models.base import utcnow
from models.discussion import RequestAttachment, RequestComment, RequestStatusChange
from models.enums import RequestSource, RequestStatus, Via
from services.access import Right, require
from services.audit import record
from services.contact_info import clean_text
from services.errors import DomainError, ErrorBag, PermissionDenied
from services.limits import too_long
from services.transactions import DbSession, flush

COMMENT_LIMIT = 20_000  # characters; a longer mail is cut with a note (services.mail_intake)
REMARK_LIMIT = 2_000
SUBJECT_LIMIT = 255


@dataclass(frozen=True)
class Author:
    """Who acts in a request's thread. An operator, or someone on the customer's side: a portal
    account (of the customer itself or of one of its contacts), or an address an e-mail or a
    signed link came from, recognised as the customer (a private person) or one of its contacts."""

    name: str
    via: Via
    operator: Operator | None = None
    portal_account: PortalAccount | None = None
    email: str | None = None
    customer: Customer | None = None  # the customer they belong to (customer side only)
    contact: Contact | None = None  # the contact they are, when not the customer itself
    may_see_all: bool = field(default=False)  # their security group lets a contact see all requests
    may_create: bool = field(default=True)

    @classmethod
    def of_operator(cls, operator: Operator) -> Author:
        return cls(name=operator.full_name, via=Via.DESK, operator=operator, email=operator.email)

    @classmethod
    def of_portal(cls, account: PortalAccount) -> Author:
        group = account.security_group
        contact = account.contact
        customer = contact.customer if contact is not None else account.customer
        person = contact if contact is not None else customer
        return cls(name=person.display_name, via=Via.PORTAL, portal_account=account,
                   email=person.email, customer=customer, contact=contact,
                   may_see_all=bool(group and group.may_see_all_requests),
                   may_create=group.may_create_requests if group is not None else True)

    @classmethod
    def of_sender(cls, via: Via, email: str, customer: Customer, contact: Contact | None = None) -> Author:
        """Someone known by an address: a mail's sender or a signed link's recipient."""
        person = contact if contact is not None else customer
        return cls(name=person.display_name, via=via, email=email, customer=customer, contact=contact)

    @property
    def is_operator(self) -> bool:
        return self.operator is not None


def _stamp(entry, author: Author) -> None:
    entry.author_operator_id = author.operator.id if author.operator is not None else None
    entry.author_portal_account_id = author.portal_account.id if author.portal_account is not None else None
    entry.author_name = (author.name or author.email or "unknown")[:255]
    entry.author_email = author.email
    entry.via = author.via


# --- who may see what -------------------------------------------------------------------------

def visible_requests(author: Author) -> ColumnElement[bool]:
    """WHERE condition on Request: what someone on the customer's side may see. The customer
    itself (a private person, or a company's own account) and a main contact: all of the
    customer's requests; a contact: those assigned to it or raised by it, or all of the
    company's when its security group says so."""
    if author.is_operator or author.customer is None:
        return false()
    of_customer = Request.customer_id == author.customer.id
    contact = author.contact
    if contact is None or contact.is_main or author.may_see_all:
        return of_customer
    assigned = exists().where(request_contact.c.request_id == Request.id,
                              request_contact.c.contact_id == contact.id)
    return and_(of_customer, or_(assigned, Request.requester_contact_id == contact.id))


def may_see(session: DbSession, request: Request, author: Author) -> bool:
    if author.is_operator:
        return True  # operators are checked by the access policy (require) instead
    if request.id is None:
        return False
    found = select(Request.id).where(Request.id == request.id, visible_requests(author))
    return session.scalar(found) is not None


def _require_side(session: DbSession, request: Request, author: Author, right: Right = Right.VIEW) -> None:
    if author.is_operator:
        require(session, author.operator, request.customer_id, right)
    elif not may_see(session, request, author):
        raise PermissionDenied(_("You cannot see this request."))


# --- comments ---------------------------------------------------------------------------------

def _clean_body(bag: ErrorBag, body: str | None, field_name: str = "body") -> str | None:
    text = bag.check(field_name, _multiline_text, body)
    if not has_words(text):
        bag.add(field_name, _("Write a comment."))
    elif len(text) > COMMENT_LIMIT:
        bag.add(field_name, too_long(COMMENT_LIMIT, len(text)))
    return text


def has_words(text: str | None) -> bool:
    """Whether the text shows anything: zero-width spaces, byte-order and direction marks alone
    are an empty comment that only looks written."""
    return any(not unicodedata.category(c).startswith(("Z", "C")) for c in text or "")


def _multiline_text(value: str | None) -> str | None:
    # clean_text keeps line breaks and tabs and refuses other control characters.
    if value is None:
        return None
    return clean_text(value.replace("\r\n", "\n").replace("\r", "\n"))


def add_comment(session: DbSession, request: Request, author: Author, body: str | None, *,
                internal: bool = False, notify: bool = True) -> RequestComment:
    """Add a comment (or, for an operator, an internal note) to the thread. Operators need the
    view right on the customer; the customer's side must be able to see the request. A customer's
    comment on an accepted request does not reopen it (reopening says so). Raises
    ValidationFailed or PermissionDenied."""
    if internal and not author.is_operator:
        raise PermissionDenied(_("Only operators write internal notes."))
    _require_side(session, request, author)
    bag = ErrorBag()
    text = _clean_body(bag, body)
    bag.raise_if_any()
    comment = RequestComment(request=request, body=text, is_internal=internal)
    _stamp(comment, author)
    session.add(comment)
    flush(session)
    if notify and not internal:
        from services.mail_out import queue_copies

        queue_copies(session, request, comment=comment, exclude_email=author.email)
    return comment


def attach(session: DbSession, comment: RequestComment | None, filename: str, content_type: str,
           data: bytes, *, request: Request | None = None) -> RequestAttachment:
    """Store a file with the comment's request, or with `request` itself (a new request's files;
    the caller has checked the size)."""
    owner = comment.request if comment is not None else request
    if owner is None:
        raise ValueError("An attachment belongs to a comment or a request.")
    attachment = RequestAttachment(request=owner, comment=comment,
                                   filename=(filename or "attachment")[:255],
                                   content_type=(content_type or "application/octet-stream")[:127],
                                   size=len(data), data=data)
    session.add(attachment)
    return attachment


# --- the status flow --------------------------------------------------------------------------

CUSTOMER_STEPS: dict[RequestStatus, set[RequestStatus]] = {
    RequestStatus.RESOLVED: {RequestStatus.CLOSED, RequestStatus.REOPENED},
    RequestStatus.CLOSED: {RequestStatus.REOPENED},
}


def customer_may_move(old: RequestStatus, new: RequestStatus) -> bool:
    return new in CUSTOMER_STEPS.get(old, set())


def change_status(session: DbSession, request: Request, author: Author, new_status: RequestStatus, *,
                  comment: str | None = None, notify: bool = True) -> RequestStatusChange:
    """Move the request to `new_status` with an optional comment (required to reopen), record it
    in the status history and queue copies. Raises ValidationFailed (a step the author may not
    take, a reopen without a comment) or PermissionDenied."""
    _require_side(session, request, author)
    old = request.status
    bag = ErrorBag()
    if new_status == old:
        bag.add("status", _("The request is %(status)s already.", status=old.label))
    elif not author.is_operator and not customer_may_move(old, new_status):
        bag.add("status", _customer_refusal(old, new_status))
    if new_status == RequestStatus.REOPENED and not author.is_operator and not has_words(comment):
        bag.add("comment", _("Say what is still wrong: reopening needs a comment."))
    text = None
    if has_words(comment):  # an operator's optional comment of blanks alone is no comment
        text = bag.check("comment", _multiline_text, comment)
        if text and len(text) > COMMENT_LIMIT:
            bag.add("comment", too_long(COMMENT_LIMIT, len(text)))
    bag.raise_if_any()
    note = None
    if text:
        note = add_comment(session, request, author, text, notify=False)
    request.status = new_status
    if author.is_operator:  # the request page's step (save_request audits the edit form's own)
        record(session, author.operator, "update", request, {"status": [old.english, new_status.english]})
    return note_status_change(session, request, author, old, new_status, note=note, notify=notify)


def note_status_change(session: DbSession, request: Request, author: Author, old: RequestStatus | None,
                       new: RequestStatus, *, note: RequestComment | None = None,
                       notify: bool = True) -> RequestStatusChange:
    """Record a status change already made on `request` (the operator's edit form changes the
    status through services.requests.save_request, which calls this) and queue its copies."""
    change = RequestStatusChange(request=request, old_status=old, new_status=new, comment=note)
    _stamp(change, author)
    session.add(change)
    flush(session)
    if author.operator is None:
        # An operator's change is audited by the request's own save; the customer's side here.
        record(session, None, "status", request, {"status": [old.english if old else None, new.english]},
               actor_label=f"{author.name} ({author.via.english})")
    if notify:
        from services.mail_out import queue_copies

        queue_copies(session, request, status_change=change, comment=note, exclude_email=author.email)
    return change


def _customer_refusal(old: RequestStatus, new: RequestStatus) -> str:
    if new == RequestStatus.CLOSED:
        if old == RequestStatus.CLOSED:
            return _("This request is accepted already.")
        return _("Only a completed request can be accepted; this one is %(status)s.", status=old.label)
    if new == RequestStatus.REOPENED:
        return _("Only a completed or accepted request can be reopened; this one is %(status)s.",
                 status=old.label)
    return _("You cannot set a request to %(status)s.", status=new.label)


def accept(session: DbSession, request: Request, author: Author, *, rating: int | None = None,
           remark: str | None = None, comment: str | None = None) -> RequestStatusChange:
    """The customer accepts the completion, optionally rating the operator (1–5 and a remark)."""
    if author.is_operator:
        raise PermissionDenied(_("Accepting the completion is the customer's."))
    bag = ErrorBag()
    score, remark_text = _check_rating(bag, rating, remark)
    if score is None and remark_text and "rating" not in bag.errors:
        bag.add("rating", _("Choose 1 to 5 stars to go with your remark."))
    bag.raise_if_any()
    # The copies go after the rating is set, so they do not offer a "Rate our work" link.
    change = change_status(session, request, author, RequestStatus.CLOSED, comment=comment, notify=False)
    if score is not None:
        _set_rating(session, request, author, score, remark_text)
    from services.mail_out import queue_copies

    queue_copies(session, request, status_change=change, comment=change.comment, exclude_email=author.email)
    return change


def rate(session: DbSession, request: Request, author: Author, rating: int | None,
         remark: str | None = None) -> None:
    """Rate the operator's work on an accepted request, once."""
    if author.is_operator:
        raise PermissionDenied(_("Rating is the customer's."))
    _require_side(session, request, author)
    bag = ErrorBag()
    score, remark_text = _check_rating(bag, rating, remark)
    if score is None:
        bag.add("rating", _("Choose 1 to 5 stars."))
    if request.status != RequestStatus.CLOSED:
        bag.add("rating", _("A request is rated when its completion is accepted."))
    elif request.rating is not None:
        bag.add("rating", _("This request has been rated already."))
    bag.raise_if_any()
    assert score is not None  # refused above
    _set_rating(session, request, author, score, remark_text)


def _check_rating(bag: ErrorBag, rating, remark: str | None) -> tuple[int | None, str | None]:
    score = None
    if rating not in (None, ""):
        try:
            score = int(rating)
        except (TypeError, ValueError):
            score = None
        if score is None or not 1 <= score <= 5:
            bag.add("rating", _("Choose 1 to 5 stars."))
            score = None
    text = bag.check("remark", _multiline_text, remark)
    if text and len(text) > REMARK_LIMIT:
        bag.add("remark", too_long(REMARK_LIMIT, len(text)))
    return score, text


def _set_rating(session: DbSession, request: Request, author: Author, score: int, remark: str | None) -> None:
    before = request.rating  # a request accepted again after a reopen is rated again
    request.rating, request.rating_remark, request.rated_at = score, remark, utcnow()
    flush(session)
    record(session, None, "rating", request, {"rating": [before, score]},
           actor_label=f"{author.name} ({author.via.english})")


# --- requests raised by the customer's side ---------------------------------------------------

def raise_request(session: DbSession, author: Author, subject: str | None, description: str | None, *,
                  source: RequestSource, notify: bool = True) -> Request:
    """A request raised on the portal or by e-mail by someone on the customer's side: for their
    customer, with them as its requester (a contact then sees it and gets its copies). Raises
    ValidationFailed or PermissionDenied (a security group that may not create requests)."""
    if author.is_operator or author.customer is None:
        raise DomainError(_("A request raised by a customer needs its customer."))
    if not author.may_create:
        raise PermissionDenied(_("Your account may not create requests; ask the service desk."))
    bag = ErrorBag()
    title = bag.check("subject", clean_text, subject)
    if not title:
        bag.add("subject", _("A request needs a subject."))
    elif len(title) > SUBJECT_LIMIT:
        bag.add("subject", too_long(SUBJECT_LIMIT, len(title)))
    text = bag.check("description", _multiline_text, description)
    if text and len(text) > COMMENT_LIMIT:
        bag.add("description", too_long(COMMENT_LIMIT, len(text)))
    bag.raise_if_any()
    request = Request(customer=author.customer, subject=title, description=text, status=RequestStatus.NEW,
                      source=source, requester_contact=author.contact)
    session.add(request)
    flush(session)
    record(session, None, "create", request, {"subject": [None, title], "source": [None, source.english]},
           actor_label=f"{author.name} ({author.via.english})")
    if notify:
        from services.mail_out import queue_copies

        queue_copies(session, request, created=True, exclude_email=author.email)
    return request


def thread(request: Request, *, for_operator: bool) -> list[RequestComment]:
    """The comments a reader sees, oldest first: the customer's side never sees internal notes."""
    return [c for c in request.comments if for_operator or not c.is_internal]


__all__ = ["Author", "accept", "add_comment", "attach", "change_status", "customer_may_move",
           "may_see", "note_status_change", "raise_request", "rate", "thread", "visible_requests"]
