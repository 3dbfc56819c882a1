"""Copies of a request's communication: who gets one, what it says, and its place in the queue.

`queue_copies` writes one OutgoingMail row per recipient (services.requests.request_recipients:
the seed's main contact / contact / private person rule) in the caller's unit of work and puts a
"mail.send" job on the queue once that commits (services.mail_send does the sending, with
retries). A save therefore never waits for a mail server and never fails because of one; a copy
that finally fails is visible on the request.

Subjects carry the request's reference ("[CD-123] …") and every copy names the request's thread
(References: <cd-request-123@domain>), so a reply finds its request (services.mail_intake).

A copy is written in the desk's language (BABEL_DEFAULT_LOCALE, English unless configured), not in
the language of the operator whose action sent it: every recipient of a request reads the same
words, whoever caused the copy. The header's machine parts (the reference, Message-IDs) are never
translated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import make_msgid

from flask import current_app, has_app_context
from flask_babel import force_locale

from i18n import _, _l
from models import Customer, Request
from models.discussion import RequestComment, RequestStatusChange
from models.enums import MailState
from models.mail import OutgoingMail
from services.requests import Recipient, request_recipients
from services.transactions import DbSession, flush

DEFAULT_DOMAIN = "customer-desk.invalid"
SUBJECT_LIMIT = 400


def mail_domain() -> str:
    """The right-hand side of our Message-IDs (MAIL_DOMAIN), so replies are recognised as ours."""
    if has_app_context():
        return current_app.config.get("MAIL_DOMAIN") or DEFAULT_DOMAIN
    return DEFAULT_DOMAIN


@contextmanager
def mail_language() -> Iterator[None]:
    """Translations in the desk's language while a copy is written (see the module's docstring)."""
    if not has_app_context():
        yield
        return
    with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE") or "en"):
        yield


# Why a recipient receives a copy (services.requests.request_recipients), said in the copy.
WHY = {"the customer": _l("You receive this as the customer of %(customer)s."),
       "main contact": _l("You receive this as main contact of %(customer)s."),
       "assigned to this request": _l("You receive this as a contact of %(customer)s assigned to this "
                                      "request."),
       "raised this request": _l("You receive this as the contact of %(customer)s who raised this request.")}


def thread_id(request: Request) -> str:
    """The Message-ID every copy of `request` refers to; a reply carries it in References."""
    return f"<cd-request-{request.id}@{mail_domain()}>"


THREAD_ID = re.compile(r"<cd-request-(\d{1,18})@([^>\s]+)>")
REFERENCE = re.compile(r"\[CD-(\d{1,18})\]", re.IGNORECASE)


def one_line(text: str | None) -> str:
    """A header value from user text: line breaks and other whitespace runs become one space, so a
    subject or name can never start a header of its own (header injection)."""
    return re.sub(r"\s+", " ", text or "").strip()


def subject_of(request: Request, what: str | None = None) -> str:
    subject = f"[{request.reference}] {one_line(request.subject)}"
    if what:
        subject = f"{subject} — {what}"
    return subject[:SUBJECT_LIMIT]


def _event_text(request: Request, *, created: bool, comment: RequestComment | None,
                status_change: RequestStatusChange | None) -> tuple[str, str]:
    """(what happened, for the subject; the body's first part)."""
    lines: list[str] = []
    what = None
    if created:
        what = _("new request")
        lines += [_("A new request %(reference)s was raised for %(customer)s.", reference=request.reference,
                    customer=request.customer.display_name),
                  "", _("Subject: %(subject)s", subject=one_line(request.subject))]
        if request.description:
            lines += ["", request.description]
    if status_change is not None:
        old = status_change.old_status.label if status_change.old_status else "—"
        what = _("status %(status)s", status=status_change.new_status.label)
        lines += [_("%(who)s changed the status of %(reference)s from %(old)s to %(new)s.",
                    who=status_change.author_name, reference=request.reference, old=old,
                    new=status_change.new_status.label)]
    if comment is not None:
        what = what or _("new comment")
        if lines:
            lines.append("")
        lines += [_("%(who)s wrote:", who=comment.author_name), "", comment.body]
    return what or _("update"), "\n".join(lines)


def compose_body(request: Request, recipient: Recipient, event_text: str) -> str:
    """The copy's text: the event, the links the recipient may use (services.mail_links) and why
    they receive it."""
    from services.mail_links import links_for

    customer = request.customer.display_name
    parts = [event_text, "", "—",
             _("Request %(reference)s: %(subject)s", reference=request.reference,
               subject=one_line(request.subject)),
             _("Status: %(status)s", status=request.status.label)]
    for label, url in links_for(request, recipient.email):
        parts.append(f"{label}: {url}")
    why = WHY.get(recipient.why)
    parts += ["", _("Reply to this e-mail to add a comment; keep the reference in the subject."),
              str(why) % {"customer": customer} if why is not None
              else _("You receive this as %(why)s of %(customer)s.", why=recipient.why, customer=customer)]
    return "\n".join(parts)


def queue_copies(session: DbSession, request: Request, *, created: bool = False,
                 comment: RequestComment | None = None, status_change: RequestStatusChange | None = None,
                 exclude_email: str | None = None) -> list[OutgoingMail]:
    """One queued copy per recipient of `request` (whoever caused the event, `exclude_email`, gets
    none: they know what they wrote). Internal notes are never passed here. Flushes; the mails are
    sent after the caller's unit of work commits."""
    if comment is not None and comment.is_internal:
        raise ValueError("Internal notes are never mailed.")
    skip = (exclude_email or "").casefold()
    queued = []
    with mail_language():
        what, text = _event_text(request, created=created, comment=comment, status_change=status_change)
        for recipient in request_recipients(request):
            if recipient.email.casefold() == skip:
                continue
            mail = OutgoingMail(customer_id=request.customer_id, request=request,
                                comment_id=comment.id if comment is not None else None,
                                status_change_id=status_change.id if status_change is not None else None,
                                recipient_name=one_line(recipient.name)[:255],
                                recipient_email=recipient.email,
                                why=recipient.why[:120], subject=subject_of(request, what),
                                body=compose_body(request, recipient, text),
                                message_id=make_msgid("cd", domain=mail_domain()), state=MailState.QUEUED)
            session.add(mail)
            queued.append(mail)
    if queued:
        flush(session)
        _send_after_commit(session, queued)
    return queued


def resend(session: DbSession, mail: OutgoingMail) -> OutgoingMail:
    """A new copy of `mail` to the same recipient (the old row keeps its history). The door checks
    the operator's right on the customer."""
    copy = OutgoingMail(customer_id=mail.customer_id, request_id=mail.request_id, comment_id=mail.comment_id,
                        status_change_id=mail.status_change_id, recipient_name=mail.recipient_name,
                        recipient_email=mail.recipient_email, why=mail.why, subject=mail.subject,
                        body=_fresh_links(mail), message_id=make_msgid("cd", domain=mail_domain()),
                        state=MailState.QUEUED, resent_from_id=mail.id)
    session.add(copy)
    flush(session)
    _send_after_commit(session, [copy])
    return copy


LINK_PATH = re.compile(r"/portal/link/(comment|accept|rate)/[\w.\-]+")


def _fresh_links(mail: OutgoingMail) -> str:
    """The body with new signed links: the stored ones may have expired or been used since."""
    from services.mail_links import make_token

    if mail.request is None or not has_app_context():
        return mail.body
    return LINK_PATH.sub(lambda m: f"/portal/link/{m.group(1)}/"
                                   f"{make_token(mail.request, mail.recipient_email, m.group(1))}", mail.body)


def _send_after_commit(session: DbSession, mails: list[OutgoingMail]) -> None:
    if not has_app_context():
        return  # a script without an app: the worker's sweep finds queued mail (services.mail_send)
    from jobs.queue import enqueue_after_commit

    for mail in mails:
        enqueue_after_commit(session, "mail.send", mail.id)


def mail_of_customer(session: DbSession, customer: Customer) -> list[OutgoingMail]:
    from sqlalchemy import select

    return list(session.scalars(select(OutgoingMail).where(OutgoingMail.customer_id == customer.id)
                                .order_by(OutgoingMail.id.desc())))
