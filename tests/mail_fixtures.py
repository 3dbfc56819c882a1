"""Session fixtures starting real mail servers on 127.0.0.1 (testing/mail_servers.py), shared by
the mail-check tests and the wizard's "Test connection" tests. A server that cannot start fails
the run in CI and skips its tests loudly elsewhere."""

from __future__ import annotations

import pytest

from models.enums import MailSecurity
from testing.mail_servers import (
    DovecotPop3,
    MailServerUnavailable,
    SilentServer,
    SmtpServer,
    make_certificate,
)
from tests.conftest import started, unavailable

USER = "alice"
PASSWORD = "Tr0ub4dor-mail-secret"
SECURITIES = list(MailSecurity)


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    try:
        return make_certificate(tmp_path_factory.mktemp("mail-cert"))
    except MailServerUnavailable as exc:
        reason = str(exc)
    unavailable(f"mail servers: {reason}")


@pytest.fixture(scope="session")
def smtp_servers(certificate):
    servers: dict[MailSecurity, SmtpServer] = {}
    try:
        for security in SECURITIES:
            servers[security] = SmtpServer(security, certificate, USER, PASSWORD).start()
    except MailServerUnavailable as exc:
        reason = str(exc)
    else:
        reason = ""
    if reason:
        for server in servers.values():
            server.stop()
        unavailable(f"SMTP (aiosmtpd): {reason}")
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def dovecot(certificate):
    server = started(lambda: DovecotPop3(certificate, USER, PASSWORD, messages=2).start(),
                     MailServerUnavailable, "POP3 (Dovecot)")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def silent_port():
    server = SilentServer()
    yield server.port
    server.stop()
