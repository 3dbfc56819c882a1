"""The customer's Mail tab (admin_views.customer_mail): the copies sent with their delivery state and
Resend, the mail received with what became of it; who may see it and resend; and the maintainer's
choice of what happens to mail from unknown senders (the quick-create rules page)."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from models import AuditEvent, GlobalSettings, IncomingMail, OutgoingMail, Request, Team
from models.enums import CustomerKind, IntakeOutcome, MailState, UnknownSenders
from services.requests import save_request
from tests.conftest import Browserless, csrf_from, version_on, written
from tests.test_get_never_writes import changed, snapshot


@pytest.fixture(autouse=True)
def sending(monkeypatch):
    """The mail ids the "mail.send" job was given; nothing is sent (services.mail_send's tests
    send through a real SMTP server), so each copy stays in the state the test gives it."""
    given: list[int] = []
    monkeypatch.setattr("services.mail_send.send_queued", given.append)
    return given


@pytest.fixture
def acme(new_customer, operator):
    return new_customer(kind=CustomerKind.COMPANY, company_name="Acme s.r.o.", operators=[operator],
                        contacts=[
        {"first_name": "Mia", "last_name": "Main", "email": "mia@acme.sk", "is_main": True},
        {"first_name": "Max", "last_name": "Main", "email": "max@acme.sk", "is_main": True}])


@pytest.fixture
def ticket(session, operator, acme):
    new = Request(customer=acme, subject="VPN down")
    return written(session, lambda: save_request(session, new, operator))


def tab(customer_id: int, **args) -> str:
    query = "".join(f"&{k}={v}" for k, v in args.items())
    return f"/admin/customers/mail-tab/?id={customer_id}{query}"


def mails(session) -> list[OutgoingMail]:
    return list(session.scalars(select(OutgoingMail).order_by(OutgoingMail.id)))


def test_the_tab_shows_mail_sent_newest_first_and_mail_received_without_bodies(operator_client, session,
                                                                              new_customer, operator, acme,
                                                                              ticket):
    first, second = mails(session)
    first.state, first.attempts, first.last_error = MailState.FAILED, 5, "No server answered"
    second.state, second.sent_at = MailState.SENT, second.created_at
    second.sent_via = "primary mail.acme.sk:465"
    second.body = "Add a comment: https://desk.example/portal/link/comment/SIGNED-TOKEN"
    other = new_customer(kind=CustomerKind.COMPANY, company_name="Other a.s.", operators=[operator])
    theirs = Request(customer=other, subject="Their printer")
    written(session, lambda: save_request(session, theirs, operator))
    session.add_all([
        IncomingMail(mailbox="builtin", message_key="<a@acme.sk>", from_address="mia@acme.sk",
                     from_name="Mia Main", subject=f"Re: [CD-{ticket.id}] VPN down", body_text="PRIVATE BODY",
                     outcome=IntakeOutcome.COMMENT_ADDED, customer_id=acme.id, request_id=ticket.id),
        IncomingMail(mailbox=f"customer:{acme.id}", message_key="<b@acme.sk>", from_address="mia@acme.sk",
                     subject="Hello", outcome=IntakeOutcome.HELD,
                     reason="Requests by e-mail are off for this customer", customer_id=acme.id,
                     received_at=ticket.created_at + timedelta(minutes=1)),
        IncomingMail(mailbox="builtin", message_key="<c@other.sk>", from_address="x@other.sk",
                     subject="Not Acme's", outcome=IntakeOutcome.REQUEST_CREATED, customer_id=other.id),
    ])
    session.commit()

    page = html.unescape(operator_client.get(tab(acme.id)).get_data(as_text=True))
    bar = page.split('data-testid="customer-tabs"')[1].split("</ul>")[0]
    assert 'aria-current="page"' in bar.split(">Mail</a>")[0].rsplit("<a", 1)[1]
    assert bar.count('aria-current="page"') == 1
    sent = page.split('data-testid="sent-mail"')[1].split("</table>")[0]
    newest, oldest = second.recipient_email, first.recipient_email
    assert sent.index(newest) < sent.index(oldest)
    assert 'data-state="failed"' in sent and "No server answered" in sent
    assert sent.count("Resend</button>") == 2
    assert 'data-state="sent"' in sent and "primary mail.acme.sk:465" in sent
    assert f'href="/admin/requests/details/?id={ticket.id}"' in sent
    received = page.split('data-testid="received-mail"')[1].split("</table>")[0]
    assert "Comment added" in received and "Held for an operator" in received
    assert "Requests by e-mail are off for this customer" in received and "Not Acme's" not in received
    assert "SIGNED-TOKEN" not in page and "PRIVATE BODY" not in page
    listed = html.unescape(operator_client.get(re.search(r'href="([^"]+)" data-testid="customer-requests"',
                                                          page).group(1)).get_data(as_text=True))
    assert "VPN down" in listed and "Their printer" not in listed


def test_resend_queues_a_new_copy_from_the_tab_and_from_the_request_page(operator_client, session, acme,
                                                                         ticket, operator, sending):
    failed, queued = mails(session)
    failed.state, failed.last_error = MailState.FAILED, "Mailbox full"
    session.commit()
    failed_id = failed.id
    done = operator_client.submit(tab(acme.id), {"mail": str(failed_id)})
    assert done.status_code == 302 and done.headers["Location"].endswith(tab(acme.id))
    copy = mails(session)[-1]
    assert (copy.resent_from_id, copy.state, copy.recipient_email) == (failed_id, MailState.QUEUED,
                                                                       failed.recipient_email)
    assert copy.subject == failed.subject and sending[-1] == copy.id
    event = session.scalars(select(AuditEvent).filter_by(action="resend")).one()
    assert event.actor_id == operator.id and event.changes["resent_from"] == [None, failed_id]
    assert "A new copy to" in operator_client.get(tab(acme.id)).get_data(as_text=True)

    # While that new copy is queued, resending the original again is refused (no flood of copies).
    again = operator_client.submit(tab(acme.id), {"mail": str(failed_id)})
    assert again.status_code == 302 and len(mails(session)) == 3
    assert "queued already" in operator_client.get(tab(acme.id)).get_data(as_text=True)
    copy.state = MailState.SENT  # once it went out, the original may be sent again
    session.commit()

    back = operator_client.submit(f"/admin/requests/details/?id={ticket.id}",
                                  {"mail": str(failed_id), "back": "request"}, post_url=tab(acme.id))
    assert back.headers["Location"].endswith(f"/admin/requests/details/?id={ticket.id}#mails")
    assert len(mails(session)) == 4

    # A copy still queued is on its way: a second one would arrive twice.
    refused = operator_client.submit(tab(acme.id), {"mail": str(queued.id)})
    assert refused.status_code == 302 and len(mails(session)) == 4
    assert "still queued" in operator_client.get(tab(acme.id)).get_data(as_text=True)


def test_resend_names_only_a_message_of_this_customer(operator_client, session, operator, new_customer, acme,
                                                      ticket):
    other = new_customer(kind=CustomerKind.COMPANY, company_name="Other a.s.", operators=[operator])
    written(session, lambda: save_request(session, Request(customer=other, subject="Theirs"), operator))
    theirs = session.scalars(select(OutgoingMail).filter_by(customer_id=other.id)).first()
    theirs.state = MailState.FAILED
    session.commit()
    before = len(mails(session))
    for value in (str(theirs.id), "", "abc", "\x00", "-1", "99999999999999999999", "1" * 400):
        assert operator_client.submit(tab(acme.id), {"mail": value}).status_code == 404, value
    assert len(mails(session)) == before


def test_the_tab_pages_through_the_mail(operator_client, session, acme, ticket):
    template = mails(session)[0]
    session.add_all([OutgoingMail(customer_id=acme.id, request_id=ticket.id, recipient_name="Mia Main",
                                  recipient_email=f"copy{n:02d}@acme.sk", why="main contact",
                                  subject=template.subject, body="x", message_id=f"<copy{n}@desk>")
                     for n in range(30)])
    session.commit()
    first = operator_client.get(tab(acme.id)).get_data(as_text=True)
    assert first.count('data-testid="sent-row"') == 25 and "copy29@acme.sk" in first and ">Older</a>" in first
    second = operator_client.get(tab(acme.id, sent_page=2)).get_data(as_text=True)
    assert second.count('data-testid="sent-row"') == 7
    assert ">Newer</a>" in second and ">Older</a>" not in second
    for hostile in ("0", "-1", "x", "99999999999999999999", "%00", "2147483647"):
        assert operator_client.get(tab(acme.id, sent_page=hostile, received_page=hostile)).status_code == 200


def test_whoever_may_view_the_customer_sees_the_tab_and_may_resend(app, session, operator, make_operator,
                                                                   acme, ticket):
    viewer = make_operator("vera@example.com", first_name="Vera", last_name="Viewer")
    stranger = make_operator("otto@example.com", first_name="Otto", last_name="Outsider")
    team = Team(name="Desk")
    session.add(team)
    viewer.teams, operator.teams = [team], [team]
    session.get(GlobalSettings, 1).view_by_team_members = True
    failed = mails(session)[0]
    failed.state = MailState.FAILED
    session.commit()
    browsers = {}
    for who in (viewer, stranger):
        browsers[who.email] = Browserless(app.test_client())
        assert browsers[who.email].login(who.email).status_code == 302
    seen = browsers["vera@example.com"].get(tab(acme.id))
    assert seen.status_code == 200 and b"mia@acme.sk" in seen.data
    assert browsers["vera@example.com"].submit(tab(acme.id), {"mail": str(failed.id)}).status_code == 302
    assert len(mails(session)) == 3
    outsider = browsers["otto@example.com"]
    token = csrf_from(outsider.get("/admin/").get_data(as_text=True))
    assert outsider.get(tab(acme.id)).status_code == 404
    assert outsider.post(tab(acme.id), data={"mail": str(failed.id), "csrf_token": token}).status_code == 404
    assert len(mails(session)) == 3


def test_reading_the_mail_tab_and_the_request_page_writes_nothing(operator_client, session, acme, ticket):
    session.add(IncomingMail(mailbox="builtin", message_key="<r@acme.sk>", customer_id=acme.id,
                             outcome=IntakeOutcome.REQUEST_CREATED, request_id=ticket.id))
    session.commit()
    before = snapshot()
    for url in (tab(acme.id), tab(acme.id, sent_page=2), f"/admin/requests/details/?id={ticket.id}",
                "/admin/requests/", "/admin/requests/?flt0_0=reopened",
                f"/admin/requests/attachment/?id={ticket.id}&attachment=1"):
        assert operator_client.get(url).status_code in (200, 404), url
    assert not changed(before, snapshot())


RULES = "/admin/quick-create-rules/"


def test_a_maintainer_chooses_what_happens_to_mail_from_unknown_senders(maintainer_client, operator_client,
                                                                        session):
    page = maintainer_client.get(RULES).get_data(as_text=True)
    assert re.search(r'value="hold"\s+checked', page) and not re.search(r'value="refuse"\s+checked', page)
    saved = maintainer_client.submit(RULES, {"form": "unknown_senders", "unknown_senders": "refuse",
                                             "version_seen": version_on(page)})
    assert saved.status_code == 302
    session.expire_all()
    assert session.get(GlobalSettings, 1).unknown_senders == UnknownSenders.REFUSE
    assert session.scalars(select(AuditEvent).filter_by(entity_type="globalsettings")).one().changes == {
        "unknown_senders": ["hold", "refuse"]}

    page = maintainer_client.get(RULES).get_data(as_text=True)
    for bogus in ("", "accept", "\x00", "x" * 5000):
        refused = maintainer_client.submit(RULES, {"form": "unknown_senders", "unknown_senders": bogus,
                                                   "version_seen": version_on(page)})
        assert refused.status_code == 200 and b"held for an operator or refused" in refused.data
    stale = maintainer_client.submit(RULES, {"form": "unknown_senders", "unknown_senders": "hold",
                                             "version_seen": "1"})
    assert stale.status_code == 200 and b"changed while you were editing" in stale.data
    session.expire_all()
    assert session.get(GlobalSettings, 1).unknown_senders == UnknownSenders.REFUSE
    assert operator_client.submit("/admin/", {"form": "unknown_senders", "unknown_senders": "hold"},
                                  post_url=RULES).status_code == 403
    # The quick-create rules beside it still save on their own.
    page = maintainer_client.get(RULES).get_data(as_text=True)
    rules_form = {"duplicate_name_threshold": "90", "quick_form_requires_email": "on",
                  "version_seen": version_on(page)}
    assert maintainer_client.submit(RULES, rules_form).status_code == 302
    session.expire_all()
    rules = session.get(GlobalSettings, 1)
    assert rules.duplicate_name_threshold == 90 and rules.unknown_senders == UnknownSenders.REFUSE
    assert session.scalar(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.entity_type == "globalsettings")) == 2


def test_resending_is_refused_by_the_domain_to_whoever_may_not_view_the_customer(session, make_operator, acme,
                                                                                 ticket):
    """services.mail_admin.resend_copy checks the right itself, for every door (not only the tab's)."""
    from services.errors import PermissionDenied
    from services.mail_admin import resend_copy
    from tests.conftest import refusal

    stranger = make_operator("otto@example.com", first_name="Otto", last_name="Outsider")
    failed = mails(session)[0]
    failed.state = MailState.FAILED
    session.commit()
    refusal(session, lambda: resend_copy(session, stranger, failed), PermissionDenied)
    assert len(mails(session)) == 2
