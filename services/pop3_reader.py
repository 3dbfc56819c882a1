"""Reading the intake mailboxes over POP3: the door of requests by e-mail (services.mail_intake
decides; this reads, commits, and only then deletes).

Which mailboxes: the built-in one (GlobalSettings pop3_*), and the own POP3 mailbox of each
customer that uses its own mail servers and has requests by e-mail on. A customer's mailbox with
the option off is never opened: it is the customer's (and its C-Monitor computers'), not ours.

Each mail once, even if the job dies:
1. RETR (or, over MAIL_MESSAGE_LIMIT by the server's LIST size, only its headers with TOP);
2. one unit of work per mail (SQLite: BEGIN IMMEDIATE first, so the "recorded already?" check
   sees what another fetcher committed): the IncomingMail row and the request or comment,
   committed together;
3. only then DELE. POP3 applies deletions at QUIT: a run killed anywhere before leaves every
   mail in the mailbox; the next run finds the committed ones recorded and only deletes them
   (services.mail_intake.Received.already), and processes the others as new. Two fetchers at
   once (two workers, a worker and the CLI) both read a mail; one commits, the other fails on
   the unique key (or finds it recorded) and only deletes it.
A mail that fails for a reason of its own (a bug, a database refusal) is held for an operator
in a unit of work of its own; when even that fails it stays in the mailbox for the next run.
One bad mail never stops the others; a mailbox that cannot be reached never stops the others.

Connections as services.mail_check makes them (its pinned POP3 classes: only checked addresses,
TLS per the setting and verified against the system CA store plus MAIL_CA_FILE, every network
step bounded by MAIL_POP3_TIMEOUT). The built-in mailbox is a maintainer's and may be anywhere;
a customer's own — typed by any operator — only on the POP3 ports of ordinary hosts unless
MAIL_OWN_SERVER_REACH is "any" (as services.mail_send does for SMTP). Passwords are never
logged: MailServer leaves them out of its repr and poplib's debug output stays off.
"""

from __future__ import annotations

import logging
import poplib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select

from models import CustomerSettings, GlobalSettings
from models.customer import Customer
from models.enums import MailSecurity
from services import mail_check
from services.customer_settings import DEFAULT_PORTS, DEFAULT_SECURITY
from services.mail_check import (
    CheckResult,
    MailServer,
    _checked,
    _PinnedPOP3,
    _pop3_capabilities,
    _quietly,
    _refused,
    _transport_problem,
    _wrong_password,
)
from services.mail_intake import (
    BUILTIN,
    IntakeScope,
    Limits,
    Received,
    hold_unprocessed,
    is_recorded,
    read_mail,
    read_oversized,
    receive,
)
from services.outbound_policy import Protocol, Reach, where
from services.secrets import SecretBox
from services.transactions import DbSession, hold_transaction, unit_of_work

log = logging.getLogger(__name__)
SLACK = 64 * 1024  # bytes beyond the LIST size a mail may take (the server counts lines its own way)
MIN_RATE = 64 * 1024  # bytes per second a mail must at least arrive with
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ReadRules:
    limits: Limits
    timeout: float = 30.0
    cafile: str | None = None
    own_reach: Reach = Reach.LIMITED
    batch: int = 100  # mails per mailbox and run; the rest wait for the next run

    @classmethod
    def of(cls, config: Any) -> ReadRules:
        return cls(Limits.of(config), timeout=float(config.get("MAIL_POP3_TIMEOUT", 30)),
                   cafile=config.get("MAIL_CA_FILE") or None,
                   own_reach=Reach(config.get("MAIL_OWN_SERVER_REACH", Reach.LIMITED.value)),
                   batch=int(config.get("MAIL_FETCH_BATCH", 100)))


@dataclass(frozen=True)
class Mailbox:
    scope: IntakeScope
    label: str
    server: MailServer
    reach: Reach


@dataclass
class MailboxReport:
    """One mailbox's run: counts per outcome, and the reason when it could not be read."""

    mailbox: str
    label: str
    outcomes: Counter = field(default_factory=Counter)
    already: int = 0  # recorded before: only deleted
    left: int = 0  # not ours (a shared mailbox) or failed: still in the mailbox
    error: str | None = None

    def summary(self) -> str:
        if self.error:
            return f"{self.label}: {self.error}"
        parts = [f"{count} {outcome.label.lower()}" for outcome, count in sorted(
            self.outcomes.items(), key=lambda item: item[0].value)]
        if self.already:
            parts.append(f"{self.already} recorded before, deleted")
        if self.left:
            parts.append(f"{self.left} left in the mailbox")
        return f"{self.label}: {', '.join(parts) or 'no mail'}."


class MailboxUnavailable(Exception):
    """The mailbox could not be opened; the message is in our words (services.mail_check's)."""


# --- which mailboxes ----------------------------------------------------------------------------

def intake_mailboxes(session: DbSession, box: SecretBox, rules: ReadRules) -> list[Mailbox]:
    """The mailboxes to read now (see the module's docstring)."""
    found: list[Mailbox] = []
    builtin = session.get(GlobalSettings, 1)
    if builtin is not None and builtin.pop3_host and builtin.pop3_username:
        server = _server(builtin, box, rules)
        found.append(Mailbox(IntakeScope(BUILTIN), "the built-in mailbox", server, Reach.ANY))
    own = session.execute(select(CustomerSettings, Customer.display_name).join(
        Customer, Customer.id == CustomerSettings.customer_id).where(
        CustomerSettings.use_builtin_mail_servers.is_(False),
        CustomerSettings.requests_by_email_enabled.is_(True), CustomerSettings.pop3_host.is_not(None),
        Customer.merged_into_id.is_(None)).order_by(CustomerSettings.customer_id))
    for settings, name in own:
        scope = IntakeScope.of_customer(settings.customer_id, settings.pop3_address,
                                        settings.request_intake_address)
        found.append(Mailbox(scope, f"the mailbox of {name}", _server(settings, box, rules), rules.own_reach))
    return found


def _server(source, box: SecretBox, rules: ReadRules) -> MailServer:
    security = MailSecurity(source.pop3_security or DEFAULT_SECURITY["pop3"])
    port = source.pop3_port or DEFAULT_PORTS[("pop3", security)]
    try:
        password = box.decrypt(source.pop3_password_encrypted)
    except ValueError:  # a key changed without rotating: the sign-in is refused, and says so
        log.error("The stored password of the POP3 mailbox %s cannot be decrypted",
                  where(source.pop3_host, port))
        password = None
    # A customer's mailbox may be signed by the customer's own CA (the built-in one has none).
    return MailServer(source.pop3_host.strip(), int(port), security, source.pop3_username or None,
                      password, rules.cafile, cadata=getattr(source, "mail_ca_certificate", None) or None)


# --- reading ------------------------------------------------------------------------------------

def fetch_all(session: DbSession, box: SecretBox, rules: ReadRules, *, only: str | None = None,
              progress: Progress | None = None) -> list[MailboxReport]:
    """Read every intake mailbox (or only the one named `only`: "builtin", "customer:<id>")."""
    mailboxes = [m for m in intake_mailboxes(session, box, rules) if only in (None, m.scope.mailbox)]
    session.rollback()  # no database transaction stays open while we talk to mail servers
    return [fetch_mailbox(session, mailbox, rules, progress=progress) for mailbox in mailboxes]


def fetch_mailbox(session: DbSession, mailbox: Mailbox, rules: ReadRules, *,
                  progress: Progress | None = None) -> MailboxReport:
    report = MailboxReport(mailbox.scope.mailbox, mailbox.label)
    say = progress or (lambda _line: None)
    try:
        client = _open(mailbox, rules)
    except MailboxUnavailable as exc:
        report.error = str(exc)
        log.warning("intake: %s could not be read: %s", mailbox.label, exc)
        return report
    try:
        sizes = _sizes(client)
        say(f"{mailbox.label}: {len(sizes)} mail(s)")
        for number, size in sizes[:rules.batch]:
            try:
                received = _one(session, client, mailbox, rules, number, size, say)
                if received is not None and received.delete:
                    client.dele(number)  # applied at QUIT, after the commit above
            except poplib.error_proto as exc:
                if not _refused_command(exc):
                    raise
                # The server said -ERR to this message alone (another fetcher's session deleted it
                # meanwhile): it is that session's; the conversation goes on.
                say(f"  message {number}: gone ({exc.args[0][:60]!r})")
                continue
            if received is None or not received.delete:
                report.left += 1
                continue
            if received.already:
                report.already += 1
                say(f"  message {number}: recorded before; deleted")
            elif received.outcome is not None:
                report.outcomes[received.outcome] += 1
                say(f"  message {number}: {received.outcome.label.lower()}")
        client.quit()
    except (OSError, EOFError, poplib.error_proto) as exc:
        # The connection broke: what was committed is remembered; the mailbox keeps the rest.
        report.error = f"the connection to {where(mailbox.server.host, mailbox.server.port)} broke " \
                       f"({type(exc).__name__}); the rest is read next time."
        log.warning("intake: %s: %s", mailbox.label, report.error)
    finally:
        if getattr(client, "sock", None) is not None:
            client.close()
    log.info("intake: %s", report.summary())
    return report


def _one(session: DbSession, client: poplib.POP3, mailbox: Mailbox, rules: ReadRules, number: int,
         size: int, say: Progress) -> Received | None:
    """Read, decide and commit one mail; None when it must stay in the mailbox."""
    scope = mailbox.scope
    if size > rules.limits.message or not scope.dedicated:
        client.expect(SLACK, rules.timeout)  # type: ignore[attr-defined]
        incoming = read_oversized(b"\r\n".join(client.top(number, 0)[1]) + b"\r\n", size)
        if not scope.takes(incoming.parsed):
            return Received(incoming.key, not_ours=True)  # someone else's: not even read
    if size <= rules.limits.message:
        client.expect(size, rules.timeout)  # type: ignore[attr-defined]
        incoming = read_mail(b"\r\n".join(client.retr(number)[1]) + b"\r\n", rules.limits)
    client.budget = client.deadline = None  # type: ignore[attr-defined]
    say(f"  message {number}: read ({size} bytes)")
    try:
        with unit_of_work(session):
            hold_transaction(session)
            return receive(session, scope, incoming, rules.limits)
    except Exception as exc:  # one mail's failure is its own; the others go on
        failure = exc
    try:
        if is_recorded(session, scope, incoming.key):  # another fetcher committed it meanwhile
            session.rollback()
            return Received(incoming.key, already=True)
        log.error("intake: message %s of %s could not be processed (%s): held for an operator",
                  number, mailbox.label, type(failure).__name__, exc_info=failure)
        with unit_of_work(session):
            hold_transaction(session)
            return hold_unprocessed(session, scope, incoming, "It could not be processed automatically "
                                                              f"({type(failure).__name__}).")
    except Exception:
        log.exception("intake: message %s of %s stays in the mailbox", number, mailbox.label)
        session.rollback()
        return None


def _refused_command(exc: poplib.error_proto) -> bool:
    """An -ERR answer of the server (bytes), not poplib's own "line too long" / EOF (text)."""
    return bool(exc.args) and isinstance(exc.args[0], bytes) and exc.args[0].startswith(b"-ERR")


def _sizes(client: poplib.POP3) -> list[tuple[int, int]]:
    sizes = []
    for line in client.list()[1]:
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            sizes.append((int(parts[0]), int(parts[1])))
    return sizes


# --- the connection -------------------------------------------------------------------------------

class _IntakePOP3(_PinnedPOP3):
    """POP3 to checked addresses that accepts lines up to the message limit: poplib's 2,048
    bytes would stop at the first long line of an HTML mail, mid-response."""

    line_limit = 2048
    budget: int | None = None  # bytes the answer being read may still take (None: any)
    deadline: float | None = None  # monotonic time by which it must have arrived

    def expect(self, size: int, timeout: float) -> None:
        """The next answer is a mail the server said (LIST) is `size` bytes: a server that sends
        more, or so slowly that no single read times out, is cut off instead of read for ever."""
        self.budget = size + SLACK
        self.deadline = time.monotonic() + timeout + size / MIN_RATE

    def _getline(self):
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise poplib.error_proto("the mail did not arrive in time")
        line = self.file.readline(self.line_limit + 1)
        if self.budget is not None:
            self.budget -= len(line)
            if self.budget < 0:
                raise poplib.error_proto("the mail is larger than the server said")
        if len(line) > self.line_limit:
            raise poplib.error_proto("line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        if line[:1] == b"\r":
            return line[1:-1], octets
        return line[:-1], octets


class _IntakePOP3_SSL(poplib.POP3_SSL, _IntakePOP3):  # noqa: N801  # poplib's naming
    pass


def _open(mailbox: Mailbox, rules: ReadRules) -> poplib.POP3:
    """A signed-in POP3 session, or MailboxUnavailable in our words."""
    server, timeout = mailbox.server, rules.timeout
    checked = _checked(server, timeout, Protocol.POP3, mailbox.reach)
    if isinstance(checked, CheckResult):
        raise MailboxUnavailable(checked.message)
    security = MailSecurity(server.security)
    # The system store plus MAIL_CA_FILE and the customer's CA: the TLS helper of sending and
    # of Test connection (server.cafile alone would replace the system store).
    context = (mail_check.tls_context(replace(server, cafile=None), rules.cafile)
               if security != MailSecurity.NONE else None)
    client: poplib.POP3 = (_IntakePOP3_SSL.__new__(_IntakePOP3_SSL) if security == MailSecurity.SSL
                           else _IntakePOP3.__new__(_IntakePOP3))
    client.addresses = checked.addresses  # type: ignore[attr-defined]
    client.line_limit = rules.limits.message + 1024  # type: ignore[attr-defined]
    try:
        if isinstance(client, poplib.POP3_SSL):
            poplib.POP3_SSL.__init__(client, checked.host, checked.port, timeout=timeout, context=context)
        else:
            poplib.POP3.__init__(client, checked.host, checked.port, timeout=timeout)
        if security == MailSecurity.STARTTLS:
            if "STLS" not in _pop3_capabilities(client):
                raise MailboxUnavailable(_refused(server).message)
            client.stls(context=context)
        try:
            client.user(server.username or "")
            client.pass_(server.password or "")
        except poplib.error_proto:
            _quietly(client.quit)
            raise MailboxUnavailable(_wrong_password(server, security).message) from None
        return client
    except MailboxUnavailable:
        _close(client)
        raise
    except poplib.error_proto:
        _close(client)
        raise MailboxUnavailable(_refused(server).message) from None
    except (OSError, UnicodeError) as exc:
        _close(client)
        raise MailboxUnavailable(_transport_problem(exc, server, timeout).message) from None


def _close(client: poplib.POP3) -> None:
    if getattr(client, "sock", None) is not None:
        client.close()
