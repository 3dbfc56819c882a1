"""services.mail_check against real servers: aiosmtpd (plain, STARTTLS, implicit TLS) and Dovecot
POP3 (plain, STLS, pop3s) on 127.0.0.1, plus a closed port and a socket that never answers.

Domain tests: no app, no database. The servers start once per session (testing/mail_servers.py);
one that cannot start fails the run in CI and skips these tests loudly elsewhere. The servers live
on loopback and on ports of their own, which only a maintainer's test reaches (`Reach.ANY`); what
an operator's test may reach is tested at the end (and in tests/test_outbound_policy.py).
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from models.enums import MailSecurity
from services.mail_check import CheckResult, MailServer, check_pop3, check_smtp
from services.outbound_policy import Outcome, Reach
from testing.postgres import free_port
from tests.mail_fixtures import PASSWORD, USER

WRONG = "Wr0ng-mail-secret"
HOST = "127.0.0.1"
SECURITIES = list(MailSecurity)
ANY = Reach.ANY


def pop3_port(dovecot, security: MailSecurity) -> int:
    return dovecot.pop3s_port if security == MailSecurity.SSL else dovecot.pop3_port


def server(port: int, security: MailSecurity, certificate=None, username: str | None = USER,
           password: str | None = PASSWORD, host: str = HOST) -> MailServer:
    return MailServer(host, port, security, username, password,
                      cafile=certificate.cafile if certificate else None)


def assert_failed(result: CheckResult, outcome: Outcome, *phrases: str) -> None:
    assert not result.ok, result.message
    assert result.outcome == outcome, result
    for phrase in phrases:
        assert phrase in result.message
    assert PASSWORD not in result.message and WRONG not in result.message
    assert "Traceback" not in result.message


HOW = {MailSecurity.NONE: "without encryption", MailSecurity.SSL: "with SSL/TLS",
       MailSecurity.STARTTLS: "with STARTTLS"}
REFUSED = "refused the connection: check the host, the port and the security setting."


# --- SMTP -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("security", SECURITIES)
def test_smtp_signs_in(smtp_servers, certificate, security):
    port = smtp_servers[security].port
    result = check_smtp(server(port, security, certificate), reach=ANY)
    assert result == CheckResult(True, f"Connected to {HOST}:{port} {HOW[security]} and signed in as {USER}.",
                                 Outcome.CONNECTED)


def test_smtp_without_user_name_only_connects(smtp_servers, certificate):
    port = smtp_servers[MailSecurity.STARTTLS].port
    result = check_smtp(server(port, MailSecurity.STARTTLS, certificate, username=None, password=None),
                        reach=ANY)
    assert result.ok and "no sign-in was tried" in result.message


@pytest.mark.parametrize("security", SECURITIES)
def test_smtp_wrong_password_is_said_without_the_servers_words(smtp_servers, certificate, security):
    result = check_smtp(server(smtp_servers[security].port, security, certificate, password=WRONG), reach=ANY)
    assert_failed(result, Outcome.WRONG_PASSWORD, f"refused the sign-in as {USER}: check the user name and")
    assert "535" not in result.message and "Authentication" not in result.message


def test_smtp_untrusted_certificate_is_refused(smtp_servers):
    """Without the test CA the self-signed certificate must fail: verification is on by default."""
    result = check_smtp(server(smtp_servers[MailSecurity.SSL].port, MailSecurity.SSL), reach=ANY)
    assert_failed(result, Outcome.UNTRUSTED_CERTIFICATE, "certificate", "is not trusted")
    assert "self-signed" not in result.message  # the TLS library's words stay out too


def test_a_certificate_for_another_name_is_untrusted(smtp_servers, certificate, monkeypatch):
    """The test certificate names localhost and 127.0.0.1, not mail.example (which resolves to it here)."""
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **kw: real(
        HOST if host == "mail.example" else host, *a, **kw))
    result = check_smtp(server(smtp_servers[MailSecurity.SSL].port, MailSecurity.SSL, certificate,
                               host="mail.example"), reach=ANY)
    assert_failed(result, Outcome.UNTRUSTED_CERTIFICATE, "mail.example", "not for this host name")


def test_smtp_server_without_starttls(smtp_servers, certificate):
    result = check_smtp(server(smtp_servers[MailSecurity.NONE].port, MailSecurity.STARTTLS, certificate),
                        reach=ANY)
    assert_failed(result, Outcome.REFUSED, REFUSED)


def test_smtp_plain_connection_to_a_server_that_wants_tls_first(smtp_servers):
    result = check_smtp(server(smtp_servers[MailSecurity.STARTTLS].port, MailSecurity.NONE), reach=ANY)
    assert_failed(result, Outcome.WRONG_PASSWORD, "refused the sign-in", "try SSL/TLS or STARTTLS")


def test_smtp_implicit_tls_on_a_plain_port(smtp_servers, certificate):
    result = check_smtp(server(smtp_servers[MailSecurity.NONE].port, MailSecurity.SSL, certificate),
                        reach=ANY)
    assert_failed(result, Outcome.REFUSED, REFUSED)
    assert "WRONG_VERSION_NUMBER" not in result.message


# --- POP3 -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("security", SECURITIES)
def test_pop3_signs_in_and_counts_messages(dovecot, certificate, security):
    port = pop3_port(dovecot, security)
    result = check_pop3(server(port, security, certificate), reach=ANY)
    assert result == CheckResult(True, f"Connected to {HOST}:{port} {HOW[security]} and signed in as "
                                       f"{USER}: 2 messages in the mailbox.", Outcome.CONNECTED)


def test_pop3_without_user_name_only_connects(dovecot, certificate):
    result = check_pop3(server(dovecot.pop3s_port, MailSecurity.SSL, certificate, username=None,
                               password=None), reach=ANY)
    assert result.ok and "no mailbox was opened" in result.message


def test_pop3_wrong_password_is_said_without_the_servers_words(dovecot, certificate):
    """Dovecot answers a refused sign-in after 2 s: well inside the default 5 s."""
    result = check_pop3(server(dovecot.pop3s_port, MailSecurity.SSL, certificate, password=WRONG), reach=ANY)
    assert_failed(result, Outcome.WRONG_PASSWORD, f"refused the sign-in as {USER}")
    assert "-ERR" not in result.message and "[AUTH]" not in result.message


def test_pop3_untrusted_certificate_is_refused(dovecot):
    result = check_pop3(server(dovecot.pop3s_port, MailSecurity.SSL), reach=ANY)
    assert_failed(result, Outcome.UNTRUSTED_CERTIFICATE, "certificate", "is not trusted")


# --- both protocols -------------------------------------------------------------------------------

CHECKS = [pytest.param(check_smtp, id="smtp"), pytest.param(check_pop3, id="pop3")]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("security", [MailSecurity.NONE, MailSecurity.SSL])
def test_closed_port_is_refused_at_once(check, security):
    port = free_port()  # bound and released: nothing listens there
    result = check(server(port, security), reach=ANY)  # said as refused, not as a timeout
    assert_failed(result, Outcome.REFUSED, f"{HOST}:{port} {REFUSED}")


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("security", [MailSecurity.NONE, MailSecurity.SSL])
def test_silent_server_is_reported_after_the_timeout(check, security, silent_port):
    """A hung server (greeting or TLS handshake that never comes) is an answer too, after `timeout`."""
    started = time.monotonic()
    result = check(server(silent_port, security), timeout=1, reach=ANY)
    elapsed = time.monotonic() - started
    assert elapsed > 0.9, elapsed  # it waited for the server (how long beyond depends on the load)
    assert_failed(result, Outcome.NO_ANSWER, f"{HOST}:{silent_port} did not answer within 1 s.")


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize(("host", "port", "message", "field"), [
    ("", 25, "Enter the mail server's host name.", "host"),
    ("   ", 25, "Enter the mail server's host name.", "host"),
    (HOST, 0, "The port must be a number from 1 to 65535.", "port"),
    (HOST, 65536, "The port must be a number from 1 to 65535.", "port"),
])
def test_invalid_input_is_a_result_not_an_exception(check, host, port, message, field):
    assert check(MailServer(host, port, MailSecurity.NONE, USER, PASSWORD), reach=ANY) == CheckResult(
        False, message, Outcome.INVALID, field)


def test_the_password_appears_in_no_repr_and_no_log(smtp_servers, dovecot, certificate, caplog):
    caplog.set_level(logging.DEBUG, logger="services.mail_check")
    assert PASSWORD not in repr(server(1, MailSecurity.NONE))
    check_smtp(server(smtp_servers[MailSecurity.SSL].port, MailSecurity.SSL, certificate), reach=ANY)
    check_pop3(server(dovecot.pop3_port, MailSecurity.STARTTLS, certificate), reach=ANY)
    check_smtp(server(smtp_servers[MailSecurity.NONE].port, MailSecurity.NONE, password=WRONG), reach=ANY)
    assert "signed in as alice" in caplog.text
    assert PASSWORD not in caplog.text and WRONG not in caplog.text


def serve_once(lines):
    """A listener on 127.0.0.1 that sends `lines(received)` answers to one client; (port, stop)."""
    listener = socket.create_server((HOST, 0))

    def serve():
        connection, _ = listener.accept()
        with connection, connection.makefile("rwb") as stream:
            for answer in lines(stream):
                stream.write(answer)
                stream.flush()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def stop():
        thread.join(5)
        listener.close()
    return listener.getsockname()[1], stop


def test_a_server_echoing_the_password_is_not_quoted():
    """A (broken) POP3 server that quotes the PASS line in its refusal."""
    def talk(stream):
        yield b"+OK ready\r\n"
        for line in stream:
            if line.startswith(b"USER"):
                yield b"+OK\r\n"
            else:
                yield b"-ERR refused " + line.strip() + b"\r\n"
                return

    port, stop = serve_once(talk)
    try:
        result = check_pop3(server(port, MailSecurity.NONE), timeout=2, reach=ANY)
    finally:
        stop()
    assert_failed(result, Outcome.WRONG_PASSWORD, f"refused the sign-in as {USER}")
    assert "PASS" not in result.message and "-ERR" not in result.message


@pytest.mark.parametrize("check", CHECKS)
def test_another_service_on_the_port_is_a_refusal_and_its_banner_is_not_echoed(check):
    """What the attack saw: Test connection pointed at an SSH server answered its banner."""
    banner = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
    port, stop = serve_once(lambda stream: iter([banner]))
    try:
        result = check(server(port, MailSecurity.NONE, username=None), timeout=2, reach=ANY)
    finally:
        stop()
    assert_failed(result, Outcome.REFUSED, REFUSED)
    assert "SSH" not in result.message and "OpenSSH" not in result.message


def test_a_pop3_server_answering_nonsense_is_a_refusal_not_an_exception():
    def talk(stream):
        yield b"+OK ready\r\n"
        for line in stream:
            yield b"+OK not-a-number whatever\r\n" if line.startswith(b"STAT") else b"+OK\r\n"
            if line.startswith(b"STAT"):
                return

    port, stop = serve_once(talk)
    try:
        result = check_pop3(server(port, MailSecurity.NONE), timeout=2, reach=ANY)
    finally:
        stop()
    assert_failed(result, Outcome.REFUSED, REFUSED)


# --- what an operator's test may reach ------------------------------------------------------------

@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "::ffff:127.0.0.1", "0.0.0.0",
                                  "169.254.169.254", "169.254.10.20", "fe80::1", "224.0.0.1"])
def test_an_operator_never_reaches_local_addresses(check, host, smtp_servers):
    port = 25 if check is check_smtp else 110
    result = check(server(port, MailSecurity.NONE, host=host), timeout=1)  # Reach.LIMITED by default
    assert_failed(result, Outcome.NOT_ALLOWED, "is a local address", "Ask a maintainer")
    assert result.field == "host"


@pytest.mark.parametrize(("check", "port"), [(check_smtp, 22), (check_smtp, 110), (check_smtp, 6379),
                                             (check_pop3, 25), (check_pop3, 143), (check_pop3, 5432)])
def test_an_operator_reaches_only_the_protocols_ports(check, port):
    result = check(server(port, MailSecurity.NONE, host="192.0.2.10"), timeout=1)
    assert_failed(result, Outcome.NOT_ALLOWED, f"Port {port} is not a", "Test connection tries only")
    assert result.field == "port"


def test_the_metadata_address_is_refused_even_to_a_maintainer():
    result = check_smtp(server(25, MailSecurity.NONE, host="169.254.169.254"), timeout=1, reach=ANY)
    assert_failed(result, Outcome.NOT_ALLOWED, "is a local address")


def test_an_operator_may_try_an_ordinary_address_on_a_mail_port():
    """192.0.2.10 (TEST-NET-1) is routed nowhere: tried, and nothing answers — but not refused."""
    result = check_smtp(server(587, MailSecurity.NONE, host="192.0.2.10"), timeout=1)
    assert_failed(result, Outcome.NO_ANSWER, "192.0.2.10:587 did not answer within 1 s.")


def test_a_host_name_that_does_not_resolve():
    result = check_smtp(server(25, MailSecurity.NONE, host="no-such-host.invalid"), timeout=1)
    assert_failed(result, Outcome.HOST_NOT_FOUND, "The host name no-such-host.invalid could not be resolved.")


def test_the_connection_goes_to_the_address_that_was_checked(smtp_servers, certificate, monkeypatch):
    """DNS rebinding: the name answers 127.0.0.1 when checked and the metadata address afterwards.
    The test connects to the checked address (and checks the certificate against the typed name)."""
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1"] + ["169.254.169.254"] * 10)

    def rebinding(host, port, *args, **kwargs):
        if host == "localhost":
            return real(next(answers), port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    port = smtp_servers[MailSecurity.SSL].port
    result = check_smtp(server(port, MailSecurity.SSL, certificate, host="localhost"), timeout=1, reach=ANY)
    assert result.ok, result.message
    assert next(answers) == "169.254.169.254"  # resolved once only
