"""Copies of request communication really go out (services.mail_send): through real aiosmtpd
servers that keep what they receive (testing/smtp_capture.py), on both databases.

Jobs run at once in the saving thread here (JOB_QUEUE_IMMEDIATE): a save's copies are attempted
right after its commit, and a retry waits in Huey's memory schedule without running — a test
makes "later" happen by calling the attempt with `now` at the retry's time, or the minute's
sweep. Timeouts are 1 s, so a server that never answers costs a second, not half a minute.
"""

from __future__ import annotations

import base64
import logging
import threading
from datetime import timedelta
from email.utils import make_msgid

import pytest
from sqlalchemy import select

from jobs.mail import sweep_queued_mail
from jobs.queue import queue_of
from models import GlobalSettings, OutgoingMail, Request
from models.base import utcnow
from models.enums import CustomerKind, MailSecurity, MailState
from services.customer_settings import save_customer_settings
from services.discussion import Author, add_comment
from services.mail_send import send_queued
from services.requests import save_request
from services.transactions import unit_of_work
from testing.mail_servers import MailServerUnavailable
from testing.postgres import free_port
from testing.smtp_capture import Captured, CapturingSmtp
from tests.conftest import contact, started, written
from tests.mail_fixtures import PASSWORD, USER

HOST = "127.0.0.1"
WRONG = "Wr0ng-smtp-secret"
DOMAIN = "desk.example"
DESK = "desk@desk.example"  # the built-in mailbox's address
INTAKE = "requests@acme.example"  # Acme's own intake address
STARTTLS, SSL, NONE = MailSecurity.STARTTLS, MailSecurity.SSL, MailSecurity.NONE


@pytest.fixture(scope="module")
def servers(certificate):
    running: dict[MailSecurity, CapturingSmtp] = {}
    for security in (STARTTLS, SSL, NONE):
        running[security] = started(lambda s=security: CapturingSmtp(s, certificate, USER, PASSWORD).start(),
                                    MailServerUnavailable, "SMTP (aiosmtpd)")
    yield running
    for server in running.values():
        server.stop()


@pytest.fixture(autouse=True)
def mail_app(app, servers, certificate):
    app.config.update(MAIL_SMTP_TIMEOUT=1.0, MAIL_CA_FILE=certificate.cafile, MAIL_SEND_ATTEMPTS=3,
                      MAIL_RETRY_SECONDS=60, MAIL_DOMAIN=DOMAIN, MAIL_FROM_ADDRESS="",
                      MAIL_OWN_SERVER_REACH="any")
    queue_of(app).flush()
    for server in servers.values():
        server.reset()
    return app


@pytest.fixture
def box(app):
    return app.extensions["secret_box"]


def spec(server: CapturingSmtp | None = None, *, port: int = 0, security: MailSecurity = NONE,
         password: str = PASSWORD) -> dict:
    """A server's settings: one of ours, or a bare port (closed, silent) with a security."""
    if server is not None:
        port, security = server.port, server.security
    return {"host": HOST, "port": port, "security": security, "username": USER, "password": password}


def builtin_servers(session, box, primary: dict | None, fallback: dict | None = None) -> None:
    row = session.get(GlobalSettings, 1)
    for role, server in (("primary", primary), ("fallback", fallback)):
        server = server or {}
        for part in ("host", "port", "security", "username"):
            setattr(row, f"smtp_{role}_{part}", server.get(part))
        setattr(row, f"smtp_{role}_password_encrypted", box.encrypt(server.get("password")))
    row.pop3_address = DESK
    session.commit()


def own_servers(session, box, customer, primary: dict, fallback: dict | None = None) -> None:
    values = {"use_builtin_mail_servers": False, "pop3_host": "pop.acme.example", "pop3_address": INTAKE,
              "requests_by_email_enabled": True, "request_intake_address": INTAKE}
    for role, server in (("primary", primary), ("fallback", fallback)):
        for part, value in (server or {}).items():
            values[f"smtp_{role}_{part}"] = value.value if isinstance(value, MailSecurity) else value
    written(session, lambda: save_customer_settings(session, customer, None, box, values))


def raise_request(session, operator, customer, subject="Printer", contacts=()):
    return written(session, lambda: save_request(session, Request(customer=customer, subject=subject,
                                                                  contacts=list(contacts)), operator))


def mail_rows(session, request=None) -> list[OutgoingMail]:
    session.expire_all()  # what the job's own session committed
    query = select(OutgoingMail).order_by(OutgoingMail.recipient_email, OutgoingMail.id)
    if request is not None:
        query = query.where(OutgoingMail.request_id == request.id)
    return list(session.scalars(query))


def to(server: CapturingSmtp, address: str) -> Captured:
    [found] = [m for m in server.captured if m.recipients == (address,)]
    return found


def waited(row: OutgoingMail) -> int:
    """Seconds from an attempt's start to the next attempt (counted from the attempt's end)."""
    assert row.next_attempt_at is not None and row.last_attempt_at is not None
    return int((row.next_attempt_at - row.last_attempt_at).total_seconds())


def retries_on_queue(app, mail_id: int) -> list:
    return [task for task in queue_of(app).scheduled() if task.args == (mail_id,)]


# --- who gets a copy, and what it looks like ------------------------------------------------------

def test_copies_reach_the_seeds_recipients_with_headers_that_lead_replies_back(session, box, operator,
                                                                               company, servers):
    server = servers[STARTTLS]
    builtin_servers(session, box, spec(server))
    cyril = contact(company, "Cyril")
    request = raise_request(session, operator, company, contacts=[cyril])
    # The main contact (all the company's requests) and the contact assigned to it; not Dana.
    assert sorted(m.recipients for m in server.captured) == [("cyril@acme.sk",), ("mia@acme.sk",)]
    to_mia = to(server, "mia@acme.sk")
    message = to_mia.message
    assert message["To"] == "Mia Main <mia@acme.sk>"
    assert message["From"] == f"Customer Desk <{DESK}>" and to_mia.sender == DESK
    assert message["Reply-To"] == f"Customer Desk <{DESK}>"  # the mailbox the desk reads
    assert message["Subject"] == f"[CD-{request.id}] Printer — new request"
    assert message["References"] == f"<cd-request-{request.id}@{DOMAIN}>"
    assert message["Auto-Submitted"] == "auto-generated" and message["Date"]
    assert "A new request" in message.get_content() and "main contact of Acme" in message.get_content()
    rows = mail_rows(session, request)
    assert [(r.recipient_email, r.state, r.attempts) for r in rows] == [
        ("cyril@acme.sk", MailState.SENT, 1), ("mia@acme.sk", MailState.SENT, 1)]
    assert message["Message-ID"] == rows[1].message_id
    assert rows[1].sent_via == f"primary {HOST}:{server.port}" and rows[1].last_error is None

    server.reset()
    raise_request(session, operator, company, subject="VPN")  # assigned to nobody: the main contact only
    assert [m.recipients for m in server.captured] == [("mia@acme.sk",)]

    server.reset()
    written(session, lambda: add_comment(session, request, Author.of_operator(operator), "Toner ordered."))
    assert sorted(m.recipients for m in server.captured) == [("cyril@acme.sk",), ("mia@acme.sk",)]
    reply = to(server, "cyril@acme.sk").message
    assert "Toner ordered." in reply.get_content() and reply["References"] == message["References"]


def test_a_private_person_gets_copies_at_their_own_address(session, box, operator, new_customer, servers):
    server = servers[SSL]
    builtin_servers(session, box, spec(server))
    petra = new_customer(kind=CustomerKind.PERSON, first_name="Petra", last_name="Horváthová",
                         email="petra@home.sk", operators=[operator])
    request = raise_request(session, operator, petra, subject="Wi-Fi")
    [mail] = server.captured
    assert mail.recipients == ("petra@home.sk",)
    [address] = mail.message["To"].addresses
    assert (address.display_name, address.addr_spec) == ("Horváthová, Petra", "petra@home.sk")
    assert mail_rows(session, request)[0].sent_via == f"primary {HOST}:{server.port}"


def test_a_customer_with_its_own_servers_sends_through_them_from_its_intake_address(
        session, box, operator, company, new_customer, servers, app):
    builtin_servers(session, box, spec(servers[STARTTLS]))
    own_servers(session, box, company, spec(servers[NONE]))
    beta = new_customer(kind=CustomerKind.COMPANY, company_name="Beta", operators=[operator])
    raise_request(session, operator, company)
    raise_request(session, operator, beta)
    [acme_copy] = servers[NONE].captured
    assert acme_copy.recipients == ("mia@acme.sk",)
    assert acme_copy.message["From"] == f"Customer Desk <{INTAKE}>" and acme_copy.sender == INTAKE
    assert acme_copy.message["Reply-To"] == f"Customer Desk <{INTAKE}>"
    [beta_copy] = servers[STARTTLS].captured  # Beta uses the built-in servers
    assert beta_copy.recipients == ("main.contact.beta@example.com",) and beta_copy.sender == DESK

    servers[NONE].reset()
    app.config["MAIL_FROM_ADDRESS"] = "Acme Help <help@desk.example>"
    raise_request(session, operator, company, subject="Scanner")
    [mail] = servers[NONE].captured
    assert mail.message["From"] == "Acme Help <help@desk.example>" and mail.sender == "help@desk.example"
    assert mail.message["Reply-To"] == f"Acme Help <{INTAKE}>"  # replies still reach the intake


def test_a_customers_own_server_inside_the_desks_machine_is_not_used_by_default(session, box, operator,
                                                                                company, servers, app):
    app.config["MAIL_OWN_SERVER_REACH"] = "limited"  # the default: typed by any operator
    own_servers(session, box, company, spec(servers[NONE]))
    request = raise_request(session, operator, company)
    [row] = mail_rows(session, request)
    assert not servers[NONE].captured
    assert row.state == MailState.QUEUED and row.last_error == (
        f"Not sent yet (attempt 1 of 3): primary {HOST}:{servers[NONE].port} is not a place the desk sends "
        "mail through (only the SMTP ports 25, 465, 587 and 2525 on hosts outside the desk's own machine "
        "and link).")


# --- failures: the fallback, retries, giving up ---------------------------------------------------

def failing_primary(kind: str, servers, silent_port, app) -> tuple[dict, str]:
    """(the primary's settings, the words its failure is logged with)."""
    if kind == "closed port":
        port = free_port()
        return spec(port=port, security=STARTTLS), f"primary {HOST}:{port} refused the connection"
    if kind == "no answer":
        return spec(port=silent_port, security=NONE), \
            f"primary {HOST}:{silent_port} did not answer within 1 s"
    if kind == "wrong password":
        return spec(servers[STARTTLS], password=WRONG), f"primary {HOST}:{servers[STARTTLS].port} refused " \
                                                          f"the sign-in as {USER}"
    app.config["MAIL_CA_FILE"] = None  # the self-signed certificate is not trusted any more
    return spec(servers[SSL]), f"the certificate of primary {HOST}:{servers[SSL].port} is not trusted"


@pytest.mark.parametrize("kind", ["closed port", "no answer", "wrong password", "untrusted certificate"])
def test_the_fallback_sends_when_the_primary_fails(session, box, operator, company, servers, silent_port, app,
                                                   caplog, kind):
    caplog.set_level(logging.INFO, logger="services.mail_send")
    primary, words = failing_primary(kind, servers, silent_port, app)
    builtin_servers(session, box, primary, spec(servers[NONE]))
    request = raise_request(session, operator, company)
    [row] = mail_rows(session, request)
    assert [m.recipients for m in servers[NONE].captured] == [("mia@acme.sk",)]
    assert not servers[STARTTLS].captured and not servers[SSL].captured
    assert (row.state, row.attempts, row.last_error) == (MailState.SENT, 1, None)
    assert row.sent_via == f"fallback {HOST}:{servers[NONE].port}"
    assert words in caplog.text
    assert PASSWORD not in caplog.text and WRONG not in caplog.text


def test_a_failed_attempt_is_retried_later_with_a_growing_delay_then_given_up(session, box, operator,
                                                                              company, app):
    closed = free_port()
    builtin_servers(session, box, spec(port=closed, security=STARTTLS))
    request = raise_request(session, operator, company)
    [row] = mail_rows(session, request)
    words = (f"primary {HOST}:{closed} refused the connection or closed it (check the host, the port and "
             "the security setting).")
    assert (row.state, row.attempts) == (MailState.QUEUED, 1)
    assert row.last_error == f"Not sent yet (attempt 1 of 3): {words}"
    assert waited(row) == 60
    [retry] = retries_on_queue(app, row.id)  # the job put itself back on the queue for then
    assert abs((retry.eta - row.next_attempt_at).total_seconds()) < 5

    assert send_queued(row.id) is None  # not due yet: nothing happens
    assert mail_rows(session, request)[0].attempts == 1

    assert send_queued(row.id, now=row.next_attempt_at) == 120  # the second waits twice as long
    [row] = mail_rows(session, request)
    assert (row.state, row.attempts) == (MailState.QUEUED, 2)
    assert waited(row) == 120
    assert row.last_error == f"Not sent yet (attempt 2 of 3): {words}"

    assert send_queued(row.id, now=row.next_attempt_at) is None
    [row] = mail_rows(session, request)
    assert (row.state, row.attempts, row.next_attempt_at) == (MailState.FAILED, 3, None)
    assert row.last_error == f"Not sent after 3 attempts: {words}"


def test_a_temporary_refusal_is_retried_and_the_copy_goes_out_once_the_server_takes_it(session, box, operator,
                                                                                      company, servers):
    server = servers[STARTTLS]
    builtin_servers(session, box, spec(server))
    server.refuse_data = "451 4.3.0 Mailbox busy, try again later"
    request = raise_request(session, operator, company)
    [row] = mail_rows(session, request)
    assert row.state == MailState.QUEUED and row.last_error == (
        f"Not sent yet (attempt 1 of 3): primary {HOST}:{server.port} did not take the message for now "
        "(SMTP 451).")
    assert "Mailbox busy" not in row.last_error  # the server's words stay with the server
    server.refuse_data = None
    send_queued(row.id, now=row.next_attempt_at)
    [row] = mail_rows(session, request)
    assert (row.state, row.attempts, row.last_error) == (MailState.SENT, 2, None)
    assert [m.recipients for m in server.captured] == [("mia@acme.sk",)]


def test_a_permanent_refusal_fails_the_copy_at_once(session, box, operator, company, servers, app):
    builtin_servers(session, box, spec(servers[STARTTLS]), spec(servers[NONE]))
    servers[STARTTLS].refuse_recipients = "550 5.1.1 No such user here"
    request = raise_request(session, operator, company)
    [row] = mail_rows(session, request)
    assert (row.state, row.attempts, row.next_attempt_at) == (MailState.FAILED, 1, None)
    assert row.last_error == (f"Not sent: primary {HOST}:{servers[STARTTLS].port} refused the recipient "
                              "mia@acme.sk for good (SMTP 550).")
    assert not servers[NONE].captured and not retries_on_queue(app, row.id)


def test_without_any_smtp_server_a_copy_fails_at_once_with_plain_words(session, box, operator, company, app):
    builtin_servers(session, box, None)
    request = raise_request(session, operator, company)
    [row] = mail_rows(session, request)
    assert (row.state, row.attempts) == (MailState.FAILED, 1)
    assert row.last_error == ("Not sent: no SMTP server is configured for this customer's mail (set the "
                              "built-in servers in the global settings).")
    assert not retries_on_queue(app, row.id)
    send_queued(row.id)  # a failed copy stays failed (resend makes a new one)
    assert mail_rows(session, request)[0].attempts == 1


# --- never the save's problem -----------------------------------------------------------------------

def test_an_unreachable_mail_server_never_fails_the_operators_save(session, box, operator, operator_client,
                                                                   company, silent_port):
    closed = free_port()
    builtin_servers(session, box, spec(port=silent_port, security=NONE), spec(port=closed, security=SSL))
    response = operator_client.submit(f"/admin/requests/new/?customer={company.id}", {
        "customer": str(company.id), "subject": "Printer jam", "status": "new"})
    assert response.status_code == 302
    request = session.scalars(select(Request)).one()
    [row] = mail_rows(session, request)
    assert row.state == MailState.QUEUED and row.next_attempt_at > utcnow()
    assert row.last_error == (f"Not sent yet (attempt 1 of 3): primary {HOST}:{silent_port} did not answer "
                              f"within 1 s; fallback {HOST}:{closed} refused the connection or closed it "
                              "(check the host, the port and the security setting).")
    comment = written(session, lambda: add_comment(session, request, Author.of_operator(operator), "On it"))
    assert comment.id and len(mail_rows(session, request)) == 2


# --- what a message can carry -----------------------------------------------------------------------

def stored_copy(session, customer, request=None, **fields) -> OutgoingMail:
    values = {"recipient_name": "Mia Main", "recipient_email": "mia@acme.sk", "why": "main contact",
              "subject": "[CD-1] Hello", "body": "Hello.", "state": MailState.QUEUED, **fields}
    mail = OutgoingMail(customer_id=customer.id, request=request, message_id=make_msgid("cd", domain=DOMAIN),
                        **values)
    with unit_of_work(session):
        session.add(mail)  # written as a script would: no job, the test sends it
    return mail


def test_line_breaks_in_names_and_subjects_cannot_add_headers_or_recipients(session, box, company, servers):
    server = servers[STARTTLS]
    builtin_servers(session, box, spec(server))
    injected = stored_copy(session, company, recipient_name="Eve\r\nBcc: victim@evil.example",
                           subject="Hi\r\nBcc: victim@evil.example\r\n\r\nA body of my own")
    quoted = stored_copy(session, company,
                         recipient_name='Eve "x" <victim@evil.example>, victim2@evil.example')
    bad_address = stored_copy(session, company, recipient_email="mia@acme.sk\r\nBcc: victim@evil.example")
    for mail in (injected, quoted, bad_address):
        send_queued(mail.id)
    first, second = server.captured
    assert first.recipients == second.recipients == ("mia@acme.sk",)
    assert "Bcc" not in first.headers and first.headers.count("To") == 1
    assert first.message["Subject"] == "Hi Bcc: victim@evil.example A body of my own"
    assert [(a.display_name, a.addr_spec) for a in first.message["To"].addresses] == [
        ("Eve Bcc: victim@evil.example", "mia@acme.sk")]
    assert [(a.display_name, a.addr_spec) for a in second.message["To"].addresses] == [
        ('Eve "x" <victim@evil.example>, victim2@evil.example', "mia@acme.sk")]
    session.expire_all()
    assert (bad_address.state, bad_address.last_error) == (
        MailState.FAILED, "Not sent: the recipient's address 'mia@acme.sk Bcc: victim@evil.example' is no "
                          "e-mail address.")


def test_the_server_password_is_never_logged_or_stored_in_clear(session, box, operator, company, servers,
                                                               caplog):
    caplog.set_level(logging.DEBUG)
    builtin_servers(session, box, spec(servers[STARTTLS], password=WRONG), spec(servers[SSL]))
    sent = raise_request(session, operator, company)
    builtin_servers(session, box, spec(servers[STARTTLS], password=WRONG), spec(servers[SSL], password=WRONG))
    refused = raise_request(session, operator, company, subject="Second")
    [sent_row], [refused_row] = mail_rows(session, sent), mail_rows(session, refused)
    assert sent_row.state == MailState.SENT and sent_row.sent_via.startswith("fallback")
    assert refused_row.last_error.count(f"refused the sign-in as {USER}") == 2
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "mail.log")  # not aiosmtpd's own
    assert f"refused the sign-in as {USER}" in ours
    auth_plain = [base64.b64encode(f"\0{USER}\0{p}".encode()).decode() for p in (PASSWORD, WRONG)]
    secrets = [PASSWORD, WRONG, *auth_plain]
    for secret in secrets:
        assert secret not in ours
        for row in (sent_row, refused_row):
            assert all(secret not in str(value) for value in vars(row).values())


# --- two workers, lost messages, dead workers ------------------------------------------------------

def test_two_workers_holding_the_same_copy_send_it_once(session, box, company, servers, app):
    server = servers[STARTTLS]
    builtin_servers(session, box, spec(server))
    server.data_delay = 0.5  # a slow server: both workers are inside the attempt at once
    mail = stored_copy(session, company)
    mail_id, start = mail.id, threading.Barrier(2)

    def worker():
        with app.app_context():
            start.wait()
            send_queued(mail_id)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(server.captured) == 1
    session.expire_all()
    assert (mail.state, mail.attempts) == (MailState.SENT, 1)


def test_the_minutes_sweep_delivers_what_no_job_will(session, box, company, servers, app):
    server = servers[STARTTLS]
    builtin_servers(session, box, spec(server))
    long_ago = utcnow() - timedelta(minutes=5)
    never_queued = stored_copy(session, company, recipient_email="a@acme.sk", created_at=long_ago)
    lost_retry = stored_copy(session, company, recipient_email="b@acme.sk", created_at=long_ago, attempts=1,
                             next_attempt_at=long_ago)
    dead_worker = stored_copy(session, company, recipient_email="c@acme.sk", created_at=long_ago, attempts=3,
                              next_attempt_at=long_ago)  # its last attempt never recorded an end
    fresh = stored_copy(session, company, recipient_email="d@acme.sk")  # its own job is on its way
    not_due = stored_copy(session, company, recipient_email="e@acme.sk", created_at=long_ago, attempts=1,
                          next_attempt_at=utcnow() + timedelta(minutes=5))
    done = stored_copy(session, company, recipient_email="f@acme.sk", created_at=long_ago,
                       state=MailState.SENT)

    assert sorted(sweep_queued_mail()) == sorted([never_queued.id, lost_retry.id, dead_worker.id])
    assert sorted(m.recipients for m in server.captured) == [("a@acme.sk",), ("b@acme.sk",)]
    session.expire_all()
    assert [m.state for m in (never_queued, lost_retry, fresh, not_due, done)] == [
        MailState.SENT, MailState.SENT, MailState.QUEUED, MailState.QUEUED, MailState.SENT]
    assert (dead_worker.state, dead_worker.last_error) == (
        MailState.FAILED, "Not sent after 3 attempts: the last one did not finish (its worker stopped).")
    assert sweep_queued_mail() == []


def test_a_copy_waiting_for_a_retry_never_reaches_a_contact_deactivated_meanwhile(session, app, operator):
    # The copy was queued while Cyril was assigned; before its (next) attempt he is deactivated.
    from models import Contact, OutgoingMail, Request
    from models.enums import CustomerKind, MailState
    from services.customers import SaveOptions, create_customer
    from services.mail_send import send_queued
    from services.requests import save_request
    from services.transactions import unit_of_work

    with unit_of_work(session):
        acme = create_customer(session, None, SaveOptions("SK"), kind=CustomerKind.COMPANY,
                               company_name="Acme", confirm_duplicate=True, contacts=[
                                   {"first_name": "Mia", "last_name": "Main", "email": "mia@acme.sk",
                                    "is_main": True},
                                   {"first_name": "Cyril", "last_name": "Contact", "email": "cyril@acme.sk"}])
    cyril = session.query(Contact).filter_by(email="cyril@acme.sk").one()
    # The first attempt is left for later: the copy stays queued.
    app.extensions["job_tasks"] = {**app.extensions["job_tasks"], "mail.send": lambda *a: None}
    with unit_of_work(session):
        save_request(session, Request(customer=acme, subject="VPN", contacts=[cyril]), None)
    copy = session.query(OutgoingMail).filter_by(recipient_email="cyril@acme.sk").one()
    with unit_of_work(session):
        cyril.is_active = False
    send_queued(copy.id)
    session.expire_all()
    copy = session.get(OutgoingMail, copy.id)
    assert copy.state == MailState.FAILED
    assert "no longer among the request's recipients" in copy.last_error
