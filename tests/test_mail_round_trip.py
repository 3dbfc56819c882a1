"""The whole conversation by e-mail, with every part real: an operator raises a request, the copies
leave through a real SMTP server (aiosmtpd), the contact answers the copy from their mail program
(the reply lands in a real Dovecot mailbox), the minute's intake turns it into a comment that is
mailed on to the main contact, the operator completes the request, and the contact accepts and
rates it from the signed link in the completion's copy — on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from models import GlobalSettings, IncomingMail, OutgoingMail, Request, RequestComment
from models.enums import IntakeOutcome, MailSecurity, MailState, RequestStatus, Via
from services.discussion import Author, change_status
from services.requests import save_request
from testing.mail_servers import MailServerUnavailable
from testing.pop3_mailbox import reply
from testing.smtp_capture import CapturingSmtp
from tests.conftest import csrf_from, started, written
from tests.intake_fixtures import acme, intake, intake_server, mailbox  # noqa: F401
from tests.mail_fixtures import PASSWORD, USER, certificate  # noqa: F401

LINK = re.compile(r"http://[^/\s]+(/portal/link/accept/\S+)")


@pytest.fixture(scope="module")
def smtp(certificate):  # noqa: F811
    server = started(lambda: CapturingSmtp(MailSecurity.STARTTLS, certificate, USER, PASSWORD).start(),
                     MailServerUnavailable, "SMTP (aiosmtpd)")
    yield server
    server.stop()


@pytest.fixture
def desk_servers(app, session, smtp, intake):  # noqa: F811
    """The desk's own SMTP server beside its intake mailbox (the intake fixture set POP3)."""
    smtp.reset()
    box = app.extensions["secret_box"]

    def change():
        row = session.get(GlobalSettings, 1)
        row.smtp_primary_host, row.smtp_primary_port = "127.0.0.1", smtp.port
        row.smtp_primary_security, row.smtp_primary_username = MailSecurity.STARTTLS, USER
        row.smtp_primary_password_encrypted = box.encrypt(PASSWORD)
    written(session, change)
    return smtp


def captured_to(smtp, address: str):
    return [m for m in smtp.captured if m.recipients == (address.lower(),) or m.recipients == (address,)]


def test_a_request_is_discussed_completed_and_accepted_by_e_mail(app, session, operator, acme,  # noqa: F811
                                                                 desk_servers, intake, mailbox):  # noqa: F811
    from services.customer_settings import save_customer_settings

    box = app.extensions["secret_box"]
    written(session, lambda: save_customer_settings(session, acme, None, box,
                                                    {"unauthenticated_discussion_enabled": True}))
    cyril = next(c for c in acme.contacts if c.first_name == "Cyril")
    request = written(session, lambda: save_request(
        session, Request(customer=acme, subject="VPN drops every hour", description="Since Monday.",
                         contacts=[cyril]), operator))

    # 1. The new request's copies went out: to the main contact and to the assigned contact.
    [to_cyril] = captured_to(desk_servers, cyril.email)
    assert captured_to(desk_servers, "mia@acme.example")
    copy = to_cyril.message
    assert copy["Subject"].startswith(f"[CD-{request.id}] VPN drops every hour")
    assert copy["Reply-To"].addresses[0].addr_spec == "desk@intake.example"

    # 2. Cyril answers from his mail program; the minute's intake reads it.
    desk_servers.reset()
    thread = f"{copy['References']} {copy['Message-ID']}"
    mailbox.drop(reply(cyril.email, f"Re: {copy['Subject']}",
                       "It still drops.\n\nOn Monday the desk wrote:\n> A new request …",
                       in_reply_to=copy["Message-ID"], references=thread))
    intake.fetch()
    session.expire_all()
    [received] = session.scalars(select(IncomingMail)).all()
    assert received.outcome == IntakeOutcome.COMMENT_ADDED and received.request_id == request.id
    [comment] = session.scalars(select(RequestComment).where(RequestComment.request_id == request.id)).all()
    assert comment.via == Via.EMAIL and comment.author_email.lower() == cyril.email.lower()
    assert comment.body.startswith("It still drops.") and "A new request" not in comment.body
    assert mailbox.count() == 0  # deleted from the mailbox once committed
    # … and reached the main contact, not Cyril himself.
    assert captured_to(desk_servers, "mia@acme.example") and not captured_to(desk_servers, cyril.email)

    # 3. The operator completes it: the copy offers Cyril a signed link to accept and rate.
    desk_servers.reset()
    request = session.get(Request, request.id)
    written(session, lambda: change_status(session, request, Author.of_operator(operator),
                                           RequestStatus.RESOLVED, comment="A new VPN profile is out."))
    [completed] = captured_to(desk_servers, cyril.email)
    link = LINK.search(completed.message.get_body(("plain",)).get_content()).group(1)

    # 4. Cyril accepts and rates from the link, without signing in.
    browser = app.test_client()
    page = browser.get(link)
    assert page.status_code == 200 and "VPN drops every hour" in page.get_data(as_text=True)
    done = browser.post(link, data={"csrf_token": csrf_from(page.get_data(as_text=True)), "rating": "5",
                                    "remark": "Fast and friendly."})
    assert done.status_code == 200, done.get_data(as_text=True)
    session.expire_all()
    request = session.get(Request, request.id)
    assert request.status == RequestStatus.CLOSED and request.rating == 5
    assert [c.via for c in request.status_changes][-1] == Via.LINK
    assert browser.post(link, data={"csrf_token": csrf_from(page.get_data(as_text=True)),
                                    "rating": "1"}).status_code == 409  # once
    states = {m.state for m in session.scalars(select(OutgoingMail)).all()}
    assert states == {MailState.SENT}
