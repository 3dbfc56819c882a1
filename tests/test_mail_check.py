"""services.mail_check against real servers: aiosmtpd (plain, STARTTLS, implicit TLS) and Dovecot
POP3 (plain, STLS, pop3s) on 127.0.0.1, plus a closed port and a socket that never answers.

Domain tests: no app, no database. The servers start once per session (testing/mail_servers.py);
one that cannot start fails the run in CI and skips these tests loudly elsewhere.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from models.enums import MailSecurity
from services.mail_check import CheckResult, MailServer, check_pop3, check_smtp
from testing.postgres import free_port
from tests.mail_fixtures import PASSWORD, USER

WRONG = "Wr0ng-mail-secret"
HOST = "127.0.0.1"
SECURITIES = list(MailSecurity)


def pop3_port(dovecot, security: MailSecurity) -> int:
    return dovecot.pop3s_port if security == MailSecurity.SSL else dovecot.pop3_port


def server(port: int, security: MailSecurity, certificate=None, username: str | None = USER,
           password: str | None = PASSWORD) -> MailServer:
    return MailServer(HOST, port, security, username, password,
                      cafile=certificate.cafile if certificate else None)


def assert_failed(result: CheckResult, *phrases: str) -> None:
    assert not result.ok, result.message
    for phrase in phrases:
        assert phrase in result.message
    assert PASSWORD not in result.message and WRONG not in result.message
    assert "Traceback" not in result.message


HOW = {MailSecurity.NONE: "without encryption", MailSecurity.SSL: "with SSL/TLS",
       MailSecurity.STARTTLS: "with STARTTLS"}


# --- SMTP -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("security", SECURITIES)
def test_smtp_signs_in(smtp_servers, certificate, security):
    port = smtp_servers[security].port
    result = check_smtp(server(port, security, certificate))
    assert result == CheckResult(True, f"Connected to {HOST}:{port} {HOW[security]} and signed in as {USER}.")


def test_smtp_without_user_name_only_connects(smtp_servers, certificate):
    port = smtp_servers[MailSecurity.STARTTLS].port
    result = check_smtp(server(port, MailSecurity.STARTTLS, certificate, username=None, password=None))
    assert result.ok and "no sign-in was tried" in result.message


@pytest.mark.parametrize("security", SECURITIES)
def test_smtp_wrong_password_shows_the_servers_refusal(smtp_servers, certificate, security):
    result = check_smtp(server(smtp_servers[security].port, security, certificate, password=WRONG))
    assert_failed(result, f"refused the sign-in as {USER}", "535 5.7.8 Authentication credentials invalid")


def test_smtp_untrusted_certificate_is_refused(smtp_servers):
    """Without the test CA the self-signed certificate must fail: verification is on by default."""
    result = check_smtp(server(smtp_servers[MailSecurity.SSL].port, MailSecurity.SSL))
    assert_failed(result, "certificate", "not accepted", "self-signed certificate")


def test_smtp_server_without_starttls(smtp_servers, certificate):
    result = check_smtp(server(smtp_servers[MailSecurity.NONE].port, MailSecurity.STARTTLS, certificate))
    assert_failed(result, "does not offer STARTTLS")


def test_smtp_plain_connection_to_a_server_that_wants_tls_first(smtp_servers):
    result = check_smtp(server(smtp_servers[MailSecurity.STARTTLS].port, MailSecurity.NONE))
    assert_failed(result, "offers no sign-in (AUTH)", "may require TLS")


def test_smtp_implicit_tls_on_a_plain_port(smtp_servers, certificate):
    result = check_smtp(server(smtp_servers[MailSecurity.NONE].port, MailSecurity.SSL, certificate))
    assert_failed(result, "TLS handshake", "WRONG_VERSION_NUMBER")


# --- POP3 -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("security", SECURITIES)
def test_pop3_signs_in_and_counts_messages(dovecot, certificate, security):
    port = pop3_port(dovecot, security)
    result = check_pop3(server(port, security, certificate))
    assert result == CheckResult(True, f"Connected to {HOST}:{port} {HOW[security]} and signed in as "
                                       f"{USER}: 2 messages in the mailbox.")


def test_pop3_without_user_name_only_connects(dovecot, certificate):
    result = check_pop3(server(dovecot.pop3s_port, MailSecurity.SSL, certificate, username=None,
                               password=None))
    assert result.ok and "no mailbox was opened" in result.message


def test_pop3_wrong_password_shows_the_servers_refusal(dovecot, certificate):
    """Dovecot answers a refused sign-in after 2 s: well inside the default 5 s."""
    result = check_pop3(server(dovecot.pop3s_port, MailSecurity.SSL, certificate, password=WRONG))
    assert_failed(result, f"refused the sign-in as {USER}", "-ERR [AUTH] Authentication failed.")


def test_pop3_untrusted_certificate_is_refused(dovecot):
    result = check_pop3(server(dovecot.pop3s_port, MailSecurity.SSL))
    assert_failed(result, "certificate", "not accepted", "self-signed certificate")


# --- both protocols -------------------------------------------------------------------------------

CHECKS = [pytest.param(check_smtp, id="smtp"), pytest.param(check_pop3, id="pop3")]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("security", [MailSecurity.NONE, MailSecurity.SSL])
def test_closed_port_is_refused_at_once(check, security):
    port = free_port()  # bound and released: nothing listens there
    started = time.monotonic()
    result = check(server(port, security))
    assert time.monotonic() - started < 1
    assert_failed(result, f"{HOST}:{port} refused the connection")


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("security", [MailSecurity.NONE, MailSecurity.SSL])
def test_silent_server_is_reported_after_the_timeout(check, security, silent_port):
    """A hung server (greeting or TLS handshake that never comes) is an answer too, after `timeout`."""
    started = time.monotonic()
    result = check(server(silent_port, security), timeout=1)
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 2, elapsed
    assert_failed(result, f"{HOST}:{silent_port} did not answer within 1 s.")


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize(("host", "port", "message"), [
    ("", 25, "Enter the mail server's host name."),
    ("   ", 25, "Enter the mail server's host name."),
    (HOST, 0, "The port must be a number from 1 to 65535."),
    (HOST, 65536, "The port must be a number from 1 to 65535."),
])
def test_invalid_input_is_a_result_not_an_exception(check, host, port, message):
    assert check(MailServer(host, port, MailSecurity.NONE, USER, PASSWORD)) == CheckResult(False, message)


def test_the_password_appears_in_no_repr_and_no_log(smtp_servers, dovecot, certificate, caplog):
    caplog.set_level(logging.DEBUG, logger="services.mail_check")
    assert PASSWORD not in repr(server(1, MailSecurity.NONE))
    check_smtp(server(smtp_servers[MailSecurity.SSL].port, MailSecurity.SSL, certificate))
    check_pop3(server(dovecot.pop3_port, MailSecurity.STARTTLS, certificate))
    check_smtp(server(smtp_servers[MailSecurity.NONE].port, MailSecurity.NONE, password=WRONG))
    assert "signed in as alice" in caplog.text
    assert PASSWORD not in caplog.text and WRONG not in caplog.text


def test_a_server_echoing_the_password_has_it_taken_out():
    """A (broken) POP3 server that quotes the PASS line in its refusal."""
    listener = socket.create_server((HOST, 0))
    port = listener.getsockname()[1]

    def serve_once():
        connection, _ = listener.accept()
        with connection, connection.makefile("rwb") as stream:
            stream.write(b"+OK ready\r\n")
            stream.flush()
            for line in stream:
                answer = b"+OK\r\n" if line.startswith(b"USER") else b"-ERR refused " + line.strip() + b"\r\n"
                stream.write(answer)
                stream.flush()
                if not answer.startswith(b"+OK"):
                    break

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    try:
        result = check_pop3(server(port, MailSecurity.NONE), timeout=2)
    finally:
        thread.join(5)
        listener.close()
    assert_failed(result, "-ERR refused PASS [password]")
