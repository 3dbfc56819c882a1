"""The signed links in our e-mails (issue 17, item 4): add a comment, accept the completion, rate —
without signing in, where the customer's option allows it; the portal's sign-in where it does not.

Through the pages a recipient opens (portal/links.py) on both databases: what the mails carry,
that opening a link writes nothing (mail scanners and link previews fetch them), what each action
records and mails, and every refusal — each a page in the portal's look with a 4xx status, a way
to the sign-in and nothing written.
"""

from __future__ import annotations

import base64
import json
import re

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from models import OutgoingMail, Request, RequestComment, UsedLink
from models.enums import CustomerKind, RequestStatus, Via
from services.customer_settings import save_customer_settings
from services.discussion import Author, add_comment, change_status
from services.mail_links import make_token
from services.requests import delete_request, save_request
from tests.conftest import contact, csrf_from, written
from tests.served_app import page_text
from tests.test_get_never_writes import changed, snapshot

DAY = 86400
LINK = re.compile(r"https?://[^/\s]+(/portal/link/(comment|accept|rate)/[\w.\-]+)")


def set_option(app, session, customer, on: bool):
    box = app.extensions["secret_box"]
    written(session, lambda: save_customer_settings(session, customer, None, box,
                                                    {"unauthenticated_discussion_enabled": on}))


@pytest.fixture
def ticket(app, session, operator, company):
    """A Completed request of Acme, assigned to Cyril, with the option on."""
    set_option(app, session, company, True)
    new = Request(customer=company, subject="Printer jams", description="On floor 2",
                  contacts=[contact(company, "Cyril")])
    request = written(session, lambda: save_request(session, new, operator))
    desk = Author.of_operator(operator)
    written(session, lambda: change_status(session, request, desk, RequestStatus.RESOLVED, comment="Fixed"))
    return request


def path(request, email, purpose):
    return f"/portal/link/{purpose}/{make_token(request, email, purpose)}"


def post(client, url, data):
    """Send a link's form as a browser does: GET the page, POST with its CSRF token."""
    page = client.get(url)
    assert page.status_code == 200, page_text(page.get_data(as_text=True))
    return client.post(url, data={"csrf_token": csrf_from(page.get_data(as_text=True)), **data})


def text(response) -> str:
    return page_text(response.get_data(as_text=True))


def comments(session, request):
    session.expire_all()
    return [c.body for c in session.query(RequestComment).filter_by(request_id=request.id).order_by("id")]


def links_in(session, email) -> list[tuple[str, str]]:
    """(purpose, path) of every signed link in the mails queued to `email`, newest mail first."""
    session.expire_all()
    mails = session.query(OutgoingMail).filter_by(recipient_email=email).order_by(OutgoingMail.id.desc())
    return [(m.group(2), m.group(1)) for mail in mails for m in LINK.finditer(mail.body)]


# --- what the mails carry ---------------------------------------------------------------------

def test_the_mails_carry_signed_links_exactly_when_the_option_is_on(app, session, client, operator, company):
    new = Request(customer=company, subject="VPN", contacts=[contact(company, "Cyril")])
    request = written(session, lambda: save_request(session, new, operator))
    sign_in = f"/portal/sign-in?next=/portal/requests/{request.id}"
    off = session.query(OutgoingMail).filter_by(request_id=request.id).all()
    assert sorted(m.recipient_email for m in off) == ["cyril@acme.sk", "mia@acme.sk"]
    assert all(sign_in in m.body and "/portal/link/" not in m.body for m in off)

    set_option(app, session, company, True)
    desk = Author.of_operator(operator)
    written(session, lambda: change_status(session, request, desk, RequestStatus.RESOLVED, comment="Done"))
    on = session.query(OutgoingMail).filter(OutgoingMail.request_id == request.id,
                                            OutgoingMail.id > max(m.id for m in off)).all()
    assert sorted(m.recipient_email for m in on) == ["cyril@acme.sk", "mia@acme.sk"]
    assert all("/portal/sign-in" not in m.body for m in on)
    # A Completed request: a comment and an acceptance link, each for its own recipient.
    assert [p for p, _ in links_in(session, "mia@acme.sk")] == ["comment", "accept"]
    for email, name in (("mia@acme.sk", "Mia Main"), ("cyril@acme.sk", "Cyril Contact")):
        for _purpose, url in links_in(session, email):
            page = client.get(url)
            assert page.status_code == 200 and f"to {email} ({name})" in text(page)

    set_option(app, session, company, False)
    written(session, lambda: add_comment(session, request, desk, "Anything else?"))
    latest = session.query(OutgoingMail).order_by(OutgoingMail.id.desc()).limit(2).all()
    assert all(sign_in in m.body and "/portal/link/" not in m.body for m in latest)


# --- a GET never writes -----------------------------------------------------------------------

def test_opening_a_link_writes_nothing_and_leaves_it_usable(session, client, ticket):
    urls = [path(ticket, "mia@acme.sk", p) for p in ("comment", "accept", "rate")]
    before = snapshot()
    for url in urls * 2:  # a scanner, then the preview, then the reader
        assert client.get(url).status_code in (200, 409)
        assert client.open(url, method="HEAD").status_code in (200, 409)
    assert changed(before, snapshot()) == []
    answer = post(client, urls[0], {"body": "Still jams on tray 2"})
    assert answer.status_code == 200 and "your comment has been added" in text(answer)
    assert comments(session, ticket)[-1] == "Still jams on tray 2"


def test_the_page_shows_the_request_and_only_the_customers_thread(session, client, operator, ticket):
    written(session, lambda: add_comment(session, ticket, Author.of_operator(operator), "VIP customer",
                                         internal=True))
    page = text(client.get(path(ticket, "mia@acme.sk", "accept")))
    assert f"CD-{ticket.id} Printer jams Status: Completed" in page and "On floor 2" in page
    assert "Fixed" in page and "VIP customer" not in page
    assert "Accept the completion" in page and "Customer portal" in page


# --- what each action does --------------------------------------------------------------------

def test_a_comment_by_link_is_added_once_and_mailed_to_the_others(session, client, ticket):
    url = path(ticket, "mia@acme.sk", "comment")
    token = csrf_from(client.get(url).get_data(as_text=True))
    answer = client.post(url, data={"csrf_token": token, "body": "Still jams\non tray 2"})
    assert answer.status_code == 200 and "Still jams" in text(answer)
    session.expire_all()
    comment = session.query(RequestComment).filter_by(body="Still jams\non tray 2").one()
    assert (comment.via, comment.author_email, comment.author_name) == (Via.LINK, "mia@acme.sk", "Mia Main")
    copies = session.query(OutgoingMail).filter_by(comment_id=comment.id).all()
    assert [m.recipient_email for m in copies] == ["cyril@acme.sk"]  # Mia wrote it: she gets none
    assert "Still jams" in copies[0].body
    again = client.post(url, data={"csrf_token": token, "body": "Once more"})  # the back button
    assert again.status_code == 409 and "used already" in text(again)
    assert comments(session, ticket).count("Still jams\non tray 2") == 1 and "Once more" not in comments(
        session, ticket)


def test_accepting_by_link_records_the_status_and_the_rating(session, client, ticket):
    answer = post(client, path(ticket, "cyril@acme.sk", "accept"), {"rating": "4", "remark": "Quick, thanks"})
    assert answer.status_code == 200 and "accepted the completion" in text(answer)
    assert "Status: Accepted" in text(answer) and "Rated 4 of 5" in text(answer)
    session.expire_all()
    request = session.get(Request, ticket.id)
    assert (request.status, request.rating) == (RequestStatus.CLOSED, 4)
    assert request.rating_remark == "Quick, thanks"
    change = request.status_changes[-1]
    assert (change.old_status, change.new_status, change.via, change.author_email) == (
        RequestStatus.RESOLVED, RequestStatus.CLOSED, Via.LINK, "cyril@acme.sk")
    told = session.query(OutgoingMail).filter_by(status_change_id=change.id).all()
    assert [m.recipient_email for m in told] == ["mia@acme.sk"]
    # Her copy offers nothing more to accept; a rating link, if any, says it is rated already.
    offered = dict(links_in(session, "mia@acme.sk")[:2])
    assert "accept" not in offered
    if "rate" in offered:
        assert client.get(offered["rate"]).status_code == 409
        assert "rated already" in text(client.get(offered["rate"]))


def test_accepting_without_stars_then_rating_from_the_next_mail(session, client, ticket):
    assert post(client, path(ticket, "mia@acme.sk", "accept"), {"rating": ""}).status_code == 200
    session.expire_all()
    assert session.get(Request, ticket.id).rating is None
    newest = links_in(session, "cyril@acme.sk")[:2]
    assert [p for p, _ in newest] == ["comment", "rate"]
    answer = post(client, newest[1][1], {"rating": "5", "remark": "Great"})
    assert answer.status_code == 200 and "Thank you for rating" in text(answer)
    session.expire_all()
    request = session.get(Request, ticket.id)
    assert (request.rating, request.rating_remark, request.status) == (5, "Great", RequestStatus.CLOSED)
    assert request.rated_at is not None


def test_a_refused_action_writes_nothing_keeps_the_text_and_the_link(session, client, operator, ticket):
    url = path(ticket, "mia@acme.sk", "accept")
    page = client.get(url)
    token = csrf_from(page.get_data(as_text=True))
    desk = Author.of_operator(operator)
    written(session, lambda: change_status(session, ticket, desk, RequestStatus.IN_PROGRESS, comment="Wait"))
    # The page was open when the operator took the request back: refused, nothing lost.
    before = snapshot()
    answer = client.post(url, data={"csrf_token": token, "rating": "5", "remark": "Mine to keep"})
    assert answer.status_code == 422
    assert "Only a completed request can be accepted" in text(answer)
    html = answer.get_data(as_text=True)
    assert "Mine to keep" in html and re.search(r'value="5"\s+checked', html)
    assert changed(before, snapshot()) == []
    assert client.get(url).status_code == 409  # now: nothing to accept, said so, no form
    assert "there is no completion to accept" in text(client.get(url))
    written(session, lambda: change_status(session, ticket, desk, RequestStatus.RESOLVED))
    assert post(client, url, {"rating": "5"}).status_code == 200  # the link was never used


@pytest.mark.parametrize(("purpose", "data", "message"), [
    ("comment", {"body": "  "}, "Write a comment."),
    ("accept", {"rating": "", "remark": "no stars"}, "Choose 1 to 5 stars to go with your remark."),
    ("accept", {"rating": "9"}, "Choose 1 to 5 stars."),
    ("comment", {"body": "x" * 20_001}, "At most 20000 characters"),
])
def test_bad_input_is_refused_on_its_field_and_the_link_stays_unused(session, client, ticket, purpose, data,
                                                                     message):
    url = path(ticket, "mia@acme.sk", purpose)
    before = snapshot()
    answer = post(client, url, data)
    assert answer.status_code == 422 and message in text(answer)
    assert changed(before, snapshot()) == []
    assert session.query(UsedLink).count() == 0


def test_a_stale_page_token_keeps_the_text(session, client, ticket):
    url = path(ticket, "mia@acme.sk", "comment")
    answer = client.post(url, data={"csrf_token": "stale", "body": "Typed for ten minutes"})
    assert answer.status_code == 400 and "send it again" in text(answer)
    assert "Typed for ten minutes" in text(answer) and comments(session, ticket) == ["Fixed"]
    token = csrf_from(answer.get_data(as_text=True))
    assert client.post(url, data={"csrf_token": token, "body": "Typed for ten minutes"}).status_code == 200


def test_a_private_person_uses_the_link_as_the_customer(app, session, client, operator, new_customer):
    person = new_customer(kind=CustomerKind.PERSON, first_name="Pavol", last_name="Novak",
                          email="pavol@example.sk", operators=[operator])
    set_option(app, session, person, True)
    request = written(session, lambda: save_request(session, Request(customer=person, subject="Wi-Fi"),
                                                    operator))
    assert [p for p, _ in links_in(session, "pavol@example.sk")] == ["comment"]
    assert post(client, links_in(session, "pavol@example.sk")[0][1], {"body": "Works now"}).status_code == 200
    session.expire_all()
    comment = session.query(RequestComment).filter_by(request_id=request.id).one()
    assert (comment.via, comment.author_email, comment.author_name) == (Via.LINK, "pavol@example.sk",
                                                                        person.display_name)


# --- refusals ---------------------------------------------------------------------------------

def _payload(token: str) -> dict:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _encode(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def forged(ticket, purpose="comment"):
    signer = URLSafeTimedSerializer("not-our-secret", salt=f"customer-desk.link.{purpose}")
    return f"/portal/link/{purpose}/" + signer.dumps({"r": ticket.id, "e": "mia@acme.sk", "i": "abc"})


def tampered(ticket):
    token = make_token(ticket, "dana@acme.sk", "comment")
    payload = {**_payload(token), "e": "mia@acme.sk"}  # Dana's link made into the main contact's
    return "/portal/link/comment/" + ".".join([_encode(payload), *token.split(".")[1:]])


def old(ticket, monkeypatch, days=15):
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - days * DAY)
    url = path(ticket, "mia@acme.sk", "comment")
    monkeypatch.setattr(TimestampSigner, "get_timestamp", real)
    return url


REFUSALS = {
    "expired": (lambda t, mp: old(t, mp), 410, "This link has expired (links work for 14 days)"),
    "forged": (lambda t, mp: forged(t), 400, "This link is not valid"),
    "tampered": (lambda t, mp: tampered(t), 400, "This link is not valid"),
    "another purpose": (lambda t, mp: path(t, "mia@acme.sk", "comment").replace("/comment/", "/accept/"),
                        400, "it is the link to “add a comment”"),
    "unknown purpose": (lambda t, mp: path(t, "mia@acme.sk", "comment").replace("/comment/", "/delete/"),
                        400, "This link is not one of ours"),
    "garbage": (lambda t, mp: "/portal/link/comment/%00%E2%80%AEeyJ..x", 400, "This link is not valid"),
    "huge": (lambda t, mp: "/portal/link/comment/" + "a" * 5000, 400, "not one of ours"),
}


@pytest.mark.parametrize("kind", list(REFUSALS))
def test_a_bad_link_gets_a_clear_page_and_writes_nothing(session, client, ticket, monkeypatch, kind):
    make, status, words = REFUSALS[kind]
    url = make(ticket, monkeypatch)
    before = snapshot()
    for method in ("GET", "POST"):
        answer = client.open(url, method=method, data={"body": "Hello", "rating": "5"})
        assert answer.status_code == status, (method, text(answer))
        assert words in text(answer) and "Nothing was changed" in text(answer)
        assert 'href="/portal/sign-in"' in answer.get_data(as_text=True) and "Customer portal" in text(answer)
    assert changed(before, snapshot()) == []


def test_links_expire_after_mail_link_days(app, session, client, ticket, monkeypatch):
    url = old(ticket, monkeypatch, days=3)
    app.config["MAIL_LINK_DAYS"] = 2
    assert client.get(url).status_code == 410 and "links work for 2 days" in text(client.get(url))
    app.config["MAIL_LINK_DAYS"] = 4
    assert client.get(url).status_code == 200


def _used(session, client, ticket):
    url = path(ticket, "mia@acme.sk", "comment")
    assert post(client, url, {"body": "First"}).status_code == 200
    return url


def _option_off(app, session, ticket):
    set_option(app, session, ticket.customer, False)


def _email_changed(session, operator, ticket):
    from services.contacts import save_contact

    mia = contact(ticket.customer, "Mia")
    mia.email = "mia.new@acme.sk"
    written(session, lambda: save_contact(session, mia, operator, "SK"))


def _contact_deleted(session, operator, ticket):
    from services.contacts import delete_contact

    written(session, lambda: delete_contact(session, contact(ticket.customer, "Mia"), operator))


def _unassigned(session, operator, ticket):
    ticket.contacts = []  # Cyril, a plain contact, no longer sees the request
    written(session, lambda: save_request(session, ticket, operator))


def _deactivated(session, operator, ticket):
    contact(ticket.customer, "Mia").is_active = False  # as a directory import does
    written(session, lambda: session.flush())


def _request_deleted(session, operator, ticket):
    written(session, lambda: delete_request(session, ticket, operator))


LATER = {
    "option turned off": ("mia@acme.sk", lambda app, s, op, t: _option_off(app, s, t), 403,
                          "no longer work without signing in for Acme"),
    "address changed": ("mia@acme.sk", lambda app, s, op, t: _email_changed(s, op, t), 403,
                        "sent to mia@acme.sk, which is no longer among the people of Acme"),
    "contact deleted": ("mia@acme.sk", lambda app, s, op, t: _contact_deleted(s, op, t), 403,
                        "which is no longer among"),
    "contact deactivated": ("mia@acme.sk", lambda app, s, op, t: _deactivated(s, op, t), 403,
                            "which is no longer among"),
    "contact unassigned": ("cyril@acme.sk", lambda app, s, op, t: _unassigned(s, op, t), 403,
                           "which is no longer among"),
    "request deleted": ("mia@acme.sk", lambda app, s, op, t: _request_deleted(s, op, t), 404,
                        "The request this link is for no longer exists"),
}


@pytest.mark.parametrize("kind", list(LATER))
def test_a_link_whose_recipient_may_no_longer_act_is_refused(app, session, client, operator, ticket, kind):
    email, change, status, words = LATER[kind]
    url = path(ticket, email, "comment")
    page = client.get(url)
    assert page.status_code == 200
    token = csrf_from(page.get_data(as_text=True))
    change(app, session, operator, ticket)
    before = snapshot()
    assert client.get(url).status_code == status and words in text(client.get(url))
    answer = client.post(url, data={"csrf_token": token, "body": "Hello"})
    assert answer.status_code == status and words in text(answer)
    assert "sign in to the portal" in text(answer)
    assert changed(before, snapshot()) == []


def test_a_used_link_is_refused_on_get_and_post(session, client, ticket):
    url = _used(session, client, ticket)
    before = snapshot()
    for method in ("GET", "POST"):
        answer = client.open(url, method=method, data={"body": "Second"})
        assert answer.status_code == 409 and "This link has been used already" in text(answer)
        assert "Printer jams" not in text(answer)  # a used link shows nothing of the request
    assert changed(before, snapshot()) == []
    assert comments(session, ticket) == ["Fixed", "First"]


def test_the_link_pages_are_rate_limited_per_address(app, client, ticket):
    app.config.update(RATELIMIT_ENABLED=True, MAIL_LINK_RATE_LIMIT="3 per minute")
    url = path(ticket, "mia@acme.sk", "comment")
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
    over = client.get(url)
    assert over.status_code == 429 and over.headers["Retry-After"] == "60"
    assert "Too many link pages" in text(over) and "Customer portal" in text(over)
    assert client.get(forged(ticket)).status_code == 429  # bad links count too


HOSTILE = ["\x00", "a\x00b", "\x01\x02\x1f\x7f", "\u202e\u200fעברית", "😀🔥" * 20, "x" * 5000, "NaN", "1e400",
           "-2147483649", "9223372036854775808", "<script>alert(1)</script>", "'; DROP TABLE customer;--"]


@pytest.mark.parametrize("purpose", ["comment", "accept"])
def test_hostile_values_through_a_valid_link_get_a_page_never_a_500(session, client, ticket, purpose):
    """The fuzzing tier (tests/test_fuzz_panel.py) reaches these pages only with hostile tokens;
    here the hostile values come through a valid link, so they reach the discussion's rules."""
    for value in HOSTILE:
        url = path(ticket, "mia@acme.sk", purpose)
        data = {"body": value} if purpose == "comment" else {"rating": value, "remark": value}
        answer = post(client, url, data)
        assert answer.status_code in (200, 422), (value, text(answer)[:300])
        assert "<script>alert(1)</script>" not in answer.get_data(as_text=True)
        if answer.status_code == 200:
            assert purpose == "comment"  # no such value is a rating
            assert comments(session, ticket)[-1] == value
