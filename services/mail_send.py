"""Sending a queued copy (models.mail.OutgoingMail) through the SMTP servers its customer's settings
lead to, with retries — the worker's half of services.mail_out.

One attempt (`send_queued`):
1. Claim: one conditional UPDATE moves a queued, due mail's `attempts` up by one and its
   `next_attempt_at` past the attempt's longest possible duration, and commits. Of two workers
   holding the same id only one UPDATE matches (the other finds it no longer due), so a copy is
   never sent twice at the same time; a worker that dies mid-attempt leaves a mail that becomes
   due again when that hold ends (the sweep delivers it).
2. Route and message are read and built, and the database transaction ends before any network
   step: a slow server never holds a database lock.
3. The servers: the built-in ones (GlobalSettings) while the customer uses them, else its own
   primary and fallback. The primary first; on any failure to get the message accepted
   (connect, TLS, sign-in, a temporary 4xx) the fallback. A permanent 5xx refusal of the sender,
   the recipient or the message ends the copy at once: the servers have decided, retrying only
   repeats it. TLS as each server's security setting says (never downgraded), certificates
   verified against the system store plus MAIL_CA_FILE, every network step bounded by
   MAIL_SMTP_TIMEOUT. Connections go only to checked addresses (services.outbound_policy, as
   the Test connection button): anywhere for the built-in servers a maintainer configured; for a
   customer's own servers — typed by any operator — the SMTP ports on ordinary hosts unless
   MAIL_OWN_SERVER_REACH is "any", so a mail's text can never be aimed at a service inside
   the desk's own network.
4. Recorded: sent (sent_at, sent_via "primary host:port"), or last_error in our own words (host,
   port, user name, what failed — never a server's reply text, never a password) and either the
   next attempt after MAIL_RETRY_SECONDS doubled per attempt made, or, after MAIL_SEND_ATTEMPTS
   attempts or on a permanent refusal, failed. A customer without any SMTP server fails at once.

Retries: the job puts itself back on the queue for the next attempt (jobs.queue.enqueue_in) and the
minute's sweep (`overdue_mail`, job "mail.sweep") delivers again whatever is overdue — a retry
whose queue message was lost, or a mail whose first enqueue never happened — so nothing stays
queued for ever.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, parseaddr

from sqlalchemy import and_, or_, select, update

from models import Customer, GlobalSettings
from models.base import utcnow
from models.enums import MailSecurity, MailState
from models.mail import OutgoingMail
from services.customer_settings import DEFAULT_PORTS, DEFAULT_SECURITY, settings_of
from services.mail_check import MailServer, _PinnedSMTP, _PinnedSMTP_SSL, _quietly, _timed_out, tls_context
from services.mail_out import one_line, thread_id
from services.outbound_policy import OutboundRefused, Outcome, Protocol, Reach, allowed_destination, where
from services.secrets import SecretBox
from services.transactions import DbSession, unit_of_work

log = logging.getLogger(__name__)
ERROR_LIMIT = 500  # OutgoingMail.last_error
FROM_NAME = "Customer Desk"
# A network step may take up to the timeout; a conversation has about a dozen of them per server.
STEPS_PER_SERVER = 12
OVERDUE_GRACE = timedelta(seconds=60)
SWEEP_BATCH = 200


@dataclass(frozen=True)
class SendRules:
    """The application's sending configuration, as plain values (services stay Flask-free)."""

    attempts: int = 5
    retry_seconds: int = 60
    timeout: float = 30.0
    cafile: str | None = None
    from_address: str = ""
    own_reach: Reach = Reach.LIMITED

    @classmethod
    def of(cls, config) -> SendRules:
        return cls(attempts=max(1, int(config["MAIL_SEND_ATTEMPTS"])),
                   retry_seconds=max(1, int(config["MAIL_RETRY_SECONDS"])),
                   timeout=float(config.get("MAIL_SMTP_TIMEOUT", 30)), cafile=config.get("MAIL_CA_FILE"),
                   from_address=config.get("MAIL_FROM_ADDRESS") or "",
                   own_reach=Reach(config.get("MAIL_OWN_SERVER_REACH", Reach.LIMITED.value)))

    def hold(self) -> timedelta:
        """How long a claimed attempt may take at most (two servers)."""
        return timedelta(seconds=2 * STEPS_PER_SERVER * self.timeout)

    def backoff(self, attempt: int) -> int:
        """Seconds before the attempt after `attempt` (1-based): MAIL_RETRY_SECONDS, doubled each time,
        at most MAX_RETRY_SECONDS."""
        return min(self.retry_seconds * 2 ** min(attempt - 1, 20), MAX_RETRY_SECONDS)


# A server that let an attempt time out is not tried again by this process for a while: otherwise
# every copy to one customer's dead server holds the worker for the whole timeout (primary and
# fallback), and every other customer's mail, import and intake waits behind them. Those copies
# are put off like any failed attempt, without spending worker time.
SILENT_SECONDS = 60.0
_SILENT: dict[tuple[str, int], float] = {}  # (address, port) → monotonic time it may be tried again
MAX_RETRY_SECONDS = 4 * 3600  # however many attempts are configured, a retry comes within hours


@dataclass(frozen=True)
class Route:
    role: str  # "primary" / "fallback"
    server: MailServer
    reach: Reach

    @property
    def name(self) -> str:
        return f"{self.role} {where(self.server.host, self.server.port)}"


@dataclass(frozen=True)
class Failure:
    words: str  # ours: what failed, where — never a server's text
    permanent: bool = False  # a 5xx refusal of the sender, the recipient or the message


class Unsendable(Exception):
    """This copy cannot be sent as it is (no server, no sender address, a broken stored header):
    it fails at once, since retrying changes nothing."""


# --- one attempt ----------------------------------------------------------------------------------

def send_queued(mail_id: int, *, session: DbSession | None = None, box: SecretBox | None = None,
                rules: SendRules | None = None, now: datetime | None = None) -> int | None:
    """Make one attempt at sending the copy `mail_id` when it is queued and due (nothing otherwise:
    sent, failed, not yet due, or another worker's). Returns the seconds until the next attempt
    when one is due later (the job puts itself back on its queue), else None. Never raises for
    what a server or the network does: the outcome is recorded on the row. Without arguments it
    uses the current application's session, secret box and configuration (the job)."""
    if session is None or box is None or rules is None:
        from flask import current_app

        from extensions import db

        session = session or db.session
        box = box or current_app.extensions["secret_box"]
        rules = rules or SendRules.of(current_app.config)
    attempt = claim(session, mail_id, rules, now or utcnow())
    if attempt is None:
        return None
    try:
        # Read and built in one short transaction, ended before any network step: a slow server
        # never holds a database lock.
        with unit_of_work(session):
            mail = session.get(OutgoingMail, mail_id)
            if mail is None:  # deleted with its request since the claim
                return None
            _check_still_a_recipient(mail)
            routes, sender, reply_to = _routes_and_addresses(session, mail.customer, box, rules)
            message = compose(mail, sender, reply_to, now or utcnow())
            recipient = message["To"].addresses[0].addr_spec
    except Unsendable as exc:
        return _record(session, mail_id, attempt, rules, Failure(str(exc), permanent=True), now)

    failures: list[Failure] = []
    for route in routes:
        failure = _deliver(route, message, sender.addr_spec, recipient, rules)
        if failure is None:
            _record_sent(session, mail_id, attempt, route, now)
            return None
        log.warning("mail %s, attempt %s: %s", mail_id, attempt, failure.words)
        failures.append(failure)
        if failure.permanent:
            break
    return _record(session, mail_id, attempt, rules, _summary(failures), now)


def _check_still_a_recipient(mail: OutgoingMail) -> None:
    """A copy waiting for a retry goes only to someone still among the request's recipients: a
    contact deactivated, moved to another company or unassigned meanwhile gets nothing more."""
    from services.requests import request_recipients

    if mail.request is None:
        return
    if mail.recipient_email.casefold() not in {r.email.casefold() for r in request_recipients(mail.request)}:
        raise Unsendable(f"{mail.recipient_email} is no longer among the request's recipients.")


def claim(session: DbSession, mail_id: int, rules: SendRules, now: datetime) -> int | None:
    """Take the next attempt of a queued, due mail for this worker: the attempt's number, or None
    when it is not queued, not due or was just taken. A mail whose last attempt never recorded its
    end (its worker stopped) fails here instead of trying once more than allowed."""
    is_due = or_(OutgoingMail.next_attempt_at.is_(None), OutgoingMail.next_attempt_at <= now)
    mine = and_(OutgoingMail.id == mail_id, OutgoingMail.state == MailState.QUEUED, is_due)
    with unit_of_work(session):
        result = session.execute(
            update(OutgoingMail).where(mine, OutgoingMail.attempts < rules.attempts)
            .values(attempts=OutgoingMail.attempts + 1, last_attempt_at=now,
                    next_attempt_at=now + rules.hold())
            .execution_options(synchronize_session=False))
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return session.scalar(select(OutgoingMail.attempts).where(OutgoingMail.id == mail_id))
        session.execute(
            update(OutgoingMail).where(mine, OutgoingMail.attempts >= rules.attempts)
            .values(state=MailState.FAILED, next_attempt_at=None,
                    last_error=f"Not sent after {rules.attempts} attempts: the last one did not finish "
                               "(its worker stopped).")
            .execution_options(synchronize_session=False))
    return None


def _record_sent(session: DbSession, mail_id: int, attempt: int, route: Route, now: datetime | None) -> None:
    with unit_of_work(session):
        session.execute(
            update(OutgoingMail).where(OutgoingMail.id == mail_id, OutgoingMail.state == MailState.QUEUED)
            .values(state=MailState.SENT, sent_at=now or utcnow(), sent_via=route.name[:120],
                    next_attempt_at=None, last_error=None)
            .execution_options(synchronize_session=False))
    log.info("mail %s sent via %s (attempt %s)", mail_id, route.name, attempt)


def _record(session: DbSession, mail_id: int, attempt: int, rules: SendRules, failure: Failure,
            now: datetime | None) -> int | None:
    """The failed attempt: failed for good, or queued for the next one (its delay returned)."""
    moment = now or utcnow()
    final = failure.permanent or attempt >= rules.attempts
    if failure.permanent:
        words = f"Not sent: {failure.words}"
    elif final:
        words = f"Not sent after {attempt} attempts: {failure.words}"
    else:
        words = f"Not sent yet (attempt {attempt} of {rules.attempts}): {failure.words}"
    delay = None if final else rules.backoff(attempt)
    values = {"last_error": words[:ERROR_LIMIT], "state": MailState.FAILED if final else MailState.QUEUED,
              "next_attempt_at": None if delay is None else moment + timedelta(seconds=delay)}
    with unit_of_work(session):
        session.execute(
            update(OutgoingMail).where(OutgoingMail.id == mail_id, OutgoingMail.state == MailState.QUEUED,
                                       OutgoingMail.attempts == attempt)
            .values(**values).execution_options(synchronize_session=False))
    if final:
        log.warning("mail %s failed for good: %s", mail_id, words)
    return delay


def _summary(failures: list[Failure]) -> Failure:
    if not failures:
        return Failure("no SMTP server was tried.")
    return Failure("; ".join(f.words for f in failures) + ".", permanent=failures[-1].permanent)


def overdue_mail(session: DbSession, now: datetime | None = None, limit: int = SWEEP_BATCH) -> list[int]:
    """Queued mail overdue by more than a minute: a retry whose queue message was lost, an attempt
    whose worker died (its hold has ended), a copy whose first enqueue never happened. A fresh
    copy or a retry on time is the queue's own business, so the sweep does not double it."""
    cutoff = (now or utcnow()) - OVERDUE_GRACE
    overdue = or_(OutgoingMail.next_attempt_at <= cutoff,
                  and_(OutgoingMail.next_attempt_at.is_(None), OutgoingMail.created_at <= cutoff))
    return list(session.scalars(select(OutgoingMail.id).where(OutgoingMail.state == MailState.QUEUED, overdue)
                                .order_by(OutgoingMail.id).limit(limit)))


# --- where it goes, and what it says -------------------------------------------------------------

def _routes_and_addresses(session: DbSession, customer: Customer, box: SecretBox,
                          rules: SendRules) -> tuple[list[Route], Address, Address | None]:
    """The servers to try in order, the From address and the Reply-To (the intake address replies
    are read from). Raises Unsendable when there is no server or no sender address."""
    own = settings_of(session, customer)
    builtin = session.get(GlobalSettings, 1)
    source = builtin if own.use_builtin_mail_servers else own
    routes = []
    if source is not None:
        reach = Reach.ANY if source is builtin else rules.own_reach
        for role in ("primary", "fallback"):
            server = _server(source, f"smtp_{role}", box)
            if server is not None:
                routes.append(Route(role, server, reach))
    if not routes:
        where_set = ("the built-in servers in the global settings" if own.use_builtin_mail_servers
                     else "the customer's own SMTP server in its settings")
        raise Unsendable(f"no SMTP server is configured for this customer's mail (set {where_set}).")
    intake = own.request_intake_address or (source.pop3_address if source is not None else None)
    desk = builtin.pop3_address if builtin is not None else None
    # Through the desk's own servers a copy is From the desk's address, never one an operator typed
    # on a customer (a spoofed sender, SPF/DMARC refusals, bounces to it); Reply-To stays the intake.
    fallbacks = (desk, intake) if source is builtin else (intake, desk)
    name, address = parseaddr(rules.from_address) if rules.from_address else ("", "")
    address = address or next((a for a in fallbacks if a), "")
    if not address:
        raise Unsendable("no sender address is configured (set MAIL_FROM_ADDRESS, the customer's intake "
                         "address or the built-in POP3 mailbox's address).")
    sender = _address(one_line(name) or FROM_NAME, address, "the sender address")
    reply_to = _address(sender.display_name, intake, "the intake address") if intake else None
    return routes, sender, reply_to


def _server(source, prefix: str, box: SecretBox) -> MailServer | None:
    """The server as MailServer, with the customer's own CA (`mail_ca_certificate`) when the
    source is a customer's settings; MAIL_CA_FILE is added when the TLS context is made."""
    host = (getattr(source, f"{prefix}_host") or "").strip()
    if not host:
        return None
    security = getattr(source, f"{prefix}_security") or DEFAULT_SECURITY["smtp"]
    port = getattr(source, f"{prefix}_port") or DEFAULT_PORTS[("smtp", security)]
    try:
        password = box.decrypt(getattr(source, f"{prefix}_password_encrypted"))
    except ValueError:  # a key changed without rotating: the server is tried and refuses the sign-in
        log.error("The stored password of the SMTP server %s cannot be decrypted", where(host, port))
        password = None
    return MailServer(host, int(port), MailSecurity(security), getattr(source, f"{prefix}_username") or None,
                      password, cadata=getattr(source, "mail_ca_certificate", None))


def _address(name: str, address: str, what: str) -> Address:
    try:
        return Address(display_name=one_line(name), addr_spec=address.strip())
    except (ValueError, IndexError, TypeError):
        raise Unsendable(f"{what} {one_line(address)[:120]!r} is no e-mail address.") from None


def compose(mail: OutgoingMail, sender: Address, reply_to: Address | None, now: datetime) -> EmailMessage:
    """The copy as an e-mail. Every header value is one line (services.mail_out.one_line) and names
    and addresses are structured (email.headerregistry), so no text a user typed can add a header
    or a recipient. Raises Unsendable for a stored value that is no address or Message-ID."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = _address(mail.recipient_name, mail.recipient_email, "the recipient's address")
    if reply_to is not None:
        message["Reply-To"] = reply_to
    message["Subject"] = one_line(mail.subject)
    message["Date"] = format_datetime(now.replace(tzinfo=UTC))
    try:
        message["Message-ID"] = one_line(mail.message_id)
    except ValueError:
        raise Unsendable("the copy's Message-ID cannot be written as a header.") from None
    if mail.request is not None:
        message["References"] = thread_id(mail.request)
    # RFC 3834: a notification; out-of-office replies must not answer it (and come back as comments).
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(mail.body)
    return message


# --- the SMTP conversation ------------------------------------------------------------------------

def _deliver(route: Route, message: EmailMessage, sender: str, recipient: str,
             rules: SendRules) -> Failure | None:
    """Hand `message` to one server: None when it accepted it, else what failed in our words."""
    server, name = route.server, route.name
    try:
        destination = allowed_destination(server.host, server.port, Protocol.SMTP, route.reach)
    except OutboundRefused as refused:
        if refused.outcome == Outcome.HOST_NOT_FOUND:
            return Failure(f"{name}: the host name could not be resolved")
        return Failure(f"{name} is not a place the desk sends mail through (only the SMTP ports 25, 465, "
                       "587 and 2525 on hosts outside the desk's own machine and link)")
    where_to = (destination.host, destination.port)
    if _SILENT.get(where_to, 0.0) > time.monotonic():
        return Failure(f"{name} did not answer a moment ago: not tried again yet")
    security = MailSecurity(server.security)
    context = tls_context(route.server, rules.cafile) if security != MailSecurity.NONE else None
    client: _PinnedSMTP = _PinnedSMTP_SSL.__new__(_PinnedSMTP_SSL) if security == MailSecurity.SSL \
        else _PinnedSMTP.__new__(_PinnedSMTP)
    client.addresses = destination.addresses
    step = "connect"
    try:
        # Built first, so a greeting that never comes can still close the socket in `finally`.
        if isinstance(client, smtplib.SMTP_SSL):
            smtplib.SMTP_SSL.__init__(client, destination.host, destination.port, timeout=rules.timeout,
                                      context=context)
        else:
            smtplib.SMTP.__init__(client, destination.host, destination.port, timeout=rules.timeout)
        client.ehlo()
        if security == MailSecurity.STARTTLS:
            if not client.has_extn("starttls"):
                return Failure(f"{name} does not offer STARTTLS, which its security setting requires")
            client.starttls(context=context)
            client.ehlo()
        if server.username:
            step = "sign-in"
            if not client.has_extn("auth"):
                return Failure(f"{name} offers no sign-in for {server.username}")
            client.login(server.username, server.password or "")
        step = "send"
        # Not send_message: it flattens with mangle_from_, and a comment line starting with "From "
        # would arrive as ">From ". as_bytes does not mangle; sendmail dot-stuffs as SMTP needs.
        international = not (sender + recipient).isascii()
        if international and not client.has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError("SMTPUTF8")
        data = message.as_bytes(policy=SMTPUTF8 if international else SMTP)
        client.sendmail(sender, [recipient], data,
                        mail_options=("SMTPUTF8", "BODY=8BITMIME") if international else ())
        _quietly(client.quit)
        return None
    except Exception as exc:  # whatever it is, our words; a server's reply text never leaves here
        if _timed_out(exc):
            _SILENT[where_to] = time.monotonic() + SILENT_SECONDS
        return _failure(exc, name, step, server, sender, recipient, rules.timeout)
    finally:
        if getattr(client, "sock", None) is not None:
            client.close()




def _failure(exc: Exception, name: str, step: str, server: MailServer, sender: str, recipient: str,
             timeout: float) -> Failure:
    if _timed_out(exc):
        return Failure(f"{name} did not answer within {timeout:g} s")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Failure(f"the certificate of {name} is not trusted or is not for this host name")
    if step == "sign-in" and isinstance(exc, smtplib.SMTPException) \
            and not isinstance(exc, smtplib.SMTPServerDisconnected):  # refused, or no method both know
        return Failure(f"{name} refused the sign-in as {server.username}")
    if isinstance(exc, UnicodeError):
        return Failure(f"{name}: the user name, password or an address has characters this server "
                       "cannot take", permanent=step == "send")
    if step == "send" and isinstance(exc, smtplib.SMTPNotSupportedError):
        return Failure(f"{name} cannot take the international (non-ASCII) address {recipient}",
                       permanent=True)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code = next(iter(exc.recipients.values()), (450, b""))[0]
        return _refusal(name, f"the recipient {recipient}", code)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return _refusal(name, f"the sender address {sender}", exc.smtp_code)
    if isinstance(exc, smtplib.SMTPDataError):
        return _refusal(name, "the message", exc.smtp_code)
    if isinstance(exc, ssl.SSLError | ConnectionError | smtplib.SMTPException):
        return Failure(f"{name} refused the connection or closed it (check the host, the port and the "
                       "security setting)")
    if isinstance(exc, OSError):
        return Failure(f"{name} could not be reached")
    log.warning("mail server %s: %s during the %s step", name, type(exc).__name__, step)
    return Failure(f"{name} answered in a way the desk does not understand")


def _refusal(name: str, what: str, code: int) -> Failure:
    if 500 <= code < 600:
        return Failure(f"{name} refused {what} for good (SMTP {code})", permanent=True)
    return Failure(f"{name} did not take {what} for now (SMTP {code})")
