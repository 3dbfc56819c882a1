"""Fixtures of requests by e-mail: a real Dovecot per test module whose maildir the tests fill
(testing/pop3_mailbox.py), set up as the built-in intake mailbox, and a few customers with
requests by e-mail on. Import the fixtures into a test module by name."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from extensions import db
from models import GlobalSettings, IncomingMail, Request
from models.enums import CustomerKind, MailSecurity, UnknownSenders
from services.customer_settings import save_customer_settings
from services.pop3_reader import MailboxReport, ReadRules, fetch_all
from testing.mail_servers import DovecotPop3, MailServerUnavailable
from testing.pop3_mailbox import INTAKE, Maildir
from tests.conftest import started, written

USER = "intake"
PASSWORD = "Intake-p0p3-secret"
DOMAIN = "desk.example"


@pytest.fixture(scope="module")
def intake_server(certificate):
    server = started(lambda: DovecotPop3(certificate, USER, PASSWORD, messages=0).start(),
                     MailServerUnavailable, "POP3 (Dovecot)")
    yield server
    server.stop()


@pytest.fixture
def mailbox(intake_server):
    maildir = Maildir(intake_server)
    maildir.clear()
    yield maildir
    maildir.clear()


@dataclass
class Intake:
    app: object
    server: DovecotPop3

    def fetch(self, **kw) -> list[MailboxReport]:
        return fetch_all(db.session, self.app.extensions["secret_box"], ReadRules.of(self.app.config), **kw)

    def unknown_senders(self, policy: UnknownSenders) -> None:
        def change():
            db.session.get(GlobalSettings, 1).unknown_senders = policy
        written(db.session, change)


def point_builtin_at(session, box, server: DovecotPop3, password: str = PASSWORD) -> None:
    def change():
        settings = session.get(GlobalSettings, 1)
        settings.pop3_host, settings.pop3_port, settings.pop3_security = "127.0.0.1", server.pop3s_port, \
            MailSecurity.SSL
        settings.pop3_username, settings.pop3_address = USER, INTAKE
        settings.pop3_password_encrypted = box.encrypt(password)
    written(session, change)


@pytest.fixture
def intake(app, session, intake_server, mailbox, certificate):
    app.config.update(MAIL_CA_FILE=certificate.cafile, MAIL_POP3_TIMEOUT=5, MAIL_DOMAIN=DOMAIN,
                      MAIL_OWN_SERVER_REACH="any", MAIL_SMTP_TIMEOUT=1)
    point_builtin_at(session, app.extensions["secret_box"], intake_server)
    return Intake(app, intake_server)


def enable(session, app, customer, **values) -> None:
    values = {"requests_by_email_enabled": True, "request_intake_address": INTAKE, **values}
    written(session, lambda: save_customer_settings(session, customer, None, app.extensions["secret_box"],
                                                    values))


@pytest.fixture
def acme(app, session, new_customer, operator):
    """A company with a main contact and a contact, assigned to `operator`, requests by e-mail on."""
    company = new_customer(kind=CustomerKind.COMPANY, company_name="Acme", operators=[operator], contacts=[
        {"first_name": "Mia", "last_name": "Main", "email": "mia@acme.example", "is_main": True},
        {"first_name": "Cyril", "last_name": "Contact", "email": "Cyril@Acme.example"}])
    enable(session, app, company)
    return company


@pytest.fixture
def pat(app, session, new_customer, operator):
    """A private person with two addresses, requests by e-mail on."""
    person = new_customer(kind=CustomerKind.PERSON, first_name="Pat", last_name="Person",
                          operators=[operator],
                          email="pat@home.example", secondary_email="pat.work@job.example")
    enable(session, app, person)
    return person


def requests_of(session, customer) -> list[Request]:
    session.expire_all()
    return list(session.scalars(select(Request).where(Request.customer_id == customer.id)
                                .order_by(Request.id)))


def incoming(session) -> list[IncomingMail]:
    session.expire_all()
    return list(session.scalars(select(IncomingMail).order_by(IncomingMail.id)))


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))
