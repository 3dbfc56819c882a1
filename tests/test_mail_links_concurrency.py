"""A signed link works once even when it is sent twice at the same moment (issue 17, item 4).

Two real browsers (tests/served_app.py: a threaded werkzeug server, each request with its own
application context, database session and transaction, as in production) open the same link and
send its form at once, released together by a barrier — on SQLite and on PostgreSQL. Exactly one
comment or acceptance is written; the other browser is told the link has been used already, and
nobody sees an error. Two different people accepting the same request at once: one acceptance,
the other is told it is accepted already and keeps an unused link.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from models import Request, RequestComment, RequestStatusChange, UsedLink
from models.enums import CustomerKind, RequestStatus
from services.discussion import Author, change_status
from services.mail_links import make_token
from services.requests import save_request
from tests.conftest import CSRF_INPUT, written
from tests.served_app import WebClient, page_text, served
from tests.test_mail_links import set_option

ROUNDS = 3


@pytest.fixture
def ticket(app, session, operator, new_customer):
    company = new_customer(kind=CustomerKind.COMPANY, company_name="Acme", operators=[operator], contacts=[
        {"first_name": "Mia", "last_name": "Main", "email": "mia@acme.sk", "is_main": True},
        {"first_name": "Cyril", "last_name": "Contact", "email": "cyril@acme.sk"}])
    set_option(app, session, company, True)
    cyril = next(c for c in company.contacts if c.first_name == "Cyril")
    request = written(session, lambda: save_request(session, Request(customer=company, subject="Printer",
                                                                     contacts=[cyril]), operator))
    written(session, lambda: change_status(session, request, Author.of_operator(operator),
                                           RequestStatus.RESOLVED, comment="Fixed"))
    return request


def at_once(base: str, posts: list[tuple[str, dict]]) -> list[tuple[int, str]]:
    """Each (path, form) by a browser of its own: all open their page first, then all send at the
    same moment. (status, page text) of each, in order."""
    browsers = [WebClient(base) for _ in posts]
    tokens = []
    for browser, (url, _data) in zip(browsers, posts, strict=True):
        page = browser.get(url)
        assert page.status_code == 200, page_text(page.text)
        match = CSRF_INPUT.search(page.text)
        assert match
        tokens.append(match.group(1))
    start = threading.Barrier(len(posts))

    def send(i: int) -> tuple[int, str]:
        url, data = posts[i]
        start.wait(timeout=30)
        answer = browsers[i].post(url, data={"csrf_token": tokens[i], **data})
        return answer.status_code, page_text(answer.text)

    try:
        with ThreadPoolExecutor(len(posts)) as pool:
            return list(pool.map(send, range(len(posts))))
    finally:
        for browser in browsers:
            browser.close()


def test_one_comment_link_sent_twice_at_once_adds_one_comment(app, session, ticket):
    with served(app) as server:
        mark = server.log.mark()
        for n in range(ROUNDS):
            url = f"/portal/link/comment/{make_token(ticket, 'mia@acme.sk', 'comment')}"
            answers = at_once(server.url, [(url, {"body": f"Round {n}"})] * 2)
            assert sorted(status for status, _ in answers) == [200, 409], answers
            lost = next(words for status, words in answers if status == 409)
            assert "This link has been used already" in lost
        assert server.log.since(mark) == []
    session.expire_all()
    bodies = [c.body for c in session.query(RequestComment).filter_by(request_id=ticket.id)]
    assert sorted(bodies) == ["Fixed", *(f"Round {n}" for n in range(ROUNDS))]
    assert session.query(UsedLink).count() == ROUNDS


def test_one_accept_link_sent_twice_at_once_accepts_once(app, session, ticket):
    url = f"/portal/link/accept/{make_token(ticket, 'mia@acme.sk', 'accept')}"
    with served(app) as server:
        answers = at_once(server.url, [(url, {"rating": "5"}), (url, {"rating": "2"})])
        assert server.log.since(0) == []
    assert sorted(status for status, _ in answers) == [200, 409], answers
    session.expire_all()
    request = session.get(Request, ticket.id)
    accepted = session.query(RequestStatusChange).filter_by(request_id=ticket.id,
                                                            new_status=RequestStatus.CLOSED).all()
    assert request.status == RequestStatus.CLOSED and len(accepted) == 1
    winner = next(n for n, (status, _) in enumerate(answers) if status == 200)
    assert request.rating == (5, 2)[winner]


def test_two_people_accepting_at_once_make_one_acceptance(app, session, ticket):
    mia = f"/portal/link/accept/{make_token(ticket, 'mia@acme.sk', 'accept')}"
    cyril = f"/portal/link/accept/{make_token(ticket, 'cyril@acme.sk', 'accept')}"
    with served(app) as server:
        answers = at_once(server.url, [(mia, {"rating": "5"}), (cyril, {"rating": "3"})])
        assert server.log.since(0) == []
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200, 422], answers
    refused = next(words for status, words in answers if status == 422)
    # Told why in the words of the status flow: the request was read afresh, under a lock.
    assert "The request is Accepted already." in refused and "Somebody else changed" not in refused
    session.expire_all()
    accepted = session.query(RequestStatusChange).filter_by(request_id=ticket.id,
                                                            new_status=RequestStatus.CLOSED).count()
    assert accepted == 1 and session.query(UsedLink).count() == 1  # the refused link stays unused
