"""Signed links in our e-mails: add a comment, accept the completion, rate — without signing in.

Each link is for one request, one recipient address and one purpose, expires (MAIL_LINK_DAYS) and
works once (models.mail.UsedLink). It is offered only where the customer's setting "discussion and
accepting completion without authorization" is on; otherwise the same places in the mail lead to
the portal's sign-in, with the request as the page to go to afterwards.

Signed with the application's SECRET_KEY (itsdangerous, a salt of its own per purpose): a link
whose signature, purpose or age is wrong is refused with words that say which, and nothing is
written.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import quote

from flask import current_app, has_app_context
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError

from models import Request
from models.enums import RequestStatus
from models.mail import UsedLink
from services.errors import DomainError
from services.transactions import DbSession

PURPOSES = ("comment", "accept", "rate")
DEFAULT_DAYS = 14
LABELS = {"comment": "Add a comment", "accept": "Accept the completion and rate", "rate": "Rate our work"}


class LinkRefused(DomainError):
    """A link that cannot be used: forged, expired, for another purpose, or used already."""


@dataclass(frozen=True)
class LinkData:
    request_id: int
    email: str
    purpose: str
    link_id: str


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
        raise LinkRefused("This link is not one of ours.")
    try:
        data = _serializer(purpose).loads(token, max_age=link_days() * 86400)
    except SignatureExpired:
        raise LinkRefused(f"This link has expired (links work for {link_days()} days). "
                          "Reply to the e-mail or sign in to the portal instead.") from None
    except BadSignature:
        raise LinkRefused("This link is not valid: it may have been cut off or changed. "
                          "Open it from the e-mail again, or sign in to the portal.") from None
    if not (isinstance(data, dict) and isinstance(data.get("r"), int) and isinstance(data.get("e"), str)
            and isinstance(data.get("i"), str)):
        raise LinkRefused("This link is not valid.")
    return LinkData(data["r"], data["e"], purpose, data["i"])


def is_used(session: DbSession, link: LinkData) -> bool:
    from sqlalchemy import select

    return session.scalar(select(UsedLink.id).where(UsedLink.link_id == link.link_id)) is not None


def use_link(session: DbSession, link: LinkData) -> None:
    """Mark the link used, in the caller's unit of work (it commits with what the link did). Two
    uses at once: the second's insert fails on the unique id and it is refused."""
    if is_used(session, link):
        raise LinkRefused("This link has been used already. Each link in our e-mails works once; "
                          "reply to the e-mail or sign in to the portal to do more.")
    try:
        with session.begin_nested():
            session.add(UsedLink(link_id=link.link_id, purpose=link.purpose, request_id=link.request_id))
    except IntegrityError:
        raise LinkRefused("This link has been used already.") from None


def public_url(path: str) -> str:
    base = (current_app.config.get("PUBLIC_URL") or "http://localhost:5000").rstrip("/")
    return base + path


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
    settings = settings_of(session, request.customer)
    purposes = ["comment"]
    if request.status == RequestStatus.RESOLVED:
        purposes.append("accept")
    elif request.status == RequestStatus.CLOSED and request.rating is None:
        purposes.append("rate")
    if not settings.unauthenticated_discussion_enabled:
        page = quote(f"/portal/requests/{request.id}")
        return [("Open it on the portal", public_url(f"/portal/sign-in?next={page}"))]
    return [(LABELS[p], public_url(f"/portal/link/{p}/{make_token(request, email, p)}")) for p in purposes]
