"""An SMTP server for tests that keeps what it is sent: testing.mail_servers.SmtpServer (aiosmtpd,
one user, plain / STARTTLS / implicit TLS, the shared self-signed certificate) with a handler that
records each message's envelope and parsed content — and can be told to refuse, or to be slow.

    server = CapturingSmtp(MailSecurity.STARTTLS, certificate, "alice", "secret").start()
    ... send ...
    [mail] = server.captured
    mail.recipients, mail.message["Subject"]

`refuse_recipients` / `refuse_data` set an SMTP reply ("451 4.3.0 Try again later", "550 5.1.1
No such user") the server gives to every RCPT / DATA until cleared; `data_delay` holds each DATA
for that many seconds before its answer (a slow server, for races between workers).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from models.enums import MailSecurity
from testing.mail_servers import Certificate, SmtpServer


@dataclass(frozen=True)
class Captured:
    sender: str  # MAIL FROM
    recipients: tuple[str, ...]  # RCPT TO, as the server accepted them
    message: EmailMessage
    raw: bytes

    @property
    def headers(self) -> list[str]:
        """Header names in order, as sent (a header injected by a line break would show here)."""
        return [name for name, _ in self.message.raw_items()]


class CapturingSmtp(SmtpServer):
    def __init__(self, security: MailSecurity, certificate: Certificate, username: str, password: str):
        self._lock = threading.Lock()
        self._captured: list[Captured] = []
        self.refuse_recipients: str | None = None
        self.refuse_data: str | None = None
        self.data_delay = 0.0
        super().__init__(security, certificate, username, password)

    def _make_controller(self, certificate: Certificate, username: str, password: str):
        controller = super()._make_controller(certificate, username, password)
        controller.handler = _Capture(self)  # the same server, keeping what it accepts
        return controller

    @property
    def captured(self) -> list[Captured]:
        with self._lock:
            return list(self._captured)

    def keep(self, mail: Captured) -> None:
        with self._lock:
            self._captured.append(mail)

    def reset(self) -> None:
        """Forget what was captured and answer normally again."""
        with self._lock:
            self._captured.clear()
        self.refuse_recipients = self.refuse_data = None
        self.data_delay = 0.0


class _Capture:
    def __init__(self, owner: CapturingSmtp):
        self.owner = owner

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if self.owner.refuse_recipients:
            return self.owner.refuse_recipients
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.owner.data_delay:
            await asyncio.sleep(self.owner.data_delay)
        if self.owner.refuse_data:
            return self.owner.refuse_data
        raw = bytes(envelope.original_content or envelope.content)
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.owner.keep(Captured(envelope.mail_from, tuple(envelope.rcpt_tos), message, raw))
        return "250 OK"
