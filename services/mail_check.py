""""Test connection" for a mail server: really connect, and say in plain words what worked or what
the server (or the network) answered instead.

Plain Python on smtplib and poplib, no Flask, so the wizard and the settings pages can call it and
tests can run it against real servers (testing/mail_servers.py).

- `timeout` bounds every network step (connect, TLS handshake, each reply), so a server that never
  answers is reported after `timeout` seconds instead of hanging the page. Resolving the host name is
  the operating system's business and is not bounded by it.
- Certificates are verified against the system CA store (or `MailServer.cafile`) with host name
  checking: a "Test connection" that accepted any certificate would prove nothing.
- The password never appears in a result or a log line: messages are built from the host, port,
  user name and security, and every text that comes from outside (a server's reply, an error's
  wording) passes `_scrub`, in case a server echoed it. The dataclass leaves it out of its repr, and
  the clients' debug output (which would print the AUTH exchange) stays off.
"""

from __future__ import annotations

import logging
import poplib
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from models.enums import MailSecurity

log = logging.getLogger(__name__)

HIDDEN = "[password]"  # what a message shows where a server echoed the password


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


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str


def check_smtp(server: MailServer, timeout: float = 5.0) -> CheckResult:
    """Connect (SMTP_SSL / SMTP + STARTTLS / plain SMTP), EHLO, sign in when a user name is given,
    QUIT. Whatever the server or the network does comes back as a CheckResult, never raised."""
    problem = _invalid(server, timeout)
    if problem:
        return _result(server, False, problem)
    security, where = MailSecurity(server.security), _where(server)
    context = _tls_context(server) if security != MailSecurity.NONE else None
    client: smtplib.SMTP | None = None
    try:
        if security == MailSecurity.SSL:
            client = smtplib.SMTP_SSL(server.host.strip(), server.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(server.host.strip(), server.port, timeout=timeout)
        client.ehlo()
        if security == MailSecurity.STARTTLS:
            if not client.has_extn("starttls"):
                return _result(server, False, f"{where} does not offer STARTTLS: choose another security "
                                              "setting or port.")
            client.starttls(context=context)
            client.ehlo()  # the capabilities before TLS no longer count
        result = _smtp_sign_in(client, server, where, security)
        _quietly(client.quit)
        return result
    except smtplib.SMTPConnectError as exc:
        return _result(server, False, f"{where} refused the session: "
                                      f"{_reply(server, exc.smtp_code, exc.smtp_error)}")
    except smtplib.SMTPResponseException as exc:
        return _result(server, False, f"{where} answered: {_reply(server, exc.smtp_code, exc.smtp_error)}")
    except smtplib.SMTPServerDisconnected as exc:
        if _timed_out(exc):
            return _result(server, False, f"{where} did not answer within {timeout:g} s.")
        return _result(server, False, f"{where} closed the connection unexpectedly.")
    except (OSError, UnicodeError) as exc:  # SMTPException is an OSError too
        return _result(server, False, _transport_problem(exc, server, timeout))
    finally:
        if client is not None:
            client.close()


def _smtp_sign_in(client: smtplib.SMTP, server: MailServer, where: str,
                  security: MailSecurity) -> CheckResult:
    connected = f"Connected to {where} {_how(security)}"
    if not server.username:
        return _result(server, True, f"{connected}; no user name given, so no sign-in was tried.")
    if not client.has_extn("auth"):
        return _result(server, False, f"{connected}, but it offers no sign-in (AUTH) on this connection"
                                      f"{'' if security != MailSecurity.NONE else ' (it may require TLS)'}.")
    try:
        client.login(server.username, server.password or "")
    except smtplib.SMTPAuthenticationError as exc:
        return _result(server, False, f"{connected}, but it refused the sign-in as {server.username}: "
                                      f"{_reply(server, exc.smtp_code, exc.smtp_error)}")
    return _result(server, True, f"{connected} and signed in as {server.username}.")


def check_pop3(server: MailServer, timeout: float = 5.0) -> CheckResult:
    """Connect (POP3_SSL / POP3 + STLS / plain POP3), sign in with USER/PASS when a user name is
    given, STAT for the message count, QUIT. Without a user name only the greeting is checked:
    POP3 opens no mailbox before sign-in. Like check_smtp, every outcome is a CheckResult."""
    problem = _invalid(server, timeout)
    if problem:
        return _result(server, False, problem)
    security, where = MailSecurity(server.security), _where(server)
    context = _tls_context(server) if security != MailSecurity.NONE else None
    client: poplib.POP3 | None = None
    try:
        client = _open_pop3(server, security, context, timeout)
        if security == MailSecurity.STARTTLS:
            if "STLS" not in _pop3_capabilities(client):
                return _result(server, False, f"{where} does not offer STARTTLS (STLS): choose another "
                                              "security setting or port.")
            client.stls(context=context)
        result = _pop3_sign_in(client, server, where, security)
        _quietly(client.quit)
        return result
    except poplib.error_proto as exc:
        return _result(server, False, f"{where} answered: {_pop3_reply(server, exc)}")
    except (OSError, UnicodeError) as exc:
        return _result(server, False, _transport_problem(exc, server, timeout))
    finally:
        if client is not None:
            client.close()


def _open_pop3(server: MailServer, security: MailSecurity, context: ssl.SSLContext | None,
               timeout: float) -> poplib.POP3:
    """poplib connects and reads the greeting in its constructor, and when the greeting never comes
    (or is an -ERR) it leaves the socket open; build the object first so a failure can close it."""
    cls = poplib.POP3_SSL if security == MailSecurity.SSL else poplib.POP3
    client = cls.__new__(cls)
    try:
        if isinstance(client, poplib.POP3_SSL):
            poplib.POP3_SSL.__init__(client, server.host.strip(), server.port, timeout=timeout,
                                     context=context)
        else:
            poplib.POP3.__init__(client, server.host.strip(), server.port, timeout=timeout)
    except BaseException:
        if getattr(client, "sock", None) is not None:
            client.close()
        raise
    return client


def _pop3_capabilities(client: poplib.POP3) -> dict[str, list[str]]:
    try:
        return client.capa()
    except poplib.error_proto:  # a server without CAPA offers no STLS either
        return {}


def _pop3_sign_in(client: poplib.POP3, server: MailServer, where: str,
                  security: MailSecurity) -> CheckResult:
    connected = f"Connected to {where} {_how(security)}"
    if not server.username:
        return _result(server, True, f"{connected}; no user name given, so no mailbox was opened.")
    try:
        client.user(server.username)
        client.pass_(server.password or "")
    except poplib.error_proto as exc:
        return _result(server, False, f"{connected}, but it refused the sign-in as {server.username}: "
                                      f"{_pop3_reply(server, exc)}")
    count, _size = client.stat()
    return _result(server, True, f"{connected} and signed in as {server.username}: {count} "
                                 f"message{'' if count == 1 else 's'} in the mailbox.")


def _invalid(server: MailServer, timeout: float) -> str | None:
    """What is wrong with the input before any connection is tried; None when nothing is."""
    if not isinstance(server.host, str) or not server.host.strip():
        return "Enter the mail server's host name."
    if isinstance(server.port, bool) or not isinstance(server.port, int) or not 1 <= server.port <= 65535:
        return "The port must be a number from 1 to 65535."
    if server.security not in set(MailSecurity):
        return f"Unknown security setting {server.security!r}: choose None, SSL/TLS or STARTTLS."
    if not timeout > 0:
        return "The timeout must be more than 0 seconds."
    return None


def _tls_context(server: MailServer) -> ssl.SSLContext:
    """Verifying context: the system CA store, or only `cafile` when one is given."""
    return ssl.create_default_context(cafile=server.cafile)


def _transport_problem(exc: OSError | UnicodeError, server: MailServer, timeout: float) -> str:
    """Name a network or TLS failure the way a person configuring the server can act on it."""
    where = _where(server)
    if isinstance(exc, UnicodeError):  # its text would quote the offending character
        return "The user name or password contains characters this server's sign-in cannot send."
    if _timed_out(exc):  # before the rest: a TLS handshake that timed out is an SSLError too
        return f"{where} did not answer within {timeout:g} s."
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"The certificate of {where} was not accepted: {_scrub(server, exc.verify_message)}."
    if isinstance(exc, ssl.SSLError):
        reason = _scrub(server, exc.reason or str(exc))
        plain_port = reason == "WRONG_VERSION_NUMBER"  # what a plain-text greeting looks like to TLS
        hint = " (the port may not speak TLS: try another security setting)" if plain_port else ""
        return f"The TLS handshake with {where} failed: {reason}{hint}."
    if isinstance(exc, ConnectionRefusedError):
        return f"{where} refused the connection: nothing listens there (check the host and port)."
    if isinstance(exc, socket.gaierror):
        return f"The host name {server.host.strip()} could not be resolved."
    if isinstance(exc, smtplib.SMTPException):
        return f"{where}: {_scrub(server, str(exc))}"
    return f"{where} could not be reached: {_scrub(server, str(exc.strerror or exc))}."


def _timed_out(exc: BaseException | None) -> bool:
    """smtplib reports a reply that never came as SMTPServerDisconnected; the timeout is its cause."""
    while exc is not None:
        if isinstance(exc, TimeoutError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _reply(server: MailServer, code: int | None, text: bytes | str) -> str:
    """A server's reply on one line, as it said it (people search the web for these)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = _scrub(server, " ".join(str(text).split()))
    return f"{code} {text}" if code is not None else text


def _pop3_reply(server: MailServer, exc: poplib.error_proto) -> str:
    return _reply(server, None, exc.args[0] if exc.args else "")


def _scrub(server: MailServer, text: str) -> str:
    """Text from outside with the password taken out, should a server ever echo it."""
    return text.replace(server.password, HIDDEN) if server.password else text


def _where(server: MailServer) -> str:
    host = server.host.strip()
    return f"[{host}]:{server.port}" if ":" in host else f"{host}:{server.port}"


def _how(security: MailSecurity) -> str:
    return "without encryption" if security == MailSecurity.NONE else f"with {security.label}"


def _quietly(goodbye: Callable[[], object]) -> None:
    """QUIT is a courtesy: what it says (or that the server already left) changes no result."""
    try:
        goodbye()
    except (OSError, EOFError, poplib.error_proto):
        pass


def _result(server: MailServer, ok: bool, message: str) -> CheckResult:
    log.info("mail server check %s: %s", "passed" if ok else "failed", message)
    return CheckResult(ok, message)
