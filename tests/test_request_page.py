"""The request's page for operators (RequestView's details page, admin_views.request_discussion):
what it shows, its forms (comment, internal note, status change) with their refusals, attachments
as safe downloads, and who may open or post to it."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from models import GlobalSettings, OutgoingMail, Request, RequestComment, Team
from models.enums import CustomerKind, MailState, RequestStatus, Via
from services.discussion import Author, add_comment, attach, change_status
from services.requests import save_request
from tests.conftest import Browserless, csrf_from, version_on, written
from tests.test_fuzz_panel import HOSTILE
from tests.test_get_never_writes import changed, snapshot


@pytest.fixture(autouse=True)
def sending(monkeypatch):
    """The mail ids the "mail.send" job was given; nothing is sent, so each copy stays as the test
    sets it (the sending itself is services.mail_send's, tested with a real SMTP server there)."""
    given: list[int] = []
    monkeypatch.setattr("services.mail_send.send_queued", given.append)
    return given


@pytest.fixture
def acme(new_customer, operator):
    return new_customer(kind=CustomerKind.COMPANY, company_name="Acme s.r.o.", operators=[operator],
                        contacts=[
        {"first_name": "Mia", "last_name": "Main", "email": "mia@acme.sk", "is_main": True},
        {"first_name": "Cyril", "last_name": "Contact", "email": "cyril@acme.sk"}])


@pytest.fixture
def ticket(session, operator, acme):
    cyril = next(c for c in acme.contacts if c.first_name == "Cyril")
    new = Request(customer=acme, subject="Printer on fire", description="Third floor", contacts=[cyril])
    return written(session, lambda: save_request(session, new, operator))


def page_of(request_id: int) -> str:
    return f"/admin/requests/details/?id={request_id}"


def post_to(request_id: int, form: str = "comment") -> str:
    """Where the page's comment form (comment or note) or status form posts."""
    return f"/admin/requests/{form}/?id={request_id}"


def outgoing(session) -> int:
    return session.scalar(select(func.count()).select_from(OutgoingMail))


def test_the_page_shows_the_thread_notes_history_and_each_copy_with_its_state(operator_client, session,
                                                                            operator, acme, ticket):
    desk = Author.of_operator(operator)
    mia = Author.of_sender(Via.EMAIL, "mia@acme.sk", acme, acme.contacts[0])
    written(session, lambda: add_comment(session, ticket, mia, "It smokes"))
    written(session, lambda: add_comment(session, ticket, desk, "Call the fire brigade", internal=True))
    written(session, lambda: change_status(session, ticket, desk, RequestStatus.RESOLVED,
                                           comment="Extinguished"))
    failed, sent = session.scalars(select(OutgoingMail).order_by(OutgoingMail.id).limit(2)).all()
    failed.state, failed.attempts = MailState.FAILED, 5
    failed.last_error = "smtp.acme.sk:587 refused the recipient"
    sent.state, sent.sent_via, sent.attempts = MailState.SENT, "primary smtp.acme.sk:587", 1
    sent.sent_at = sent.created_at
    session.commit()

    page = operator_client.get(page_of(ticket.id)).get_data(as_text=True)
    text = html.unescape(page)
    assert f"CD-{ticket.id}" in text and "Printer on fire" in text and 'data-status="resolved"' in page
    assert f'href="/admin/customers/details/?id={acme.id}"' in page
    # The thread oldest first; the note marked as such, each with author, way in and minute.
    thread = text.split('data-testid="thread"')[1].split('data-testid="comment-form"')[0]
    order = [thread.index(t) for t in ("It smokes", "Call the fire brigade", "Extinguished")]
    assert order == sorted(order)
    assert thread.count('data-testid="note"') == 1 and "Internal note · not sent to the customer" in thread
    assert "via E-mail" in thread and "via Service desk" in thread
    assert re.search(r"\d{4},? \d\d:\d\d\b", thread) and " UTC" not in thread  # |when: the reader's zone
    history = text.split('data-testid="history"')[1]
    assert 'data-status="new"' in history and "Olga Operator via Service desk, with a comment" in history
    recipients = text.split('data-testid="recipients"')[1].split("</ul>")[0]
    assert "mia@acme.sk" in recipients and "main contact" in recipients
    assert "assigned to this request" in recipients
    mails = text.split('data-testid="mails"')[1]
    assert 'data-state="failed"' in mails and "refused the recipient" in mails
    assert 'data-state="sent"' in mails and "primary smtp.acme.sk:587" in mails
    assert mails.count("Resend</button>") == 2  # the queued ones are on their way already


def test_an_operator_comments_and_notes_and_only_the_comment_is_mailed(operator_client, session, ticket,
                                                                       sending):
    before = outgoing(session)
    done = operator_client.submit(page_of(ticket.id), {"action": "comment", "body": "On my way"},
                                  post_url=post_to(ticket.id))
    assert done.status_code == 302 and done.headers["Location"].endswith("#thread")
    comment = session.scalars(select(RequestComment).filter_by(body="On my way")).one()
    copies = session.scalars(select(OutgoingMail).filter_by(comment_id=comment.id)).all()
    assert sorted(m.recipient_email for m in copies) == ["cyril@acme.sk", "mia@acme.sk"]
    assert all(m.state == MailState.QUEUED for m in copies) and {m.id for m in copies} <= set(sending)

    counted = outgoing(session)
    assert counted == before + 2
    noted = operator_client.submit(page_of(ticket.id), {"action": "note", "body": "He is a VIP"},
                                   post_url=post_to(ticket.id))
    assert noted.status_code == 302
    note = session.scalars(select(RequestComment).filter_by(body="He is a VIP")).one()
    assert note.is_internal and outgoing(session) == counted
    assert "Internal note added" in operator_client.get(page_of(ticket.id)).get_data(as_text=True)


def test_completing_with_a_comment_and_a_status_changed_meanwhile(operator_client, session, acme, ticket):
    page = operator_client.get(page_of(ticket.id)).get_data(as_text=True)
    assert '<option selected value="in_progress">' in page  # the usual next step
    seen = version_on(page)
    done = operator_client.submit(page_of(ticket.id), {"action": "status", "status": "resolved",
                                                       "comment": "Replaced the fuser", "version_seen": seen},
                                  post_url=post_to(ticket.id, "status"))
    assert done.status_code == 302
    session.expire_all()
    assert session.get(Request, ticket.id).status == RequestStatus.RESOLVED
    change = session.get(Request, ticket.id).status_changes[-1]
    assert change.comment.body == "Replaced the fuser" and change.via == Via.DESK
    assert session.scalar(select(func.count()).select_from(OutgoingMail)
                          .where(OutgoingMail.status_change_id == change.id)) == 2

    # The page is open at Completed; meanwhile the customer reopens it.
    seen = version_on(operator_client.get(page_of(ticket.id)).get_data(as_text=True))
    mia = Author.of_sender(Via.EMAIL, "mia@acme.sk", acme, acme.contacts[0])
    written(session, lambda: change_status(session, session.get(Request, ticket.id), mia,
                                           RequestStatus.REOPENED, comment="Still smoking"))
    refused = operator_client.submit(page_of(ticket.id), {"action": "status", "status": "closed",
                                                          "comment": "Closing it", "version_seen": seen},
                                     post_url=post_to(ticket.id, "status"))
    answer = html.unescape(refused.get_data(as_text=True))
    assert refused.status_code == 200 and "The request is now Reopened." in answer
    assert "Closing it</textarea>" in answer
    session.expire_all()
    assert session.get(Request, ticket.id).status == RequestStatus.REOPENED
    # Told, the operator may insist: the form now carries the version they have seen.
    again = operator_client.submit(page_of(ticket.id), {"action": "status", "status": "closed",
                                                        "version_seen": version_on(answer)},
                                   post_url=post_to(ticket.id, "status"))
    assert again.status_code == 302
    session.expire_all()
    assert session.get(Request, ticket.id).status == RequestStatus.CLOSED


@pytest.mark.parametrize(("data", "message"), [
    ({"action": "comment", "body": ""}, "Write a comment."),
    ({"action": "note", "body": "bad\x00byte"}, "Remove the control characters"),
    ({"action": "comment", "body": "bell\x07 and \x1b[31m escape"}, "Remove the control characters"),
    ({"action": "comment", "body": "é" * 25_000}, "At most 20000 characters"),
    ({"action": "status", "status": "on_fire", "comment": "typed"}, "Choose one of the statuses."),
    ({"action": "status", "status": "new", "comment": "typed"}, "The request is New already."),
    ({"action": "status", "status": "resolved", "comment": "bad\x00"}, "Remove the control characters"),
])
def test_hostile_or_wrong_input_is_a_message_on_the_field_and_writes_nothing(operator_client, session, ticket,
                                                                          data, message):
    seen = version_on(operator_client.get(page_of(ticket.id)).get_data(as_text=True))
    before = snapshot()
    form = "status" if data["action"] == "status" else "comment"
    answer = operator_client.submit(page_of(ticket.id), {**data, "version_seen": seen},
                                    post_url=post_to(ticket.id, form))
    page = html.unescape(answer.get_data(as_text=True))
    assert answer.status_code == 200 and message in page.replace(",", "")
    assert 'class="invalid-feedback"' in page
    typed = data.get("body") or data.get("comment") or ""
    if typed and "\x00" not in typed:
        assert typed[:200] in page  # what was typed is still in the form
    assert not changed(before, snapshot())


def test_an_unknown_button_or_a_bad_version_writes_nothing(operator_client, session, ticket):
    before = snapshot()
    odd = operator_client.submit(page_of(ticket.id), {"action": "delete", "body": "x"},
                                 post_url=post_to(ticket.id))
    assert odd.status_code == 302
    for version in ("", "abc", "\x00", "99999999999999999999"):
        answer = operator_client.submit(page_of(ticket.id), {"action": "status", "status": "resolved",
                                                             "version_seen": version},
                                        post_url=post_to(ticket.id, "status"))
        assert answer.status_code == 200, version
    assert not changed(before, snapshot())


@pytest.fixture
def outsider_client(app, make_operator):
    make_operator("otto@example.com", first_name="Otto", last_name="Outsider")
    browser = Browserless(app.test_client())
    assert browser.login("otto@example.com").status_code == 302
    return browser


def test_an_operator_who_may_not_view_the_customer_gets_404_on_every_door(outsider_client, session, operator,
                                                                          acme, ticket):
    desk = Author.of_operator(operator)
    comment = written(session, lambda: add_comment(session, ticket, desk, "With file"))
    written(session, lambda: attach(session, comment, "plan.txt", "text/plain", b"secret plan"))
    mail = session.scalars(select(OutgoingMail)).first()
    mail.state = MailState.FAILED
    session.commit()
    attachment_id, mail_id = comment.attachments[0].id, mail.id
    before = snapshot()
    token = csrf_from(outsider_client.get("/admin/").get_data(as_text=True))
    gets = [page_of(ticket.id), f"/admin/requests/attachment/?id={ticket.id}&attachment={attachment_id}",
            f"/admin/customers/mail-tab/?id={acme.id}"]
    for url in gets:
        answer = outsider_client.get(url)
        assert answer.status_code == 404, url
        assert b"Printer on fire" not in answer.data and b"secret plan" not in answer.data
    posts = [(post_to(ticket.id), {"action": "comment", "body": "Sneaky"}),
             (post_to(ticket.id), {"action": "note", "body": "Sneaky"}),
             (post_to(ticket.id, "status"), {"status": "closed", "version_seen": "1"}),
             (f"/admin/customers/mail-tab/?id={acme.id}", {"mail": str(mail_id)}),
             (f"/admin/customers/mail-tab/?id={acme.id}", {"mail": str(mail_id), "back": "request"})]
    for url, data in posts:
        assert outsider_client.post(url, data={**data, "csrf_token": token}).status_code == 404, (url, data)
    assert not changed(before, snapshot())


def test_a_post_without_its_csrf_token_is_refused(operator_client, session, ticket):
    answer = operator_client.post(post_to(ticket.id), data={"action": "comment", "body": "Forged"})
    assert answer.status_code == 400
    assert session.scalar(select(func.count()).select_from(RequestComment)) == 0


def test_attachments_are_downloads_with_a_safe_type_and_name(operator_client, session, operator, acme,
                                                             ticket):
    comment = written(session, lambda: add_comment(session, ticket, Author.of_operator(operator), "Files"))
    hostile = written(session, lambda: attach(session, comment, 'evil"\r\nX-Injected: 1;.html', "text/html",
                                              b"<script>alert(document.cookie)</script>"))
    picture = written(session, lambda: attach(session, comment, "Fotka tlačiarne.png", "image/png",
                                              b"\x89PNG..."))
    another = Request(customer=acme, subject="Other")
    other = written(session, lambda: save_request(session, another, operator))

    page = operator_client.get(page_of(ticket.id)).get_data(as_text=True)
    assert f"/admin/requests/attachment/?id={ticket.id}&amp;attachment={hostile.id}" in page
    answer = operator_client.get(f"/admin/requests/attachment/?id={ticket.id}&attachment={hostile.id}")
    assert answer.status_code == 200 and answer.data == b"<script>alert(document.cookie)</script>"
    assert answer.mimetype == "application/octet-stream"
    disposition = answer.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "\r" not in disposition and "\n" not in disposition
    assert "X-Injected" not in answer.headers and answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in answer.headers["Content-Security-Policy"]
    shown = operator_client.get(f"/admin/requests/attachment/?id={ticket.id}&attachment={picture.id}")
    assert shown.mimetype == "image/png" and "filename*=UTF-8''Fotka%20tla%C4%8Diarne.png" in \
        shown.headers["Content-Disposition"]
    # An attachment is reached only through its own request.
    assert operator_client.get(f"/admin/requests/attachment/?id={other.id}&attachment={hostile.id}"
                               ).status_code == 404
    for odd in ("", "x", "0", "-1", "99999999999999999999", "\x00"):
        assert operator_client.get(f"/admin/requests/attachment/?id={ticket.id}&attachment={odd}"
                                   ).status_code == 404


def test_a_private_persons_request_page(operator_client, session, operator, new_customer):
    person = new_customer(kind=CustomerKind.PERSON, first_name="Peter", last_name="Novák",
                          email="peter@novak.sk", operators=[operator])
    new = Request(customer=person, subject="Laptop")
    ticket = written(session, lambda: save_request(session, new, operator))
    page = html.unescape(operator_client.get(page_of(ticket.id)).get_data(as_text=True))
    assert "Novák, Peter" in page and "(Person)" in page
    assert "peter@novak.sk" in page.split('data-testid="recipients"')[1] and "the customer" in page


def test_the_list_shows_status_badges_and_filters_by_status(operator_client, session, operator, acme,
                                                            ticket):
    mia = Author.of_sender(Via.EMAIL, "mia@acme.sk", acme, acme.contacts[0])
    scanner = Request(customer=acme, subject="Scanner")
    other = written(session, lambda: save_request(session, scanner, operator))
    desk = Author.of_operator(operator)
    written(session, lambda: change_status(session, other, desk, RequestStatus.RESOLVED))
    written(session, lambda: change_status(session, other, mia, RequestStatus.REOPENED, comment="No"))
    listed = operator_client.get("/admin/requests/").get_data(as_text=True)
    assert 'data-status="reopened">Reopened</span>' in listed and 'data-status="new">New</span>' in listed
    assert f'href="/admin/requests/details/?id={ticket.id}"' in listed
    only = operator_client.get("/admin/requests/?flt0_0=reopened").get_data(as_text=True)
    assert "Scanner" in only and "Printer on fire" not in only
    for hostile in ("bogus", "\x00", "x" * 500):
        assert operator_client.get("/admin/requests/", query_string={"flt0_0": hostile}).status_code == 200


def test_an_operator_who_may_only_view_the_customer_may_comment(app, session, operator, make_operator,
                                                               ticket):
    viewer = make_operator("vera@example.com", first_name="Vera", last_name="Viewer")
    team = Team(name="Desk")
    session.add(team)
    viewer.teams, operator.teams = [team], [team]
    session.get(GlobalSettings, 1).view_by_team_members = True
    session.commit()
    browser = Browserless(app.test_client())
    assert browser.login("vera@example.com").status_code == 302
    done = browser.submit(page_of(ticket.id), {"action": "comment", "body": "Seen it"},
                          post_url=post_to(ticket.id))
    assert done.status_code == 302
    comment = session.scalars(select(RequestComment).filter_by(body="Seen it")).one()
    assert comment.author_name == "Vera Viewer"
    page = browser.get(page_of(ticket.id)).get_data(as_text=True)
    assert "Seen it" in page and f"/admin/requests/edit/?id={ticket.id}" not in page  # no Edit to a 403


FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


def test_the_page_forms_answer_any_input_with_a_page(operator_client, session, ticket, acme):
    """The page's two forms and the Mail tab's Resend, driven with the fuzz tier's hostile values
    (tests/test_fuzz_panel.py reaches these POST-only forms with other names only)."""
    token = csrf_from(operator_client.get(page_of(ticket.id)).get_data(as_text=True))

    @FUZZ
    @given(form=st.fixed_dictionaries({"action": st.sampled_from(["comment", "note", "status"]) | HOSTILE},
                                      optional={"body": HOSTILE, "status": HOSTILE, "comment": HOSTILE,
                                                "version_seen": HOSTILE, "mail": HOSTILE, "back": HOSTILE}),
           record=st.sampled_from([str(ticket.id)]) | HOSTILE)
    def run(form, record):
        for url in (f"/admin/requests/comment/?id={record}", f"/admin/requests/status/?id={record}",
                    f"/admin/customers/mail-tab/?id={acme.id}"):
            answer = operator_client.post(url, data={**form, "csrf_token": token})
            assert answer.status_code < 500, (url, form, answer.status_code)

    run()
