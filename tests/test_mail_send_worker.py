"""Copies sent by a real job worker (Huey's consumer, tests/job_fixtures.py) on a real queue, to a
real aiosmtpd server: the save only queues, the worker sends, and a failed attempt puts itself
back on the queue and is sent when the server takes it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from extensions import db
from models import OutgoingMail, Request
from models.enums import CustomerKind, MailSecurity, MailState
from services.customers import SaveOptions, create_customer
from services.operators import create_operator
from services.requests import save_request
from services.transactions import unit_of_work
from testing.mail_servers import MailServerUnavailable
from testing.smtp_capture import CapturingSmtp
from tests.conftest import PASSWORD as OPERATOR_PASSWORD
from tests.conftest import fresh_app, make_app, started
from tests.job_fixtures import drain, real_queue_config, wait_for, worker_in_thread
from tests.mail_fixtures import PASSWORD, USER
from tests.test_mail_send import builtin_servers, spec

_apps: dict[str, object] = {}


@pytest.fixture(scope="module")
def server(certificate):
    running = started(lambda: CapturingSmtp(MailSecurity.STARTTLS, certificate, USER, PASSWORD).start(),
                      MailServerUnavailable, "SMTP (aiosmtpd)")
    yield running
    running.stop()


@pytest.fixture
def queued_app(database_url, tmp_path_factory, certificate, server):
    """The app on empty tables whose jobs wait on a real queue for a worker."""
    with fresh_app(database_url):
        pass
    if database_url not in _apps:
        folder = tmp_path_factory.mktemp("mail-queue")
        _apps[database_url] = make_app(database_url, **real_queue_config(folder, database_url),
                                       MAIL_SMTP_TIMEOUT=1.0, MAIL_CA_FILE=certificate.cafile,
                                       MAIL_RETRY_SECONDS=1, MAIL_SEND_ATTEMPTS=3)
    app = _apps[database_url]
    drain(app)
    server.reset()
    with app.app_context():
        yield app
        db.session.remove()


def the_copy() -> OutgoingMail:
    db.session.rollback()  # a fresh look at what the worker committed
    return db.session.scalars(select(OutgoingMail)).one()


def test_the_worker_sends_and_retries_a_copy_the_server_first_puts_off(queued_app, server):
    session = db.session
    with unit_of_work(session):
        operator = create_operator(session, email="olga@example.com", password=OPERATOR_PASSWORD,
                                   first_name="Olga", last_name="Operator")
        acme = create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.COMPANY,
                               company_name="Acme", operators=[operator], confirm_duplicate=True, contacts=[
                                   {"first_name": "Mia", "last_name": "Main", "email": "mia@acme.sk",
                                    "is_main": True}])
    builtin_servers(session, queued_app.extensions["secret_box"], spec(server))
    server.refuse_data = "451 4.3.0 Try again later"
    with unit_of_work(session):
        save_request(session, Request(customer=acme, subject="Printer"), operator)
    # Saved and committed with no worker running: the save queued the copy and waited for nothing.
    mail = the_copy()
    assert (mail.state, mail.attempts) == (MailState.QUEUED, 0)

    with worker_in_thread(queued_app):
        wait_for(lambda: the_copy().last_error, timeout=20, what="the first attempt's end")
        mail = the_copy()
        assert (mail.state, mail.attempts, server.captured) == (MailState.QUEUED, 1, [])
        assert "did not take the message for now (SMTP 451)" in mail.last_error
        server.refuse_data = None  # the server takes mail again; the retry is due a second later
        wait_for(lambda: the_copy().state == MailState.SENT, timeout=20, what="the retry")
    mail = the_copy()
    assert mail.attempts == 2 and mail.last_error is None
    [captured] = server.captured
    assert captured.recipients == ("mia@acme.sk",) and captured.message["Message-ID"] == mail.message_id
