"""Small pieces the attacks on issue 17 (tests/test_attacks_issue17.py) share: a company with a
main contact and two plain ones, a request "Completed" with the links option on, the paths of the
signed links a copy carries, and the copies a test's session sees."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from email.utils import make_msgid
from types import SimpleNamespace

from models import OutgoingMail, Request, RequestComment
from models.enums import CustomerKind, MailState, RequestStatus
from services.customer_settings import save_customer_settings
from services.discussion import Author, change_status
from services.merge import merge_customers
from services.requests import save_request
from services.transactions import unit_of_work
from tests.conftest import csrf_from, make_app, written
from tests.job_fixtures import real_queue_config
from tests.served_app import page_text

DOMAIN = "desk.example"

LINK = re.compile(r"https?://[^/\s]+(/portal/link/(comment|accept|rate)/[\w.\-]+)")


def company_of(new_customer, operator, name: str, domain: str):
    """A company with Mia (main contact), Cyril and Dana (plain contacts) at `domain`."""
    return new_customer(kind=CustomerKind.COMPANY, company_name=name, operators=[operator], contacts=[
        {"first_name": "Mia", "last_name": "Main", "email": f"mia@{domain}", "is_main": True},
        {"first_name": "Cyril", "last_name": "Contact", "email": f"cyril@{domain}"},
        {"first_name": "Dana", "last_name": "Other", "email": f"dana@{domain}"}])


def contact(customer, first: str):
    return next(c for c in customer.contacts if c.first_name == first)


def set_links_option(app, session, customer, on: bool = True) -> None:
    box = app.extensions["secret_box"]
    written(session, lambda: save_customer_settings(session, customer, None, box,
                                                    {"unauthenticated_discussion_enabled": on}))


def desk_request(session, operator, customer, subject="Printer jams", contacts=()) -> Request:
    new = Request(customer=customer, subject=subject, contacts=list(contacts))
    return written(session, lambda: save_request(session, new, operator))


def completed(session, operator, request, comment="Fixed") -> Request:
    desk = Author.of_operator(operator)
    written(session, lambda: change_status(session, request, desk, RequestStatus.RESOLVED, comment=comment))
    return request


def copies(session, **where) -> list[OutgoingMail]:
    """The copies as committed (the job's own session wrote their state), oldest first."""
    session.expire_all()
    return list(session.query(OutgoingMail).filter_by(**where).order_by(OutgoingMail.id))


def recipients(session, **where) -> list[str]:
    return sorted(m.recipient_email for m in copies(session, **where))


def links_in(mail: OutgoingMail) -> dict[str, str]:
    """purpose → path of the signed links a copy carries."""
    return {m.group(2): m.group(1) for m in LINK.finditer(mail.body)}


def comments(session, request) -> list[str]:
    session.expire_all()
    return [c.body for c in session.query(RequestComment).filter_by(request_id=request.id).order_by("id")]


def text(response) -> str:
    return page_text(response.get_data(as_text=True))


def post_link(client, url: str, data: dict):
    """A link's form sent as a browser sends it: the page first, then the POST with its token."""
    page = client.get(url)
    assert page.status_code == 200, text(page)
    return client.post(url, data={"csrf_token": csrf_from(page.get_data(as_text=True)), **data})


def merged(app, session, maintainer, survivor, other) -> None:
    """`other` merged into `survivor` by a maintainer, as proposed (no conflicts to decide)."""
    box = app.extensions["secret_box"]
    written(session, lambda: merge_customers(session, maintainer, survivor, other, box, choices={},
                                             decisions={}))


def stored_copy(session, customer, **fields) -> OutgoingMail:
    """A queued copy written as a script would (no job): the test makes its attempts."""
    values = {"recipient_name": "Mia Main", "recipient_email": "mia@acme.sk", "why": "main contact",
              "subject": "[CD-1] Hello", "body": "Hello.", "state": MailState.QUEUED, **fields}
    mail = OutgoingMail(customer_id=customer.id, message_id=make_msgid("cd", domain=DOMAIN), **values)
    with unit_of_work(session):
        session.add(mail)
    return mail


class WorkerDied(BaseException):
    """The process ends here (a BaseException: nothing on the way catches it)."""


_queued_apps: dict[str, object] = {}


def queued_app_for(database_url: str, folder_factory):
    """An app of its own per database whose jobs wait on a real queue for a worker (made once)."""
    if database_url not in _queued_apps:
        folder = folder_factory.mktemp("attack-queue")
        _queued_apps[database_url] = make_app(database_url, **real_queue_config(folder, database_url),
                                              MAIL_SMTP_TIMEOUT=10.0, MAIL_OWN_SERVER_REACH="any")
    return _queued_apps[database_url]


def access_lines(logger) -> list[str]:
    """gunicorn's access lines for a link's page and for the stylesheet that page loads."""
    lines: list[str] = []
    keep = logging.Handler()
    keep.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger.access_log.addHandler(keep)
    token = "eyJyIjoxLCJlIjoibWlhQGFjbWUuc2siLCJpIjoieCJ9.aBcDeF.secret-signature-part"
    path = f"/portal/link/accept/{token}"
    for uri, referer in ((path, "-"), ("/static/portal.css", f"https://desk.example{path}")):
        environ = {"REQUEST_METHOD": "GET", "RAW_URI": uri, "PATH_INFO": uri, "QUERY_STRING": "",
                   "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "203.0.113.9", "HTTP_REFERER": referer}
        answer = SimpleNamespace(status="200 OK", headers=[], sent=100)
        logger.access(answer, SimpleNamespace(headers=[("REFERER", referer)]), environ,
                      timedelta(seconds=0.01))
    return lines
