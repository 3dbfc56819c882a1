"""Helpers of tests/test_attacks_issue17_portal.py: a POP3 server run by a hostile customer (it lies
about a mail's size and then floods, or drips a line now and then so no single read times out),
mail delivered straight to the intake's decision (services.mail_intake.receive, in the unit of
work the POP3 door gives each mail), hostile mails, and the time a call takes."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from extensions import db
from models import OutgoingMail
from models.enums import MailSecurity
from services.mail_intake import IntakeScope, Limits, Received, read_mail, receive
from services.mail_out import thread_id
from services.mail_send import compose
from services.pop3_reader import ReadRules, fetch_all
from services.transactions import hold_transaction, unit_of_work
from testing import pop3_mailbox as mails
from tests.intake_fixtures import enable

ROOT = Path(__file__).resolve().parent.parent


def deliver(session, app, raw: bytes, scope: IntakeScope | None = None) -> Received:
    """One mail decided as services.pop3_reader does it: read, then one unit of work."""
    limits = Limits.of(app.config)
    incoming = read_mail(raw, limits)
    with unit_of_work(session):
        hold_transaction(session)
        return receive(session, scope or IntakeScope(), incoming, limits)


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


class HostilePop3:
    """A POP3 server with one mail whose LIST size is `claimed` bytes. Its RETR either floods
    (`flood` bytes of 1,000-byte lines, then the end of the mail) or drips (a line every
    `interval` seconds for `drip_for` seconds, then the end). `sent` counts the bytes of the
    mail the client took; `sessions` the connections it served."""

    def __init__(self, *, claimed: int = 120, flood: int = 0, drip_for: float = 0.0, interval: float = 0.4):
        self.claimed, self.flood, self.drip_for, self.interval = claimed, flood, drip_for, interval
        self.sent = 0
        self.sessions = 0
        self._stop = threading.Event()
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(4)
        self._socket.settimeout(0.2)
        self.port: int = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            self.sessions += 1
            try:
                self._talk(connection)
            except OSError:
                pass
            finally:
                connection.close()

    def _talk(self, connection: socket.socket) -> None:
        connection.settimeout(30)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        reader = connection.makefile("rb")
        connection.sendall(b"+OK hostile POP3 ready\r\n")
        for line in reader:
            words = line.split()
            command = words[0].upper() if words else b""
            if command in (b"USER", b"PASS", b"DELE", b"NOOP", b"RSET"):
                connection.sendall(b"+OK\r\n")
            elif command == b"STAT":
                connection.sendall(b"+OK 1 %d\r\n" % self.claimed)
            elif command == b"LIST":
                connection.sendall(b"+OK 1 message\r\n1 %d\r\n.\r\n" % self.claimed)
            elif command == b"RETR":
                self._retr(connection)
            elif command == b"TOP":
                connection.sendall(b"+OK\r\n" + self._headers() + b".\r\n")
            elif command == b"QUIT":
                connection.sendall(b"+OK bye\r\n")
                return
            else:
                connection.sendall(b"-ERR not here\r\n")
            if self._stop.is_set():
                return

    def _headers(self) -> bytes:
        return (b"From: stranger@hostile.example\r\nTo: desk@intake.example\r\nSubject: Hostile\r\n"
                b"Message-ID: <hostile-1@hostile.example>\r\n\r\n")

    def _retr(self, connection: socket.socket) -> None:
        connection.sendall(b"+OK\r\n" + self._headers())
        line = b"x" * 998 + b"\r\n"
        if self.flood:
            chunk = line * 64
            while self.sent < self.flood and not self._stop.is_set():
                connection.sendall(chunk)  # raises once the client has hung up
                self.sent += len(chunk)
        elif self.drip_for:
            until = time.monotonic() + self.drip_for
            while time.monotonic() < until and not self._stop.is_set():
                connection.sendall(b"still coming\r\n")
                self.sent += 14
                time.sleep(self.interval)
        connection.sendall(b"Done.\r\n.\r\n")


# --- mail the tests send ----------------------------------------------------------------------------

def runs_within(seconds: float, code: str) -> bool:
    """Whether `code` finishes within `seconds` in a Python of its own (a regex or a parser that
    never ends holds the GIL: run in the test's process it would stop the whole test run)."""
    try:
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=seconds, check=True,
                       capture_output=True)
    except subprocess.TimeoutExpired:
        return False
    return True


def hostile_mail(sender: str, subject: str) -> bytes:
    """An HTML mail with script in its sender's name, its text and an SVG attachment's name and bytes."""
    mail = EmailMessage(policy=SMTP)
    mail["From"] = f'"<script>alert(\'name\')</script>" <{sender}>'
    mail["To"] = mails.INTAKE
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid("xss", domain="hostile.example")
    mail.set_content('<p>Hello</p><a href="javascript:alert(2)">click me</a><script>alert(3)</script>',
                     subtype="html")
    mail.add_attachment(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(4)"/>', maintype="image",
                        subtype="svg+xml", filename="<svg onload=alert(5)>.svg")
    return mail.as_bytes()


def hostile_names_mail(names: list[bytes]) -> bytes:
    """A mail whose subject hides a line break, whose text is UTF-7 script, and whose attachments
    carry the Content-Disposition parameters `names` as they are."""
    parts = b"".join(b"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
                     + name + b"\r\n\r\ndata\r\n" for name in names)
    return (b"From: mia@acme.example\r\nTo: desk@intake.example\r\nSubject: =?utf-8?q?a=0D=0ABcc:_x@y?=\r\n"
            b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: text/plain; charset=utf-7\r\n\r\n"
            b"+ADw-script+AD4-alert(1)+ADw-/script+AD4-\r\n" + parts + b"--b--\r\n")


def answer_to(copy: OutgoingMail, body: str) -> bytes:
    """What the recipient's mailbox sends back to one of our copies (a reply, a forward rule)."""
    return mails.reply(copy.recipient_email, f"Re: {copy.subject}", body, in_reply_to=copy.message_id,
                       references=f"{thread_id(copy.request)} {copy.message_id}")


def came_back(copy: OutgoingMail) -> bytes:
    """Our copy as we send it (From the desk's address), delivered to the intake again."""
    return compose(copy, Address("Customer Desk", addr_spec=mails.INTAKE), None, datetime.now(UTC)).as_bytes()


def own_mailbox_at(session, app, customer, server: HostilePop3) -> None:
    """The customer's own POP3 mailbox is `server` (any host allowed, a 1 s timeout per read)."""
    app.config.update(MAIL_OWN_SERVER_REACH="any", MAIL_POP3_TIMEOUT=1)
    enable(session, app, customer, use_builtin_mail_servers=False, pop3_host="127.0.0.1",
           pop3_port=server.port, pop3_security=MailSecurity.NONE.value, pop3_username="acme",
           pop3_password="Acme-pop3-secret", smtp_primary_host="127.0.0.1")


def fetch(app) -> list:
    return fetch_all(db.session, app.extensions["secret_box"], ReadRules.of(app.config))
