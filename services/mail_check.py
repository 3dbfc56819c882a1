""""Test connection" for a mail server: really connect, and say in plain words what happened.

Plain Python on smtplib and poplib, no Flask, so the wizard and the settings pages can call it and
tests can run it against real servers (testing/mail_servers.py).

- Where it may connect is services.outbound_policy's rule (`reach`: an operator reaches the SMTP or
  POP3 ports on ordinary hosts, a maintainer any host and port). The host name is resolved once,
  checked, and the socket goes to a checked address; the name serves only TLS (SNI and the
  certificate's name), so DNS cannot send the connection elsewhere between check and connect.
- The answer is one of a fixed set (outbound_policy.Outcome): connected, refused, no answer, wrong
  password, untrusted certificate, host not found, not allowed — built from what was typed (host,
  port, user name, security), never from what the server sent: no banner, reply text or
  certificate detail reaches a message or a log line, so the button tells nothing about a port but
  whether a mail server answered there.
- `timeout` bounds every network step (connect, TLS handshake, each reply), so a server that never
  answers is reported after `timeout` seconds instead of hanging the page. Resolving the host name is
  the operating system's business and is not bounded by it.
- Certificates are verified against the system CA store (or `MailServer.cafile`), plus the CA a
  customer's own servers are trusted through (`MailServer.cadata`, the customer settings' PEM),
  with host name checking: a "Test connection" that accepted any certificate would prove nothing.
- The password never appears in a result or a log line; the dataclass leaves it out of its repr,
  and the clients' debug output (which would print the AUTH exchange) stays off.
"""

from __future__ import annotations

import logging
import poplib
import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from i18n import _, ngettext
from models.enums import MailSecurity
from services.outbound_policy import (
    Destination,
    OutboundRefused,
    Outcome,
    Protocol,
    Reach,
    allowed_destination,
    where,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MailServer:
    host: str
    port: int
    security: MailSecurity
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # Trust only this CA bundle (tests' self-signed certificate); a missing file is a programming
    # error and raises, unlike everything a user can type.
    cafile: str | None = None
    # PEM text of the CA certificate(s) a customer's own servers are trusted through, in
    # addition to the store above (CustomerSettings.mail_ca_certificate, checked when saved).
    cadata: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str
    outcome: Outcome
    field: str | None = None  # the input the message belongs under ("host", "port"), when one does


def check_smtp(server: MailServer, timeout: float = 5.0, reach: Reach = Reach.LIMITED) -> CheckResult:
    """Connect (SMTP_SSL / SMTP + STARTTLS / plain SMTP), EHLO, sign in when a user name is given,
    QUIT. Whatever the server or the network does comes back as a CheckResult, never raised."""
    checked = _checked(server, timeout, Protocol.SMTP, reach)
    if isinstance(checked, CheckResult):
        return checked
    security = MailSecurity(server.security)
    context = tls_context(server) if security != MailSecurity.NONE else None
    client: smtplib.SMTP | None = None
    try:
        client = _PinnedSMTP_SSL.__new__(_PinnedSMTP_SSL) if security == MailSecurity.SSL \
            else _PinnedSMTP.__new__(_PinnedSMTP)
        client.addresses = checked.addresses
        if isinstance(client, smtplib.SMTP_SSL):
            smtplib.SMTP_SSL.__init__(client, checked.host, checked.port, timeout=timeout, context=context)
        else:
            smtplib.SMTP.__init__(client, checked.host, checked.port, timeout=timeout)
        client.ehlo()
        if security == MailSecurity.STARTTLS:
            if not client.has_extn("starttls"):
                return _refused(server)
            client.starttls(context=context)
            client.ehlo()  # the capabilities before TLS no longer count
        result = _smtp_sign_in(client, server, security)
        _quietly(client.quit)
        return result
    except smtplib.SMTPServerDisconnected as exc:
        return _no_answer(server, timeout) if _timed_out(exc) else _refused(server)
    except (OSError, UnicodeError) as exc:  # every SMTPException is an OSError too
        return _transport_problem(exc, server, timeout)
    except Exception as exc:  # a server answering nonsense: a refusal, never a 500
        return _unexpected(server, exc)
    finally:
        if client is not None and getattr(client, "sock", None) is not None:
            client.close()


def _smtp_sign_in(client: smtplib.SMTP, server: MailServer, security: MailSecurity) -> CheckResult:
    if not server.username:
        return _connected(server, _("Connected to %(where)s %(how)s; no user name given, so no sign-in "
                                    "was tried.", where=_where(server), how=_how(security)))
    if not client.has_extn("auth"):  # no sign-in offered here: refused all the same
        return _wrong_password(server, security, offered=False)
    try:
        client.login(server.username, server.password or "")
    except smtplib.SMTPServerDisconnected:
        raise
    except smtplib.SMTPException:  # refused (535), or no sign-in method both sides know
        return _wrong_password(server, security)
    return _connected(server, _("Connected to %(where)s %(how)s and signed in as %(user)s.",
                                where=_where(server), how=_how(security), user=server.username))


def check_pop3(server: MailServer, timeout: float = 5.0, reach: Reach = Reach.LIMITED) -> CheckResult:
    """Connect (POP3_SSL / POP3 + STLS / plain POP3), sign in with USER/PASS when a user name is
    given, STAT for the message count, QUIT. Without a user name only the greeting is checked:
    POP3 opens no mailbox before sign-in. Like check_smtp, every outcome is a CheckResult."""
    checked = _checked(server, timeout, Protocol.POP3, reach)
    if isinstance(checked, CheckResult):
        return checked
    security = MailSecurity(server.security)
    context = tls_context(server) if security != MailSecurity.NONE else None
    client: poplib.POP3 | None = None
    try:
        client = _PinnedPOP3_SSL.__new__(_PinnedPOP3_SSL) if security == MailSecurity.SSL \
            else _PinnedPOP3.__new__(_PinnedPOP3)
        client.addresses = checked.addresses
        # poplib connects and reads the greeting in its constructor; built first, so a greeting
        # that never comes (or is an -ERR) can still close the socket in `finally`.
        if isinstance(client, poplib.POP3_SSL):
            poplib.POP3_SSL.__init__(client, checked.host, checked.port, timeout=timeout, context=context)
        else:
            poplib.POP3.__init__(client, checked.host, checked.port, timeout=timeout)
        if security == MailSecurity.STARTTLS:
            if "STLS" not in _pop3_capabilities(client):
                return _refused(server)
            client.stls(context=context)
        result = _pop3_sign_in(client, server, security)
        _quietly(client.quit)
        return result
    except poplib.error_proto:
        return _refused(server)
    except (OSError, UnicodeError) as exc:
        return _transport_problem(exc, server, timeout)
    except Exception as exc:  # a server answering nonsense (a STAT that is no number …)
        return _unexpected(server, exc)
    finally:
        if client is not None and getattr(client, "sock", None) is not None:
            client.close()


def _pop3_capabilities(client: poplib.POP3) -> dict[str, list[str]]:
    try:
        return client.capa()
    except poplib.error_proto:  # a server without CAPA offers no STLS either
        return {}


def _pop3_sign_in(client: poplib.POP3, server: MailServer, security: MailSecurity) -> CheckResult:
    if not server.username:
        return _connected(server, _("Connected to %(where)s %(how)s; no user name given, so no mailbox "
                                    "was opened.", where=_where(server), how=_how(security)))
    try:
        client.user(server.username)
        client.pass_(server.password or "")
    except poplib.error_proto:
        return _wrong_password(server, security)
    count, _size = client.stat()  # numbers this module counts, not text the server chose
    return _connected(server, ngettext(
        "Connected to %(where)s %(how)s and signed in as %(user)s: %(num)d message in the mailbox.",
        "Connected to %(where)s %(how)s and signed in as %(user)s: %(num)d messages in the mailbox.",
        int(count), where=_where(server), how=_how(security), user=server.username))


# --- connecting to the checked addresses only -------------------------------------------------------

def _connect_any(addresses: Sequence[str], port: int, timeout: float | None,
                 source_address: tuple[str, int] | None = None) -> socket.socket:
    """A socket to the first of the checked addresses that accepts; never a new DNS lookup."""
    error: OSError = ConnectionRefusedError()
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout, source_address)
        except TimeoutError:
            raise
        except OSError as exc:
            error = exc
    raise error


class _PinnedSMTP(smtplib.SMTP):
    """SMTP whose socket goes to `addresses`; `_host` (the name) stays for STARTTLS."""
    addresses: Sequence[str] = ()

    def _get_socket(self, host, port, timeout):
        return _connect_any(self.addresses, port, timeout, self.source_address)


class _PinnedSMTP_SSL(smtplib.SMTP_SSL, _PinnedSMTP):  # noqa: N801  # smtplib's naming
    """SMTP_SSL wraps what _PinnedSMTP connects (MRO: SMTP_SSL, _PinnedSMTP, SMTP)."""


class _PinnedPOP3(poplib.POP3):
    addresses: Sequence[str] = ()

    def _create_socket(self, timeout):
        if timeout is not None and not timeout:
            raise ValueError("Non-blocking socket (timeout=0) is not supported")
        return _connect_any(self.addresses, self.port, timeout)


class _PinnedPOP3_SSL(poplib.POP3_SSL, _PinnedPOP3):  # noqa: N801  # poplib's naming
    """POP3_SSL wraps what _PinnedPOP3 connects, with the typed name for SNI and the certificate."""


# --- input, policy and answers --------------------------------------------------------------------

def _checked(server: MailServer, timeout: float, protocol: Protocol,
             reach: Reach) -> Destination | CheckResult:
    problem = _invalid(server, timeout)
    if problem:
        return _result(server, False, problem[1], Outcome.INVALID, problem[0])
    try:
        return allowed_destination(server.host, server.port, protocol, reach)
    except OutboundRefused as refused:
        return _result(server, False, refused.message, refused.outcome, refused.field)


def _invalid(server: MailServer, timeout: float) -> tuple[str | None, str] | None:
    """(field, message) of what is wrong with the input before any connection is tried."""
    if not isinstance(server.host, str) or not server.host.strip():
        return "host", _("Enter the mail server's host name.")
    if isinstance(server.port, bool) or not isinstance(server.port, int) or not 1 <= server.port <= 65535:
        return "port", _("The port must be a number from 1 to 65535.")
    if server.security not in set(MailSecurity):
        return "security", _("Choose the security: None, SSL/TLS or STARTTLS.")
    if not timeout > 0:
        return None, _("The timeout must be more than 0 seconds.")
    return None


def tls_context(server: MailServer, extra_cafile: str | None = None) -> ssl.SSLContext:
    """Verifying context (certificate and host name): the system CA store — or only
    `server.cafile` when one is given — plus `extra_cafile` (MAIL_CA_FILE) and the customer's
    own CA (`server.cadata`). The one TLS helper of Test connection and of sending."""
    context = ssl.create_default_context(cafile=server.cafile)
    if extra_cafile:
        context.load_verify_locations(cafile=extra_cafile)
    if server.cadata:
        context.load_verify_locations(cadata=server.cadata)
    return context


def _transport_problem(exc: OSError | UnicodeError, server: MailServer, timeout: float) -> CheckResult:
    """A network, TLS or protocol failure as one of the fixed outcomes."""
    if isinstance(exc, UnicodeError):
        return _result(server, False, _("The user name or password contains characters this server's "
                                        "sign-in cannot send."), Outcome.INVALID)
    if _timed_out(exc):  # before the rest: a TLS handshake that timed out is an SSLError too
        return _no_answer(server, timeout)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _result(server, False, _("The certificate of %(where)s is not trusted or is not for this "
                                        "host name: check the host name, or the server's certificate "
                                        "(a server signed by the customer's own CA needs that CA "
                                        "certificate in the settings).", where=_where(server)),
                       Outcome.UNTRUSTED_CERTIFICATE)
    if isinstance(exc, ssl.SSLError | ConnectionError | smtplib.SMTPException):
        return _refused(server)  # TLS spoken to a plain port, a reset, a greeting that is no 220 …
    return _no_answer(server, timeout)  # no route, unreachable network: nothing answered


def _unexpected(server: MailServer, exc: Exception) -> CheckResult:
    log.warning("mail server check: %s while talking to %s", type(exc).__name__, _where(server))
    return _refused(server)


def _timed_out(exc: BaseException | None) -> bool:
    """smtplib reports a reply that never came as SMTPServerDisconnected; the timeout is its cause."""
    while exc is not None:
        if isinstance(exc, TimeoutError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _where(server: MailServer) -> str:
    return where(server.host, server.port)


def _how(security: MailSecurity) -> str:
    return _("without encryption") if security == MailSecurity.NONE else _("with %(security)s",
                                                                            security=security.label)


def _connected(server: MailServer, message: str) -> CheckResult:
    return _result(server, True, message, Outcome.CONNECTED)


def _refused(server: MailServer) -> CheckResult:
    return _result(server, False, _("%(where)s refused the connection: check the host, the port and the "
                                    "security setting.", where=_where(server)), Outcome.REFUSED)


def _no_answer(server: MailServer, timeout: float) -> CheckResult:
    return _result(server, False, _("%(where)s did not answer within %(seconds)s s.", where=_where(server),
                                    seconds=format(timeout, "g")), Outcome.NO_ANSWER)


def _wrong_password(server: MailServer, security: MailSecurity, offered: bool = True) -> CheckResult:
    if security == MailSecurity.NONE and not offered:
        message = _("Connected to %(where)s without encryption, but it refused the sign-in as %(user)s: "
                    "check the user name and the password (without encryption, many servers offer no "
                    "sign-in: try SSL/TLS or STARTTLS).", where=_where(server), user=server.username)
    else:
        message = _("Connected to %(where)s %(how)s, but it refused the sign-in as %(user)s: check the "
                    "user name and the password.", where=_where(server), how=_how(security),
                    user=server.username)
    return _result(server, False, message, Outcome.WRONG_PASSWORD)


def _quietly(goodbye: Callable[[], object]) -> None:
    """QUIT is a courtesy: what it says (or that the server already left) changes no result."""
    try:
        goodbye()
    except (OSError, EOFError, poplib.error_proto):
        pass


def _result(server: MailServer, ok: bool, message: str, outcome: Outcome,
            field: str | None = None) -> CheckResult:
    log.info("mail server check %s: %s", "passed" if ok else "failed", message)
    return CheckResult(ok, message, outcome, field)
