"""Real mail servers for tests, on 127.0.0.1 and free ports: aiosmtpd for SMTP (in this process,
one thread each) and Dovecot for POP3 (our own process with its own configuration and folders,
never the system's service), sharing one self-signed certificate made with openssl.

Uses Debian's dovecot-pop3d and openssl (`make test` installs them when run as root); a missing
program raises MailServerUnavailable with what to install.
"""

from __future__ import annotations

import grp
import hmac
import logging
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from models.enums import MailSecurity
from testing.postgres import free_port
from testing.processes import listening, stop_process

DOVECOT = "/usr/sbin/dovecot"


class MailServerUnavailable(RuntimeError):
    """A program is missing or a server did not start; the message says why."""


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for localhost and 127.0.0.1; clients trust it as `cafile`."""

    cert: Path
    key: Path

    @property
    def cafile(self) -> str:
        return str(self.cert)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_certificate(folder: Path) -> Certificate:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise MailServerUnavailable("openssl not found: install Debian's openssl package.")
    cert, key = folder / "cert.pem", folder / "key.pem"
    result = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise MailServerUnavailable(f"openssl could not make a certificate: {result.stderr.strip()}")
    return Certificate(cert, key)


class SmtpServer:
    """aiosmtpd accepting one user, in one of three flavours:
    NONE (plain; AUTH allowed without TLS), STARTTLS (required before MAIL and AUTH),
    SSL (implicit TLS from the first byte)."""

    def __init__(self, security: MailSecurity, certificate: Certificate, username: str, password: str):
        self.security = security
        self.port = free_port()
        self._controller = self._make_controller(certificate, username, password)

    def _make_controller(self, certificate: Certificate, username: str, password: str):
        try:
            from aiosmtpd.controller import Controller
        except ImportError as exc:
            raise MailServerUnavailable("aiosmtpd is not installed: pip install -e '.[test]'.") from exc
        options: dict = {"authenticator": _OneUser(username, password),
                         "server_hostname": "localhost"}  # else aiosmtpd asks DNS for our own name
        if self.security == MailSecurity.NONE:
            options["auth_require_tls"] = False
        elif self.security == MailSecurity.STARTTLS:
            options.update(tls_context=certificate.server_context(), require_starttls=True)
        else:
            # aiosmtpd only counts STARTTLS as TLS, so AUTH over implicit TLS needs this.
            options.update(ssl_context=certificate.server_context(), auth_require_tls=False)
        return Controller(_Sink(), hostname="127.0.0.1", port=self.port, **options)

    def start(self) -> SmtpServer:
        _quiet_login_data_notice()
        try:
            self._controller.start()
        except Exception as exc:
            raise MailServerUnavailable(f"aiosmtpd did not start on port {self.port}: {exc}") from exc
        return self

    def stop(self) -> None:
        self._controller.stop(no_assert=True)


class _LoginDataNotice(logging.Filter):
    """aiosmtpd 1.4 logs "Session.login_data is deprecated" at WARNING on every successful AUTH:
    its own smtp_AUTH still sets that legacy attribute, so there is nothing of ours to change."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Session.login_data is deprecated" not in record.getMessage()


def _quiet_login_data_notice() -> None:
    logger = logging.getLogger("mail.log")  # aiosmtpd's logger
    if not any(isinstance(f, _LoginDataNotice) for f in logger.filters):
        logger.addFilter(_LoginDataNotice())


class _Sink:
    """Accepts messages and keeps none: the checks never send one."""

    async def handle_DATA(self, server, session, envelope) -> str:
        return "250 OK"


class _OneUser:
    """aiosmtpd authenticator for one user name and password."""

    def __init__(self, username: str, password: str):
        self.username, self.password = username.encode(), password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if (isinstance(auth_data, LoginPassword) and auth_data.login == self.username
                and hmac.compare_digest(auth_data.password, self.password)):
            return AuthResult(success=True)
        # handled=False makes aiosmtpd answer 535; handled=True would leave the client waiting.
        return AuthResult(success=False, handled=False)


class DovecotPop3:
    """Dovecot serving POP3 for one user with `messages` messages: `pop3_port` (plain, STLS offered)
    and `pop3s_port` (implicit TLS). Its folder is 0755 because Dovecot's unprivileged login and
    auth processes must reach their sockets in it; as root the mailbox belongs to nobody (Dovecot
    refuses uid 0), otherwise to the current user. A refused sign-in is answered after Dovecot's
    usual 2 s; the growing per-IP penalty is off, or every later test would wait up to 15 s."""

    def __init__(self, certificate: Certificate, username: str, password: str, messages: int = 2):
        if not Path(DOVECOT).exists():
            raise MailServerUnavailable(f"{DOVECOT} not found: install Debian's dovecot-pop3d package "
                                        "(make test does this when run as root).")
        self.certificate = certificate
        self.username, self.password, self.messages = username, password, messages
        self.pop3_port, self.pop3s_port = free_port(), free_port()
        self.root = Path(tempfile.mkdtemp(prefix="cd-dovecot-"))
        self.root.chmod(0o755)
        self.process: subprocess.Popen | None = None

    def _accounts(self) -> tuple[str, str, str]:
        """(mail user, mail group, extra settings) for our privileges. As root Dovecot switches
        to its own unprivileged users; otherwise everything runs as us, without chroot."""
        if os.geteuid() == 0:
            return "nobody", grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name, ""
        me, my_group = pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name
        return me, my_group, (f"default_login_user = {me}\ndefault_internal_user = {me}\n"
                              f"default_internal_group = {my_group}\n"
                              "service anvil {\n  chroot =\n}\nservice pop3-login {\n  chroot =\n}\n")

    def _write_files(self) -> Path:
        user, group, extra = self._accounts()
        root = self.root
        (root / "users").write_text(f"{self.username}:{{PLAIN}}{self.password}\n")
        new = root / "mail" / self.username / "new"
        new.mkdir(parents=True)
        for number in range(1, self.messages + 1):
            (new / f"{1700000000 + number}.M{number}P1.test").write_text(
                f"From: sender@example.com\r\nTo: {self.username}@example.com\r\n"
                f"Subject: Message {number}\r\n\r\nBody {number}.\r\n")
        if os.geteuid() == 0:
            for path in [root / "mail", *(root / "mail").rglob("*")]:
                shutil.chown(path, user, group)
        config = root / "dovecot.conf"
        config.write_text(f"""\
instance_name = cd-dovecot-{self.pop3_port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
{extra}protocols = pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.certificate.cert}
ssl_key = <{self.certificate.key}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={root}/mail/%u
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
""")
        return config

    def start(self, ready_timeout: float = 10.0) -> DovecotPop3:
        config = self._write_files()
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                errors = self.process.stderr.read() if self.process.stderr else ""
                self.stop()
                raise MailServerUnavailable(f"dovecot exited ({self.process.returncode}): "
                                            f"{errors.strip() or self._log()}")
            if listening(self.pop3_port) and listening(self.pop3s_port):
                return self
            time.sleep(0.02)
        self.stop()
        raise MailServerUnavailable(f"dovecot did not listen within {ready_timeout:g} s: {self._log()}")

    def _log(self) -> str:
        log = self.root / "dovecot.log"
        return log.read_text()[-2000:] if log.exists() else "(no log)"

    def stop(self) -> None:
        stop_process(self.process)
        if self.process is not None and self.process.stderr:
            self.process.stderr.close()
        shutil.rmtree(self.root, ignore_errors=True)



class SilentServer:
    """A socket that listens and never answers: connections are accepted by the kernel (backlog)
    and then wait forever for a greeting, which is what a hung server looks like."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self.port: int = self._socket.getsockname()[1]

    def stop(self) -> None:
        self._socket.close()
