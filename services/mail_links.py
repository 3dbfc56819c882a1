"""Signed links in our e-mails: add a comment, accept the completion, rate — without signing in.

Each link is for one request, one recipient address and one purpose, expires (MAIL_LINK_DAYS) and
works once (models.mail.UsedLink). It is offered only where the customer's setting "discussion and
accepting completion without authorization" is on; otherwise the same places in the mail lead to
the portal's sign-in, with the request as the page to go to afterwards.

Signed with the application's SECRET_KEY (itsdangerous, a salt of its own per purpose): a link
whose signature, purpose or age is wrong is refused with words that say which, and nothing is
written. Whom a link speaks for is looked up when it is opened, not trusted from the mail: the
address must still be the customer's (a private person's own e-mail) or one of its active
contacts', that person must still see the request, and the customer's setting must still be on.

Reading a link (`read_token`, `open_link`) never writes: mail scanners and link previews fetch
every link in a mail. Only `follow_link`, in the door's unit of work, uses it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import quote

from flask import current_app, has_app_context
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from i18n import _, _l
from models import Contact, Request
from models.enums import CustomerKind, RequestStatus, Via
from models.mail import UsedLink
from services.discussion import Author, accept, add_comment, customer_may_move, may_see, rate
from services.errors import DomainError
from services.transactions import DbSession, hold_transaction

PURPOSES = ("comment", "accept", "rate")
DEFAULT_DAYS = 14
LABELS = {"comment": _l("Add a comment"), "accept": _l("Accept the completion and rate"),
          "rate": _l("Rate our work")}
LINK_ID_LIMIT = 64  # UsedLink.link_id
EMAIL_LIMIT = 254

# Why a link was refused (LinkRefused.reason); the door answers each with its own HTTP status.
FORGED, EXPIRED, WRONG_PURPOSE, USED = "forged", "expired", "wrong_purpose", "used"
GONE, NOT_ALLOWED = "gone", "not_allowed"


class LinkRefused(DomainError):
    """A link that cannot be used: forged, expired, for another purpose, used already, for a
    request that is gone (GONE), or for an address that may no longer act (NOT_ALLOWED).
    `reason` says which; the message says it in plain words."""

    def __init__(self, message: str, reason: str = FORGED):
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True)
class LinkData:
    request_id: int
    email: str
    purpose: str
    link_id: str


@dataclass(frozen=True)
class LinkTarget:
    """What an opened link acts on: the request and whom the link speaks for, as of now."""

    link: LinkData
    request: Request
    author: Author

    @property
    def may_act(self) -> bool:
        """Whether the request's state offers the link's action now (the form is shown)."""
        return self.link.purpose in purposes_for(self.request)


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"customer-desk.link.{purpose}")


def link_days() -> int:
    return int(current_app.config.get("MAIL_LINK_DAYS") or DEFAULT_DAYS)


def make_token(request: Request, email: str, purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    return _serializer(purpose).dumps({"r": request.id, "e": email, "i": secrets.token_urlsafe(16)})


def read_token(token: str, purpose: str) -> LinkData:
    """What a link says, or LinkRefused with the reason in plain words."""
    if purpose not in PURPOSES or not isinstance(token, str) or len(token) > 1000:
        raise LinkRefused(_("This link is not one of ours."))
    try:
        data = _serializer(purpose).loads(token, max_age=link_days() * 86400)
    except SignatureExpired:
        raise LinkRefused(_("This link has expired (links work for %(days)s days). "
                            "Reply to the e-mail or sign in to the portal instead.", days=link_days()),
                          EXPIRED) from None
    except BadSignature:
        other = _purpose_of(token, purpose)
        if other is not None:
            raise LinkRefused(_("This link is not for this page: it is the link to “%(purpose)s”. "
                                "Open it from the e-mail as it is.", purpose=str(LABELS[other]).lower()),
                              WRONG_PURPOSE) from None
        raise LinkRefused(_("This link is not valid: it may have been cut off or changed. "
                            "Open it from the e-mail again, or sign in to the portal.")) from None
    if not (isinstance(data, dict) and isinstance(data.get("r"), int) and 0 < data["r"] < 2**63
            and isinstance(data.get("e"), str) and 0 < len(data["e"]) <= EMAIL_LIMIT
            and isinstance(data.get("i"), str) and 0 < len(data["i"]) <= LINK_ID_LIMIT):
        raise LinkRefused(_("This link is not valid."))
    return LinkData(data["r"], data["e"], purpose, data["i"])


def _purpose_of(token: str, tried: str) -> str | None:
    """The purpose a token that failed for `tried` was signed for, if it is one of ours at all
    (a comment link pasted into the accept page): said so instead of "not valid"."""
    for purpose in PURPOSES:
        if purpose == tried:
            continue
        try:
            _serializer(purpose).loads(token)
        except BadSignature:  # no max_age: a link for another purpose is told so whatever its age
            continue
        return purpose
    return None


def is_used(session: DbSession, link: LinkData) -> bool:
    return session.scalar(select(UsedLink.id).where(UsedLink.link_id == link.link_id)) is not None


USED_TEXT = _l("This link has been used already. Each link in our e-mails works once; "
               "reply to the e-mail or sign in to the portal to do more.")


def use_link(session: DbSession, link: LinkData) -> None:
    """Mark the link used, in the caller's unit of work (it commits with what the link did, and
    is rolled back with it). Two uses at once: the transaction is opened first (on SQLite BEGIN
    IMMEDIATE waits for the other writer, whose mark it then sees), and on PostgreSQL the second
    insert waits on the unique id and fails when the first commits — refused either way."""
    hold_transaction(session)  # else pysqlite would make the SAVEPOINT below the transaction
    if is_used(session, link):
        raise LinkRefused(str(USED_TEXT), USED)
    try:
        with session.begin_nested():
            session.add(UsedLink(link_id=link.link_id, purpose=link.purpose, request_id=link.request_id))
    except IntegrityError:
        raise LinkRefused(str(USED_TEXT), USED) from None


def purposes_for(request: Request) -> list[str]:
    """What a link in a copy of `request` may offer now: a comment always; accepting while it is
    Completed; rating once it is Accepted and not rated yet."""
    purposes = ["comment"]
    if customer_may_move(request.status, RequestStatus.CLOSED):
        purposes.append("accept")
    elif request.status == RequestStatus.CLOSED and request.rating is None:
        purposes.append("rate")
    return purposes


def public_url(path: str) -> str:
    base = (current_app.config.get("PUBLIC_URL") or "http://localhost:5000").rstrip("/")
    return base + path


def sign_in_path(request_id: int | None = None) -> str:
    """The portal's sign-in, going on to the request's page afterwards."""
    if request_id is None:
        return "/portal/sign-in"
    return f"/portal/sign-in?next={quote(f'/portal/requests/{request_id}')}"


def links_for(request: Request, email: str) -> list[tuple[str, str]]:
    """(label, URL) of what the recipient may do from the mail: signed links where the customer's
    setting allows it, the portal's sign-in otherwise."""
    if not has_app_context():
        return []
    from sqlalchemy.orm import object_session

    from services.customer_settings import settings_of

    session = object_session(request)
    if session is None:
        return []
    if not settings_of(session, request.customer).unauthenticated_discussion_enabled:
        return [(_("Open it on the portal"), public_url(sign_in_path(request.id)))]
    return [(str(LABELS[p]), public_url(f"/portal/link/{p}/{make_token(request, email, p)}"))
            for p in purposes_for(request)]


# --- opening and following a link ------------------------------------------------------------

def _recipient(request: Request, email: str) -> tuple[Contact | None, bool]:
    """(the contact the address belongs to, or None; whether it belongs to the customer at all),
    looked up now: a private person's own e-mail is the customer itself, otherwise one of the
    customer's active contacts (a main contact first: it sees the most)."""
    customer = request.customer
    wanted = email.casefold()
    if customer.kind == CustomerKind.PERSON and (customer.email or "").casefold() == wanted:
        return None, True
    for contact in sorted(customer.contacts, key=lambda c: not c.is_main):
        if contact.is_active and (contact.email or "").casefold() == wanted:
            return contact, True
    return None, False


def open_link(session: DbSession, link: LinkData, *, for_update: bool = False) -> LinkTarget:
    """The request and whom the link speaks for, or LinkRefused: the request is gone (GONE); the
    customer's setting is off now, the address is no longer the customer's or its contact's, or
    that person no longer sees the request (NOT_ALLOWED). Reads only. `for_update` locks the
    request's row (PostgreSQL) and reads it afresh, for `follow_link`."""
    from services.customer_settings import settings_of

    query = select(Request).where(Request.id == link.request_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    request = session.scalar(query)
    if request is None or request.customer is None:
        raise LinkRefused(_("The request this link is for no longer exists."), GONE)
    customer = request.customer
    if not settings_of(session, customer).unauthenticated_discussion_enabled:
        raise LinkRefused(_("Links in e-mails no longer work without signing in for %(customer)s. "
                            "Sign in to the portal to continue.", customer=customer.display_name),
                          NOT_ALLOWED)
    contact, known = _recipient(request, link.email)
    refused = LinkRefused(_("This link was sent to %(email)s, which is no longer among the people of "
                            "%(customer)s who take part in this request. Sign in to the portal, or ask the "
                            "service desk.", email=link.email, customer=customer.display_name), NOT_ALLOWED)
    if not known:
        raise refused
    author = Author.of_sender(Via.LINK, link.email, customer, contact)
    if not may_see(session, request, author):
        raise refused
    return LinkTarget(link, request, author)


def why_not_now(target: LinkTarget) -> str | None:
    """Why the request's state does not offer the link's action now (None: it does). The
    discussion refuses the action anyway; this tells the reader before they type."""
    request = target.request
    if target.may_act:
        return None
    if target.link.purpose == "accept":
        if request.status == RequestStatus.CLOSED:
            return _("The completion of this request has been accepted already.")
        return _("This request is %(status)s now: there is no completion to accept. "
                 "Reply to the e-mail if something is still wrong.", status=request.status.label)
    if request.rating is not None:
        return _("This request has been rated already. Thank you!")
    return _("A request is rated once its completion is accepted; this one is %(status)s.",
             status=request.status.label)


def check_unused(session: DbSession, link: LinkData) -> None:
    """LinkRefused (USED) when the link has done its one thing already. Reads only."""
    if is_used(session, link):
        raise LinkRefused(str(USED_TEXT), USED)


def follow_link(session: DbSession, link: LinkData, *, body: str | None = None, rating=None,
                remark: str | None = None) -> LinkTarget:
    """Use the link and do its one thing through services.discussion, in the caller's unit of
    work: a comment (`body`), accepting the completion (optional `rating` 1–5 and `remark`), or
    rating (`rating`, `remark`). Raises LinkRefused, or what the discussion raises
    (ValidationFailed — the request is no longer Completed, no stars chosen … — or
    PermissionDenied); the unit of work then rolls back and the link stays unused."""
    hold_transaction(session)  # read the request's state inside the transaction that changes it
    target = open_link(session, link, for_update=True)
    use_link(session, link)
    request, author = target.request, target.author
    if rating == "":
        rating = None  # the form's "No rating"; a remark then needs stars (services.discussion)
    if link.purpose == "comment":
        add_comment(session, request, author, body)
    elif link.purpose == "accept":
        accept(session, request, author, rating=rating, remark=remark)
    else:
        rate(session, request, author, rating, remark)
    return target
