"""Requests by e-mail, what a mail becomes: how it is read (services.mail_parse, mail_text — HTML,
attachments, hostile headers), that it is remembered once however many fetchers decide it at
once (services.mail_intake), and the held-mail page where operators decide (admin_views.held_mail)
— both databases. The mail arrives through a real Dovecot mailbox (tests/intake_fixtures.py)."""

from __future__ import annotations

import base64
import re
import threading
import time

import pytest
from sqlalchemy import select

from extensions import db
from models import AuditEvent, IncomingMail, OutgoingMail, Request, RequestComment
from models.discussion import RequestAttachment
from models.enums import CustomerKind, IntakeOutcome, RequestSource, UnknownSenders, Via
from services.errors import ValidationFailed
from services.mail_intake import IntakeScope, Limits, read_mail, receive, recognise
from services.mail_parse import message_key, parse_mail
from services.mail_text import html_to_text, trim_quoted
from services.transactions import hold_transaction, unit_of_work
from testing import pop3_mailbox as mails
from tests.intake_fixtures import (
    acme,
    count,
    incoming,
    intake,
    intake_server,
    mailbox,
    pat,
    requests_of,
)

FIXTURES = (acme, intake, intake_server, mailbox, pat)  # used by name below
KB = 1024
LIMITS = Limits(message=10 * 1024 * 1024, attachment=5 * 1024 * 1024)


# --- reading a mail ------------------------------------------------------------------------------

def test_html_becomes_text_without_markup_scripts_or_styles():
    text = html_to_text("<html><head><title>T</title><style>.x{}</style></head><body>"
                        "<div>Line one<br>Line two</div><script>steal()</script>"
                        "<blockquote><p>quoted</p><blockquote>deeper</blockquote></blockquote>"
                        "<table><tr><td>A</td><td>B</td></tr></table><!-- hidden --></body></html>")
    assert text == "Line one\nLine two\n\n> quoted\n>\n> > deeper\n\nA B"


@pytest.mark.parametrize("reply, kept", [
    ("Fixed, thanks.\n\nOn Tue, 2 Dec 2026 at 10:00, Desk <desk@x.example> wrote:\n> old\n> older",
     "Fixed, thanks."),
    ("Fixed.\n\nOn Tue, 2 Dec 2026 at 10:00, Customer Desk\n<desk@x.example> wrote:\n> old", "Fixed."),
    ("Top posted.\n\n-----Original Message-----\nFrom: Desk\nSent: Monday\n\nold text", "Top posted."),
    ("On Mon, Desk wrote:\n> question one\nanswer one\n> question two\nanswer two",
     "answer one\n\nanswer two"),
    ("Just text.\n> a quote at the end\n> more", "Just text."),
])
def test_a_reply_keeps_what_its_writer_wrote_and_leaves_out_the_quoted_mail(reply, kept):
    trimmed = trim_quoted(reply)
    assert trimmed.startswith(kept.split("\n")[0]) and trimmed.endswith("left out]")
    for line in kept.split("\n\n"):
        assert line in trimmed
    assert "old" not in trimmed and "question" not in trimmed


def test_a_reply_that_is_only_a_quote_is_kept_whole():
    only = "On Mon, Desk wrote:\n> everything"
    assert trim_quoted(only) == only


def test_headers_are_decoded_to_one_line_and_long_message_ids_are_remembered_by_digest():
    raw = (b"From: =?utf-8?q?Eva=0D=0ABcc:_x@evil.example?= <Eva@Example.COM>\r\n"
           b"Subject: =?utf-8?b?" + base64.b64encode("Tlačiareň\r\nBcc: y@evil.example".encode()) + b"?=\r\n"
           b"Message-ID: <" + b"a" * 300 + b"@x>\r\n\r\nHi\r\n")
    parsed = parse_mail(raw, 100)
    assert (parsed.from_address, parsed.from_name) == ("eva@example.com", "Eva Bcc: x@evil.example")
    assert parsed.subject == "Tlačiareň Bcc: y@evil.example"
    assert message_key(parsed, raw).startswith("sha256-id:") and len(message_key(parsed, raw)) < 255


def test_an_html_mail_is_reduced_to_safe_text(intake, mailbox, acme, session):
    mailbox.drop(mails.html("mia@acme.example", "Outlook crashes", (
        "<html><head><style>p {color: red}</style><script>alert('x')</script></head><body>"
        "<p>Hello,</p><p>Outlook <b>crashes</b> when I open "
        "<a href='https://files.example/log.txt'>the log</a>.</p>"
        "<ul><li>Windows 11</li><li>Office 2021</li></ul><img src=x onerror=alert(1)></body></html>")))
    intake.fetch()
    [request] = requests_of(session, acme)
    text = request.description
    assert "Outlook crashes when I open the log <https://files.example/log.txt>." in text
    assert "- Windows 11\n- Office 2021" in text
    for markup in ("<p>", "<b>", "alert", "color: red", "onerror", "<img"):
        assert markup not in text

def test_attachments_up_to_the_limit_are_kept_and_a_larger_one_is_dropped_with_a_note(
        intake, mailbox, acme, session, app):
    app.config["MAIL_ATTACHMENT_LIMIT"] = 50 * KB
    mailbox.drop(mails.with_attachments("mia@acme.example", "Scanner", "See the photo and the log.", [
        ("photo.png", "image/png", b"\x89PNG" + b"\x01" * 2000),
        ("../../etc/log.txt", "text/plain", b"line 1\nline 2\n"),
        ("dump.bin", "application/octet-stream", b"\x00" * (80 * KB))]))
    intake.fetch()
    [request] = requests_of(session, acme)
    files = session.scalars(select(RequestAttachment).where(RequestAttachment.request_id == request.id)
                            .order_by(RequestAttachment.id)).all()
    assert [(f.filename, f.content_type, f.size) for f in files] == [
        ("photo.png", "image/png", 2004), ("log.txt", "text/plain", 14)]
    assert files[0].data == b"\x89PNG" + b"\x01" * 2000
    assert "“dump.bin” (80 KB)" in request.description and "over the limit of 50 KB" in request.description

def test_header_injection_and_nul_bytes_end_as_one_line_and_clean_text(intake, mailbox, acme, session):
    raw = (b"From: =?utf-8?q?Mia=0D=0ABcc:_victim@else.example?= <mia@acme.example>\r\n"
           b"To: desk@intake.example\r\nMessage-ID: <inject-1@acme.example>\r\n"
           b"Subject: =?utf-8?q?Printer=0D=0ABcc:_victim@else.example?=\r\n"
           b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nNUL\x00here\r\n")
    mailbox.drop(raw)
    intake.fetch()
    [request] = requests_of(session, acme)
    assert request.subject == "Printer Bcc: victim@else.example"
    assert request.description.startswith("NULhere")
    assert "charset 'x-no-such-charset' is unknown" in request.description
    copy = session.scalars(select(OutgoingMail).where(OutgoingMail.request_id == request.id)).first()
    assert copy is None or "\n" not in copy.subject


# --- one mail, many fetchers ---------------------------------------------------------------------

def test_two_sessions_deciding_the_same_mail_at_once_create_one_request(app, session, acme):
    """Both fetchers read the mail; the first decides it and keeps its transaction open until the
    second has begun deciding too. The second waits (SQLite's write lock, PostgreSQL's unique key)
    and then finds the mail recorded or is refused by the unique key: one request either way."""
    incoming_mail = read_mail(mails.plain("mia@acme.example", "Once", "Hi."), LIMITS)
    first_decided, second_started = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def decide(name: str):
        with app.app_context():
            try:
                if name == "second":
                    first_decided.wait(30)
                    second_started.set()
                with unit_of_work(db.session):
                    hold_transaction(db.session)
                    outcomes[name] = receive(db.session, IntakeScope(), incoming_mail, LIMITS)
                    if name == "first":
                        first_decided.set()
                        second_started.wait(30)
                        time.sleep(0.5)  # the second is now waiting for us
            except Exception as exc:  # the unique key's refusal
                outcomes[name] = exc
            finally:
                first_decided.set()
                db.session.remove()

    threads = [threading.Thread(target=decide, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes["first"].outcome == IntakeOutcome.REQUEST_CREATED
    second = outcomes["second"]
    assert getattr(second, "already", False) or isinstance(second, ValidationFailed), second
    assert [r.subject for r in requests_of(session, acme)] == ["Once"] and count(session, IncomingMail) == 1


def test_one_mail_sent_to_two_intake_mailboxes_makes_one_request(app, session, acme):
    raw = mails.plain("mia@acme.example", "To both", "Hi.", to="desk@intake.example, help@acme.example")
    results = []
    for scope in (IntakeScope(), IntakeScope.of_customer(acme.id, "help@acme.example", "help@acme.example")):
        with unit_of_work(session):
            results.append(receive(session, scope, read_mail(raw, LIMITS), LIMITS))
    assert [r.outcome for r in results] == [IntakeOutcome.REQUEST_CREATED, IntakeOutcome.DISCARDED]
    assert len(requests_of(session, acme)) == 1
    assert "came in through another intake mailbox" in incoming(session)[1].reason


# --- the held-mail page ----------------------------------------------------------------------------

def page(client, url) -> str:
    response = client.get(url, follow_redirects=True)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def csrf(client, url) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page(client, url)).group(1)


def post(client, url, data, form_url):
    return client.post(url, data={"csrf_token": csrf(client, form_url), **data}, follow_redirects=True)


@pytest.fixture
def held(intake, mailbox, session, acme, new_customer):
    """Three held mails read from the mailbox: Acme's (requests by e-mail off), an unknown
    sender's, and one of a customer the operator is not assigned to."""
    from tests.intake_fixtures import enable

    enable(session, intake.app, acme, requests_by_email_enabled=False)
    hidden = new_customer(kind=CustomerKind.PERSON, first_name="Hedda", last_name="Hidden",
                          email="hedda@else.example")
    mailbox.drop(mails.plain("cyril@acme.example", "Wifi in room 4", "No signal <b>at all</b>."))
    mailbox.drop(mails.plain("nobody@unknown.example", "Hello from a stranger", "Who am I?"))
    mailbox.drop(mails.plain("hedda@else.example", "Hedda's printer", "Paper jam."))
    intake.fetch()
    mails_by_subject = {m.subject: m for m in incoming(session)}
    assert all(m.outcome == IntakeOutcome.HELD for m in mails_by_subject.values())
    return {"acme": mails_by_subject["Wifi in room 4"], "stranger": mails_by_subject["Hello from a stranger"],
            "hidden": mails_by_subject["Hedda's printer"], "hidden_customer": hidden}


def test_operators_see_held_mail_of_their_customers_and_maintainers_all(held, operator_client,
                                                                       maintainer_client):
    listing = page(operator_client, "/admin/held-mail/")
    assert "Wifi in room 4" in listing and "Requests by e-mail are off for this customer (Acme)." in listing
    assert "Hello from a stranger" not in listing and "Hedda&#39;s printer" not in listing
    assert operator_client.get(f"/admin/held-mail/{held['stranger'].id}").status_code == 404
    assert operator_client.get(f"/admin/held-mail/{held['hidden'].id}").status_code == 404
    everything = page(maintainer_client, "/admin/held-mail/")
    assert all(s in everything for s in ("Wifi in room 4", "Hello from a stranger", "Hedda&#39;s printer"))
    details = page(operator_client, f"/admin/held-mail/{held['acme'].id}")
    assert "No signal &lt;b&gt;at all&lt;/b&gt;." in details, "the mail's text is shown as text"


def test_an_operator_creates_a_request_from_held_mail_for_a_contact(held, operator_client, session, acme,
                                                                   operator):
    mail = held["acme"]
    url = f"/admin/held-mail/{mail.id}"
    choose = page(operator_client, f"{url}?customer={acme.id}")
    cyril = next(c for c in acme.contacts if c.first_name == "Cyril")
    assert f'<option value="{cyril.id}" selected' in choose, "the sender's contact is proposed"
    token = csrf(operator_client, f"{url}?customer={acme.id}")
    done = operator_client.post(f"{url}/create", data={"csrf_token": token, "customer_id": acme.id,
                                                       "contact_id": cyril.id})
    [request] = requests_of(session, acme)
    assert done.headers["Location"].endswith(f"/admin/requests/details/?id={request.id}")
    assert f"Request {request.reference} created from the mail." in page(operator_client, "/admin/held-mail/")
    assert (request.subject, request.source, request.requester_contact_id) == (
        "Wifi in room 4", RequestSource.EMAIL, cyril.id)
    assert request.description == "No signal <b>at all</b>."
    session.expire_all()
    mail = session.get(IncomingMail, mail.id)
    assert (mail.outcome, mail.request_id, mail.decided_by_id) == (IntakeOutcome.REQUEST_CREATED, request.id,
                                                                  operator.id)
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "intake_decision")).one()
    assert event.actor_id == operator.id and f"request {request.reference} created" in str(event.changes)
    assert "Create the request" not in page(operator_client, url), "a decided mail offers no decisions"
    again = operator_client.post(f"{url}/create", data={"csrf_token": token, "customer_id": acme.id},
                                 follow_redirects=True)
    assert "Another operator has decided about this mail already." in again.get_data(as_text=True)
    assert len(requests_of(session, acme)) == 1


def test_an_operator_adds_held_mail_to_a_request_and_hostile_input_is_refused_in_words(
        held, operator_client, session, acme, operator):
    from services.requests import save_request
    from tests.conftest import written

    request = Request(customer=acme, subject="Wifi", description="Room 4.")
    written(session, lambda: save_request(session, request, operator))
    mail = held["acme"]
    url = f"/admin/held-mail/{mail.id}"
    for typed in ("CD-99999999999999", "nonsense", "", "CD-0"):
        refused = post(operator_client, f"{url}/add", {"request": typed}, url).get_data(as_text=True)
        assert "Type the reference of a request you may see, like CD-12." in refused
    hidden_request = Request(customer=held["hidden_customer"], subject="Not yours")
    written(session, lambda: save_request(session, hidden_request, None))
    refused = post(operator_client, f"{url}/add", {"request": hidden_request.reference}, url)
    assert "Type the reference of a request you may see" in refused.get_data(as_text=True), "not told"
    done = operator_client.post(f"{url}/add", data={"csrf_token": csrf(operator_client, url),
                                                    "request": f"[{request.reference}]"})
    assert done.headers["Location"].endswith(f"/admin/requests/details/?id={request.id}")
    assert f"The mail was added to {request.reference}." in page(operator_client, "/admin/held-mail/")
    session.expire_all()
    [comment] = session.scalars(select(RequestComment).where(RequestComment.request_id == request.id)).all()
    assert (comment.body, comment.via, comment.author_email) == ("No signal <b>at all</b>.", Via.EMAIL,
                                                                 "cyril@acme.example")
    assert session.get(IncomingMail, mail.id).outcome == IntakeOutcome.COMMENT_ADDED


def test_a_maintainer_discards_an_unknown_senders_mail_once(held, maintainer_client, session, maintainer):
    mail = held["stranger"]
    url = f"/admin/held-mail/{mail.id}"
    assert maintainer_client.post(f"{url}/discard", data={}).status_code == 400, "no CSRF token, no discard"
    done = post(maintainer_client, f"{url}/discard", {}, url)
    assert "The mail was discarded." in done.get_data(as_text=True)
    session.expire_all()
    assert session.get(IncomingMail, mail.id).outcome == IntakeOutcome.DISCARDED
    assert recognise(session, "nobody@unknown.example") == [], "an unknown sender never becomes a customer"
    assert "Hello from a stranger" in page(maintainer_client, "/admin/held-mail/?show=discarded")
    assert "Hello from a stranger" not in page(maintainer_client, "/admin/held-mail/")
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "intake_decision")).all()
    assert [(e.actor_id, e.changes["outcome"]) for e in events] == [(maintainer.id, ["held", "discarded"])]


def test_a_maintainer_files_an_unknown_senders_mail_under_a_chosen_customer(held, maintainer_client, session,
                                                                           pat):
    mail = held["stranger"]
    url = f"/admin/held-mail/{mail.id}"
    found = page(maintainer_client, f"{url}?q=Person")
    assert f"customer={pat.id}" in found
    done = maintainer_client.post(f"{url}/create", data={"csrf_token": csrf(maintainer_client, url),
                                                         "customer_id": pat.id})
    assert done.status_code == 302
    [request] = requests_of(session, pat)
    assert request.subject == "Hello from a stranger" and request.requester_contact_id is None
    other = f"/admin/held-mail/{held['acme'].id}"
    refused = post(maintainer_client, f"{other}/create", {"customer_id": "x"}, other)
    assert "Choose the customer this request is for." in refused.get_data(as_text=True)


def test_refused_mail_is_listed_with_its_reason(intake, mailbox, session, maintainer_client):
    intake.unknown_senders(UnknownSenders.REFUSE)
    mailbox.drop(mails.plain("spam@bulk.example", "Win a prize", "Click."))
    intake.fetch()
    listing = page(maintainer_client, "/admin/held-mail/?show=refused")
    assert "Win a prize" in listing and "No reply was sent." in listing


HOSTILE = ["", "\x00", "x" * 5000, "-1", "2147483648", "99999999999999999999", "<script>alert(1)</script>",
           "\u202e😀", "CD-", "[CD-1", "1e400"]


def test_hostile_input_on_the_held_mail_pages_gets_a_page_or_a_refusal(held, maintainer_client):
    url = f"/admin/held-mail/{held['acme'].id}"
    token = csrf(maintainer_client, url)
    for value in HOSTILE:
        for query in ("q", "customer", "show"):
            answer = maintainer_client.get(f"/admin/held-mail/?{query}={value}") if query == "show" \
                else maintainer_client.get(url, query_string={query: value})
            assert answer.status_code == 200, (query, value)
        for action, names in (("create", ("customer_id", "contact_id")), ("add", ("request",))):
            answer = maintainer_client.post(f"{url}/{action}", data={"csrf_token": token,
                                                                     **{n: value for n in names}})
            assert answer.status_code in (302, 403, 404), (action, value, answer.status_code)
    assert maintainer_client.get("/admin/held-mail/2147483648").status_code == 404
    assert maintainer_client.get("/admin/held-mail/0").status_code == 404
    assert held["acme"].outcome == IntakeOutcome.HELD
