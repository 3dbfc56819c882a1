"""Requests by e-mail through a real Dovecot POP3 mailbox (services.pop3_reader), on both databases:
what a mail becomes, that it leaves the mailbox only once it is saved, and that it is processed
once — also when two fetchers read at once and when the fetching process is killed mid-way."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from extensions import db
from models import Contact, Customer, GlobalSettings, IncomingMail, OutgoingMail, Request, RequestComment
from models.enums import IntakeOutcome, MailSecurity, RequestSource, UnknownSenders, Via
from services.mail_out import thread_id
from services.pop3_reader import ReadRules, fetch_all
from services.requests import save_request
from testing import pop3_mailbox as mails
from tests.conftest import ENCRYPTION_KEY, written
from tests.intake_fixtures import (
    PASSWORD,
    acme,
    count,
    enable,
    incoming,
    intake,
    intake_server,
    mailbox,
    pat,
    point_builtin_at,
    requests_of,
)

FIXTURES = (acme, intake, intake_server, mailbox, pat)  # used by name below
KB = 1024


def builtin_mailbox(session, **values) -> None:
    """Change the built-in mailbox's settings (GlobalSettings pop3_*)."""
    def change():
        for key, value in values.items():
            setattr(session.get(GlobalSettings, 1), key, value)
    written(session, change)


def contact_named(customer, first) -> Contact:
    return next(c for c in customer.contacts if c.first_name == first)


def test_a_plain_mail_from_a_contact_becomes_a_request_raised_by_it(intake, mailbox, acme, session):
    mailbox.drop(mails.plain("Cyril Contact <CYRIL@acme.example>", "Printer on floor 2 is jammed",
                             "It shows error E-42 since this morning.\n\nCyril"))
    [report] = intake.fetch()
    assert report.error is None and report.outcomes == {IntakeOutcome.REQUEST_CREATED: 1}
    [request] = requests_of(session, acme)
    assert request.subject == "Printer on floor 2 is jammed"
    assert "error E-42" in request.description
    assert request.source == RequestSource.EMAIL
    assert request.requester_contact.first_name == "Cyril"
    [mail] = incoming(session)
    assert (mail.outcome, mail.request_id, mail.from_address) == (IntakeOutcome.REQUEST_CREATED, request.id,
                                                                  "cyril@acme.example")
    assert mailbox.count() == 0, "deleted from the mailbox once saved"
    # The main contact is told of the new request; the sender, who wrote it, is not.
    copies = session.scalars(select(OutgoingMail).where(OutgoingMail.request_id == request.id)).all()
    assert [c.recipient_email for c in copies] == ["mia@acme.example"]


def test_a_private_person_is_known_by_the_secondary_address_too(intake, mailbox, pat, session):
    mailbox.drop(mails.plain("Pat.Work@JOB.example", "VPN refuses me", "Since the update."))
    intake.fetch()
    [request] = requests_of(session, pat)
    assert request.requester_contact is None and request.description == "Since the update."


def desk_request(session, customer, operator, subject="Mouse broken", contacts=()) -> Request:
    """A request raised at the desk: copies go to the main contact and the assigned contacts."""
    request = Request(customer=customer, subject=subject, description="It clicks twice.",
                      contacts=[contact_named(customer, first) for first in contacts])
    return written(session, lambda: save_request(session, request, operator))


def test_a_reply_with_the_reference_in_the_subject_adds_a_comment(intake, mailbox, acme, session, operator):
    request = desk_request(session, acme, operator)
    mailbox.drop(mails.reply("mia@acme.example", f"RE: [{request.reference}] Mouse broken",
                             "Still broken after the new battery.\n\n"
                             "On Mon, 1 Dec 2026 at 09:00, Customer Desk <desk@intake.example> wrote:\n"
                             "> Olga wrote: please change the battery\n> Thanks"))
    [report] = intake.fetch()
    assert report.outcomes == {IntakeOutcome.COMMENT_ADDED: 1}
    session.expire_all()
    [comment] = session.scalars(select(RequestComment).where(RequestComment.request_id == request.id)).all()
    assert comment.body.startswith("Still broken after the new battery.")
    assert "please change the battery" not in comment.body, "the quoted earlier message is trimmed"
    assert "quoted below the reply are left out" in comment.body
    assert (comment.via, comment.author_email, comment.author_name) == (Via.EMAIL, "mia@acme.example",
                                                                        "Mia Main")
    assert len(requests_of(session, acme)) == 1


def test_a_reply_to_one_of_our_copies_by_in_reply_to_adds_a_comment(intake, mailbox, acme, session, operator):
    request = desk_request(session, acme, operator, contacts=["Cyril"])
    ours = session.scalars(select(OutgoingMail).where(OutgoingMail.request_id == request.id,
                                                      OutgoingMail.why == "assigned to this request")).one()
    mailbox.drop(mails.reply("Cyril@acme.example", "Re: your message", "Thanks, works again.",
                             in_reply_to=ours.message_id))
    mailbox.drop(mails.reply("mia@acme.example", "Another subject", "By thread id.",
                             references=f"<other@else.example> {thread_id(request)}"))
    intake.fetch()
    bodies = [c.body for c in session.scalars(select(RequestComment)
                                              .where(RequestComment.request_id == request.id))]
    assert "Thanks, works again." in bodies and "By thread id." in bodies
    assert len(requests_of(session, acme)) == 1


@pytest.mark.parametrize("policy", [UnknownSenders.HOLD, UnknownSenders.REFUSE])
def test_an_unknown_sender_is_held_or_refused_and_never_becomes_a_customer(intake, mailbox, acme, session,
                                                                           policy):
    intake.unknown_senders(policy)
    customers = count(session, Customer)
    mailbox.drop(mails.plain("Stranger <stranger@nowhere.example>", "Buy our SEO", "<b>Cheap</b> links"))
    [report] = intake.fetch()
    [mail] = incoming(session)
    assert mail.outcome == (IntakeOutcome.HELD if policy == UnknownSenders.HOLD else IntakeOutcome.REFUSED)
    assert "stranger@nowhere.example is not the address of a customer or contact" in mail.reason
    assert mail.customer_id is None and mail.request_id is None
    assert count(session, Customer) == customers and count(session, Request) == 0
    assert count(session, OutgoingMail) == 0, "no reply of any kind: no backscatter"
    if policy == UnknownSenders.HOLD:
        assert mail.body_text == "<b>Cheap</b> links"  # text, shown escaped on the held-mail page
    else:
        assert mail.body_text is None and "No reply was sent." in mail.reason
    assert mailbox.count() == 0


def test_the_same_message_id_delivered_twice_makes_one_request(intake, mailbox, acme, session):
    raw = mails.plain("mia@acme.example", "Monitor flickers", "Second floor.",
                      message_id="<dup-1@acme.example>")
    mailbox.drop(raw)
    mailbox.drop(raw)
    [report] = intake.fetch()
    assert report.outcomes == {IntakeOutcome.REQUEST_CREATED: 1} and report.already == 1
    assert len(requests_of(session, acme)) == 1 and mailbox.count() == 0
    mailbox.drop(raw)  # a third delivery, a day later
    [report] = intake.fetch()
    assert report.already == 1 and len(requests_of(session, acme)) == 1 and mailbox.count() == 0


def test_a_mail_without_message_id_is_remembered_by_its_bytes(intake, mailbox, acme, session):
    raw = mails.plain("mia@acme.example", "No id", "Old mailer.", message_id=None)
    mailbox.drop(raw)
    mailbox.drop(raw)
    intake.fetch()
    [mail] = incoming(session)
    assert mail.message_key.startswith("sha256:") and len(requests_of(session, acme)) == 1


def test_broken_mime_is_held_with_its_reason_and_the_other_mails_go_on(intake, mailbox, acme, session):
    mailbox.drop(mails.malformed("mia@acme.example", "Broken"))
    mailbox.drop(mails.plain("mia@acme.example", "Fine one", "Works."))
    [report] = intake.fetch()
    assert report.outcomes == {IntakeOutcome.HELD: 1, IntakeOutcome.REQUEST_CREATED: 1}
    held = next(m for m in incoming(session) if m.outcome == IntakeOutcome.HELD)
    assert "MIME structure is broken" in held.reason and "boundary never appears" in held.reason
    assert "Some text that belongs to no part." in held.body_text
    assert "\x00" not in held.body_text and "\x1b" not in held.body_text
    assert [r.subject for r in requests_of(session, acme)] == ["Fine one"]
    assert mailbox.count() == 0


def test_a_mail_over_the_message_limit_is_refused_without_reading_it(intake, mailbox, acme, session, app):
    app.config["MAIL_MESSAGE_LIMIT"] = 200 * KB
    mailbox.drop(mails.huge("mia@acme.example", "Huge log", 300 * KB))
    [report] = intake.fetch()
    [mail] = incoming(session)
    assert mail.outcome == IntakeOutcome.REFUSED and mail.size > 300 * KB
    assert "over the limit of 200 KB" in mail.reason and mail.subject == "Huge log"
    assert requests_of(session, acme) == [] and mailbox.count() == 0


def test_an_address_of_two_customers_is_held_naming_both(intake, mailbox, acme, session, new_customer, app):
    from models.enums import CustomerKind

    other = new_customer(kind=CustomerKind.COMPANY, company_name="Beta", contacts=[
        {"first_name": "Cy", "last_name": "Twice", "email": "cyril@acme.example", "is_main": True}])
    enable(session, app, other)
    mailbox.drop(mails.plain("cyril@acme.example", "Which one?", "Hi."))
    intake.fetch()
    [mail] = incoming(session)
    assert mail.outcome == IntakeOutcome.HELD and "more than one person" in mail.reason
    assert "Cyril Contact of Acme" in mail.reason and "Cy Twice of Beta" in mail.reason
    assert count(session, Request) == 0


def test_a_customer_without_requests_by_email_is_held(intake, mailbox, acme, session, app):
    enable(session, app, acme, requests_by_email_enabled=False)
    mailbox.drop(mails.plain("mia@acme.example", "Off", "Hi."))
    intake.fetch()
    [mail] = incoming(session)
    assert (mail.outcome, mail.customer_id) == (IntakeOutcome.HELD, acme.id)
    assert mail.reason == "Requests by e-mail are off for this customer (Acme)."


def test_a_reference_the_sender_may_not_see_is_held(intake, mailbox, acme, session, operator, new_customer):
    from models.enums import CustomerKind

    other = new_customer(kind=CustomerKind.COMPANY, company_name="Gamma", operators=[operator])
    foreign = desk_request(session, other, operator, subject="Gamma's")
    private = desk_request(session, acme, operator, subject="Only Mia's")  # Cyril is not assigned
    mailbox.drop(mails.plain("mia@acme.example", f"[{foreign.reference}] peek", "Hi."))
    mailbox.drop(mails.plain("cyril@acme.example", f"Re: [{private.reference}] Only Mia's", "Hi."))
    intake.fetch()
    reasons = sorted(m.reason for m in incoming(session))
    assert reasons == [f"Cyril Contact may not see {private.reference}.",
                       f"It names {foreign.reference}, which is no request of Acme."]
    assert all(m.outcome == IntakeOutcome.HELD for m in incoming(session))
    assert count(session, RequestComment) == 0


def test_an_out_of_office_reply_joins_the_thread_without_sending_copies(intake, mailbox, acme, session,
                                                                        operator):
    request = desk_request(session, acme, operator)
    before = count(session, OutgoingMail)
    mailbox.drop(mails.plain("mia@acme.example", f"Automatic reply: [{request.reference}] Mouse broken",
                             "I am out of the office.", headers={"Auto-Submitted": "auto-replied"}))
    mailbox.drop(mails.plain("mia@acme.example", "Out of office", "Away.",
                             headers={"Auto-Submitted": "auto-replied"}))
    intake.fetch()
    outcomes = sorted(m.outcome.value for m in incoming(session))
    assert outcomes == ["comment_added", "held"]
    assert count(session, OutgoingMail) == before, "an automatic reply sends no copies"
    assert len(requests_of(session, acme)) == 1


def test_a_customers_own_mailbox_knows_only_its_people_and_leaves_other_mail(
        intake, mailbox, acme, pat, session, app, intake_server):
    builtin_mailbox(session, pop3_host=None)
    enable(session, app, acme, use_builtin_mail_servers=False, pop3_host="127.0.0.1",
           pop3_port=intake_server.pop3_port, pop3_security="starttls", pop3_username="intake",
           pop3_password=PASSWORD, pop3_address="cmonitor@acme.example", smtp_primary_host="127.0.0.1",
           request_intake_address="help@acme.example")
    mailbox.drop(mails.plain("mia@acme.example", "For the desk", "Hi.", to="help@acme.example"))
    mailbox.drop(mails.plain("pat@home.example", "Pat writes here", "Hi.", to="help@acme.example"))
    mailbox.drop(mails.plain("cm-server@provider.example", "C-Monitor package", "data",
                             to="cmonitor@acme.example"))
    [report] = intake.fetch()
    assert report.mailbox == f"customer:{acme.id}" and report.left == 1
    assert [r.subject for r in requests_of(session, acme)] == ["For the desk"]
    assert requests_of(session, pat) == [], "Pat is no person of Acme's"
    pats = next(m for m in incoming(session) if m.subject == "Pat writes here")
    assert (pats.outcome, pats.customer_id) == (IntakeOutcome.HELD, acme.id)
    assert mailbox.count() == 1, "C-Monitor's mail stays in the customer's mailbox"


def test_own_servers_are_reached_only_on_pop3_ports_of_ordinary_hosts_by_default(
        intake, mailbox, acme, session, app, intake_server):
    app.config["MAIL_OWN_SERVER_REACH"] = "limited"
    enable(session, app, acme, use_builtin_mail_servers=False, pop3_host="127.0.0.1",
           pop3_port=intake_server.pop3s_port, pop3_security="ssl", pop3_username="intake",
           pop3_password=PASSWORD, smtp_primary_host="127.0.0.1")
    mailbox.drop(mails.plain("mia@acme.example", "Hi", "Hi."))
    reports = intake.fetch(only=f"customer:{acme.id}")
    assert "is not a POP3 port" in reports[0].error
    assert mailbox.count() == 1 and count(session, IncomingMail) == 0


def test_a_wrong_password_is_reported_without_the_password_and_the_mail_stays(
        intake, mailbox, acme, session, app, intake_server, caplog):
    point_builtin_at(session, app.extensions["secret_box"], intake_server, password="Wr0ng-but-secret")
    mailbox.drop(mails.plain("mia@acme.example", "Hi", "Hi."))
    with caplog.at_level(logging.DEBUG):
        [report] = intake.fetch()
    assert "refused the sign-in as intake" in report.error
    assert mailbox.count() == 1 and count(session, IncomingMail) == 0
    assert "Wr0ng-but-secret" not in caplog.text and PASSWORD not in caplog.text


def test_an_untrusted_certificate_is_refused(intake, mailbox, acme, session, app):
    app.config["MAIL_CA_FILE"] = None  # the test server's certificate is self-signed
    mailbox.drop(mails.plain("mia@acme.example", "Hi", "Hi."))
    [report] = intake.fetch()
    assert "is not trusted" in report.error and mailbox.count() == 1


def test_two_fetchers_at_once_create_one_request(intake, mailbox, acme, session, app):
    for number in range(5):
        mailbox.drop(mails.plain("mia@acme.example", f"Parallel {number}", "Hi."))
    results: list = []

    def fetch():
        with app.app_context():
            try:
                results.append(fetch_all(db.session, app.extensions["secret_box"], ReadRules.of(app.config)))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 2 and all(r[0].error is None for r in results)
    subjects = sorted(r.subject for r in requests_of(session, acme))
    assert subjects == [f"Parallel {n}" for n in range(5)], "each mail once, though both fetchers read it"
    assert count(session, IncomingMail) == 5 and mailbox.count() == 0


# --- a fetcher killed mid-way: `flask mail fetch` in its own process, SIGKILLed ----------------------

ROOT = Path(__file__).resolve().parent.parent


def cli_env(app, database_url, certificate, tmp_path) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "ENCRYPTION_KEY": ENCRYPTION_KEY,
            "SECRET_KEY": "test-secret-key-not-for-production", "MAIL_CA_FILE": certificate.cafile,
            "MAIL_DOMAIN": app.config["MAIL_DOMAIN"],
            "JOB_QUEUE_URL": f"sqlite:///{tmp_path / 'jobs.sqlite3'}",
            "PHOTO_DIR": str(tmp_path), "BULK_IMPORT_DIR": str(tmp_path)}


FETCH = [sys.executable, "-m", "flask", "--app", "app", "mail", "fetch", "--verbose"]


def fetch_process(env) -> subprocess.Popen:
    return subprocess.Popen(FETCH, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)


def fetch_run(env) -> subprocess.CompletedProcess:
    return subprocess.run(FETCH, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def wait_for_line(process: subprocess.Popen, wanted: str, timeout: float = 60) -> list[str]:
    """The lines the process printed up to the one containing `wanted`."""
    seen: list[str] = []
    found = threading.Event()

    def read():
        for line in process.stdout:
            seen.append(line)
            if wanted in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert found.wait(timeout), f"the fetcher never said {wanted!r}: {seen}"
    return seen


def kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
    assert process.returncode == -signal.SIGKILL


@contextmanager
def writes_blocked(database_url):
    """Another connection holding what the fetcher needs to commit: SQLite's write lock, or on
    PostgreSQL a lock on incoming_mail that lets reads through and makes inserts wait."""
    engine = create_engine(database_url)
    connection = engine.connect()
    try:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.begin()
            connection.exec_driver_sql("LOCK TABLE incoming_mail IN EXCLUSIVE MODE")
        yield connection
    finally:
        connection.rollback()
        connection.close()
        engine.dispose()


def test_a_fetcher_killed_between_reading_and_committing_loses_and_duplicates_nothing(
        intake, mailbox, acme, session, app, database_url, certificate, tmp_path):
    mailbox.drop(mails.plain("mia@acme.example", "Killed once", "Please do not lose me."))
    env = cli_env(app, database_url, certificate, tmp_path)
    with writes_blocked(database_url):
        process = fetch_process(env)
        try:
            wait_for_line(process, "message 1: read")  # read; its commit now waits for our lock
            time.sleep(0.3)
        finally:
            kill(process)
    assert count(session, IncomingMail) == 0 and requests_of(session, acme) == []
    assert mailbox.count() == 1, "not deleted: the mail is still there for the next run"

    rerun = fetch_run(env)
    assert rerun.returncode == 0, rerun.stderr
    assert "message 1: request created" in rerun.stdout
    [request] = requests_of(session, acme)
    assert request.subject == "Killed once" and mailbox.count() == 0
    again = fetch_run(env)
    assert again.returncode == 0 and len(requests_of(session, acme)) == 1


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_fetcher_killed_after_committing_one_mail_does_not_process_it_again(
        intake, mailbox, acme, session, app, database_url, certificate, tmp_path):
    """Killed after mail 1 is committed (its DELE not yet applied: POP3 deletes at QUIT) while
    mail 2 waits: the next run only deletes mail 1 and processes mail 2. PostgreSQL holds mail 2
    alone back (its key inserted by another transaction: the insert waits on the unique key);
    SQLite's one write lock would hold back mail 1 too, so this is PostgreSQL's (SQLite's kill
    is the test before)."""
    mailbox.drop(mails.plain("mia@acme.example", "First", "One.", message_id="<kill-1@acme.example>"))
    mailbox.drop(mails.plain("mia@acme.example", "Second", "Two.", message_id="<kill-2@acme.example>"))
    env = cli_env(app, database_url, certificate, tmp_path)
    engine = create_engine(database_url)
    try:
        with engine.connect() as blocker:
            blocker.begin()
            blocker.execute(text(
                "INSERT INTO incoming_mail (mailbox, message_key, size, outcome, received_at) "
                "VALUES ('builtin', '<kill-2@acme.example>', 1, 'held', now())"))
            process = fetch_process(env)
            try:
                lines = wait_for_line(process, "message 2: read")
                time.sleep(0.3)
            finally:
                kill(process)
            blocker.rollback()
    finally:
        engine.dispose()
    assert any("message 1: request created" in line for line in lines)
    assert [r.subject for r in requests_of(session, acme)] == ["First"]
    assert mailbox.count() == 2, "the killed session's DELE never reached QUIT"

    rerun = fetch_run(env)
    assert rerun.returncode == 0, rerun.stderr
    assert "message 1: recorded before; deleted" in rerun.stdout
    assert [r.subject for r in requests_of(session, acme)] == ["First", "Second"]
    assert mailbox.count() == 0 and count(session, IncomingMail) == 2


def test_a_mail_the_domain_refuses_is_held_with_the_refusal_and_nothing_half_written(
        intake, mailbox, acme, session, monkeypatch):
    import services.mail_intake as intake_module
    from services.errors import ValidationFailed

    def refuse(*args, **kwargs):
        raise ValidationFailed({"subject": ["A request needs a subject."]})

    monkeypatch.setattr(intake_module, "raise_request", refuse)
    mailbox.drop(mails.plain("mia@acme.example", "Refused by the rules", "Text kept."))
    intake.fetch()
    [mail] = incoming(session)
    assert (mail.outcome, mail.reason) == (IntakeOutcome.HELD, "Not added automatically: A request needs a "
                                                                "subject.")
    assert mail.body_text == "Text kept." and count(session, Request) == 0 and mailbox.count() == 0


def test_a_mail_that_breaks_the_code_is_held_and_the_others_go_on(intake, mailbox, acme, session, monkeypatch,
                                                                  caplog):
    import services.pop3_reader as reader

    real = reader.receive

    def fragile(session_, scope, incoming_mail, limits):
        if incoming_mail.parsed.subject == "Poison":
            raise RuntimeError("a bug")
        return real(session_, scope, incoming_mail, limits)

    monkeypatch.setattr(reader, "receive", fragile)
    mailbox.drop(mails.plain("mia@acme.example", "Poison", "Boom."))
    mailbox.drop(mails.plain("mia@acme.example", "Healthy", "Fine."))
    [report] = intake.fetch()
    assert report.outcomes == {IntakeOutcome.HELD: 1, IntakeOutcome.REQUEST_CREATED: 1}
    poison = next(m for m in incoming(session) if m.subject == "Poison")
    assert poison.reason == "It could not be processed automatically (RuntimeError)."
    assert [r.subject for r in requests_of(session, acme)] == ["Healthy"] and mailbox.count() == 0
    assert "held for an operator" in caplog.text


def test_the_minute_job_reads_the_intake_mailbox(intake, mailbox, acme, session):
    from jobs.mail import fetch_intake_mail
    from jobs.registry import JOBS

    assert JOBS["mail.fetch"].schedule is not None, "a periodic job of the workers"
    mailbox.drop(mails.plain("mia@acme.example", "Via the worker", "Hi."))
    fetch_intake_mail()
    assert [r.subject for r in requests_of(session, acme)] == ["Via the worker"] and mailbox.count() == 0


@pytest.mark.parametrize("security", [MailSecurity.SSL, MailSecurity.STARTTLS, MailSecurity.NONE])
def test_each_security_setting_reads_the_mailbox(intake, mailbox, acme, session, intake_server, security):
    port = intake_server.pop3s_port if security == MailSecurity.SSL else intake_server.pop3_port
    builtin_mailbox(session, pop3_security=security, pop3_port=port)
    mailbox.drop(mails.plain("mia@acme.example", f"Over {security.label}", "Hi."))
    [report] = intake.fetch()
    assert report.error is None
    assert [r.subject for r in requests_of(session, acme)] == [f"Over {security.label}"]


def test_a_mailbox_that_never_answers_is_given_up_after_the_timeout(intake, mailbox, session, app,
                                                                   silent_port):
    app.config["MAIL_POP3_TIMEOUT"] = 1
    builtin_mailbox(session, pop3_port=silent_port)
    started_at = time.monotonic()
    [report] = intake.fetch()
    assert time.monotonic() - started_at < 5
    assert report.error == f"127.0.0.1:{silent_port} did not answer within 1 s."
