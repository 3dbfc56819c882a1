"""Mail for a real Dovecot mailbox (testing.mail_servers.DovecotPop3): builders of the raw
messages a desk meets — plain, HTML, with attachments, replies, without a Message-ID, with broken
MIME, huge — and `Maildir`, which delivers them as a mail server would (tmp/ then new/)."""

from __future__ import annotations

import itertools
import os
import shutil
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path

from testing.mail_servers import DovecotPop3

INTAKE = "desk@intake.example"
_counter = itertools.count(1)


class Maildir:
    """The maildir of the Dovecot user: `drop(raw)` delivers, `clear()` empties, `count()` says
    how many mails the mailbox still holds (POP3 deletions are gone at QUIT)."""

    def __init__(self, server: DovecotPop3):
        self.server = server
        self.root = server.root / "mail" / server.username

    def drop(self, raw: bytes) -> Path:
        tmp, new = self.root / "tmp", self.root / "new"
        for folder in (tmp, new):
            if not folder.exists():
                folder.mkdir(parents=True)
                self._own(folder)
        name = f"{int(time.time())}.M{next(_counter)}P{os.getpid()}.cd-test"
        (tmp / name).write_bytes(raw)
        self._own(tmp / name)
        os.rename(tmp / name, new / name)
        return new / name

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:  # Dovecot serves the mailbox as nobody (it refuses uid 0)
            shutil.chown(path, "nobody", "nogroup")

    def files(self) -> list[Path]:
        return [path for folder in ("new", "cur") if (self.root / folder).exists()
                for path in sorted((self.root / folder).iterdir()) if path.is_file()]

    def count(self) -> int:
        return len(self.files())

    def clear(self) -> None:
        for path in self.files():
            path.unlink()


def message(sender: str, subject: str, body: str = "Hello.", *, to: str = INTAKE,
            message_id: str | None = "auto", headers: dict[str, str] | None = None) -> EmailMessage:
    """A plain-text mail. `message_id=None`: none at all (its key is then the digest of its bytes)."""
    mail = EmailMessage(policy=SMTP)
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(datetime.now(UTC))
    if message_id == "auto":
        message_id = make_msgid("test", domain="sender.example")
    if message_id is not None:
        mail["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(body)
    return mail


def plain(sender: str, subject: str, body: str = "Hello.", **kw) -> bytes:
    return message(sender, subject, body, **kw).as_bytes()


def html(sender: str, subject: str, markup: str, *, plain_too: str | None = None, **kw) -> bytes:
    """An HTML mail; with `plain_too`, multipart/alternative with that text part as well."""
    mail = message(sender, subject, plain_too or "", **kw)
    if plain_too is None:
        mail.set_content(markup, subtype="html")
    else:
        mail.add_alternative(markup, subtype="html")
    return mail.as_bytes()


def with_attachments(sender: str, subject: str, body: str, files: list[tuple[str, str, bytes]],
                     **kw) -> bytes:
    """A mail with attachments: (filename, content type "main/sub", data)."""
    mail = message(sender, subject, body, **kw)
    for filename, content_type, data in files:
        main, sub = content_type.split("/", 1)
        mail.add_attachment(data, maintype=main, subtype=sub, filename=filename)
    return mail.as_bytes()


def reply(sender: str, subject: str, body: str, *, in_reply_to: str | None = None,
          references: str | None = None, **kw) -> bytes:
    headers = dict(kw.pop("headers", None) or {})
    if in_reply_to:
        headers["In-Reply-To"] = in_reply_to
    if references:
        headers["References"] = references
    return plain(sender, subject, body, headers=headers, **kw)


def malformed(sender: str, subject: str) -> bytes:
    """A multipart whose boundary never appears in its body."""
    return (f"From: {sender}\r\nTo: {INTAKE}\r\nSubject: {subject}\r\n"
            f"Message-ID: {make_msgid('broken', domain='sender.example')}\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="never-there"\r\n\r\n'
            "Some text that belongs to no part.\r\n\x00NUL and \x1bescape too.\r\n").encode()


def huge(sender: str, subject: str, size: int, **kw) -> bytes:
    """A plain mail of about `size` bytes (lines of 76 characters, as base64 would have)."""
    line = ("x" * 75) + "\n"
    return plain(sender, subject, line * (size // len(line) + 1), **kw)
