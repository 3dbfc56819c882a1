"""A throwaway OpenLDAP slapd shaped like Active Directory, for tests and benchmarks: our own
process, configuration, database and self-signed certificate in a temporary folder, on 127.0.0.1
and two free ports (ldap:// with StartTLS, and ldaps://). Never the system's slapd service.

What is AD-like: the attributes an AD sync reads carry their real AD OIDs (so ldap3 formats
objectGUID, userAccountControl and uSNChanged as it does against AD), entries are of class `user`,
and a search returns at most 1,000 entries unless it pages (then everything). What is not:
standard attributes may hold several values (lists), disabled accounts (userAccountControl 514)
can still bind, binds take a DN only (not user@domain), and uSNChanged/whenChanged are ordinary
attributes that only this module's online helpers bump on every change, as AD does.

The rootdn (`admin_dn`) bypasses every limit, as OpenLDAP's rootdn always does: to see the
1,000-entry limit, bind as the service account (`service_dn`, `service_password`).

Uses Debian's slapd, ldap-utils and openssl (`make test` installs them when run as root); a missing
program raises LdapUnavailable with what to install. Runs as the current user, root included.
"""

from __future__ import annotations

import atexit
import base64
import re
import shutil
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.dn import escape_rdn, safe_rdn

from testing.postgres import free_port
from testing.processes import listening, stop_process

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = "/usr/lib/ldap"
OUS = ("People", "Staff", "Contractors")
NORMAL_ACCOUNT, DISABLED_ACCOUNT = 512, 514  # userAccountControl: NORMAL_ACCOUNT, + ACCOUNTDISABLE

_DIRECTORY_STRING = ("EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch "
                     "SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE")
_INTEGER = ("EQUALITY integerMatch ORDERING integerOrderingMatch "
            "SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE")
_TIME = ("EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch "
         "SYNTAX 1.3.6.1.4.1.1466.115.121.1.24 SINGLE-VALUE")
# Real AD OIDs, single-valued as in AD. Debian's msuser.schema has the names but no matching
# rules, so nothing could be searched by them. `company` is in no standard OpenLDAP schema.
AD_SCHEMA = f"""\
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' {_DIRECTORY_STRING} )
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName' {_DIRECTORY_STRING} )
attributetype ( 1.2.840.113556.1.4.2 NAME 'objectGUID' EQUALITY octetStringMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.40{{16}} SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl' {_INTEGER} )
attributetype ( 1.2.840.113556.1.2.120 NAME 'uSNChanged' {_INTEGER} )
attributetype ( 1.2.840.113556.1.2.141 NAME 'department' {_DIRECTORY_STRING} )
attributetype ( 1.2.840.113556.1.2.146 NAME 'company' {_DIRECTORY_STRING} )
attributetype ( 1.2.840.113556.1.2.2 NAME 'whenCreated' {_TIME} )
attributetype ( 1.2.840.113556.1.2.3 NAME 'whenChanged' {_TIME} )
objectclass ( 1.2.840.113556.1.5.9 NAME 'user' SUP organizationalPerson STRUCTURAL
    MAY ( sAMAccountName $ userPrincipalName $ objectGUID $ userAccountControl $ uSNChanged $
          whenCreated $ whenChanged $ givenName $ initials $ displayName $ mail $ mobile $
          manager $ department $ company $ title $ telephoneNumber $ physicalDeliveryOfficeName ) )
"""


# Servers not stopped yet: stopped at interpreter exit, so an interrupted run (Ctrl-C during a
# session fixture, an exception in a script) leaves no slapd behind. A killed Python still does.
_RUNNING: set[LdapServer] = set()
atexit.register(lambda: [server.stop() for server in list(_RUNNING)])


class LdapUnavailable(RuntimeError):
    """A program is missing or slapd did not start; the message says why."""


def generalized_time(moment: datetime) -> str:
    """LDAP GeneralizedTime as AD writes it ("20261125120000.0Z"), in UTC."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S.0Z")


def default_guid(sam: str) -> uuid.UUID:
    """The objectGUID `user_entry` gives `sam` when none is passed: stable across runs."""
    return uuid.uuid5(uuid.NAMESPACE_DNS, sam)


def _domain(base_dn: str) -> str:
    return ".".join(part.split("=", 1)[1] for part in base_dn.split(",") if part.lower().startswith("dc="))


def user_entry(sam: str, *, given: str, sn: str, ou: str = "People", base_dn: str = "dc=example,dc=test",
               guid: uuid.UUID | None = None, mail: str | None = None, title: str | None = None,
               department: str | None = None, company: str | None = None, telephone: str | None = None,
               mobile: str | None = None, initials: str | None = None, office: str | None = None,
               manager_dn: str | None = None, disabled: bool = False, usn: int = 1,
               when_changed: datetime | None = None, password: str | None = None) -> tuple[str, dict]:
    """(dn, attributes) of an AD-style user `cn=<given> <sn>,ou=<ou>,<base_dn>`.

    Attribute names are AD's; values are str, int or bytes (objectGUID is `guid.bytes_le`, as AD
    sends it; default `default_guid(sam)`). userPrincipalName is sam@<the base's dc parts>,
    displayName "<given> <sn>", userAccountControl 512 (514 when disabled), whenCreated =
    whenChanged = `when_changed` (default now). None leaves an attribute out. `password` sets a
    userPassword the user can bind with (by DN).
    """
    cn = f"{given} {sn}"
    dn = f"cn={escape_rdn(cn)},ou={escape_rdn(ou)},{base_dn}"
    changed = generalized_time(when_changed or datetime.now(UTC))
    attributes: dict = {
        "objectClass": ["top", "person", "organizationalPerson", "user"],
        "cn": cn, "sn": sn, "givenName": given, "displayName": cn,
        "sAMAccountName": sam, "userPrincipalName": f"{sam}@{_domain(base_dn)}",
        "objectGUID": (guid or default_guid(sam)).bytes_le,
        "userAccountControl": DISABLED_ACCOUNT if disabled else NORMAL_ACCOUNT,
        "uSNChanged": usn, "whenCreated": changed, "whenChanged": changed,
    }
    optional = {"mail": mail, "title": title, "department": department, "company": company,
                "telephoneNumber": telephone, "mobile": mobile, "initials": initials,
                "physicalDeliveryOfficeName": office, "manager": manager_dn, "userPassword": password}
    attributes.update({name: value for name, value in optional.items() if value is not None})
    return dn, attributes


# RFC 2849 SAFE-STRING: anything else (non-ASCII names, bytes, a leading space or colon) is base64.
_SAFE = re.compile(r"[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*")


def _ldif_line(name: str, value: str | int | bytes) -> str:
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and _SAFE.fullmatch(value) and not value.endswith(" "):
        return f"{name}: {value}"
    raw = value if isinstance(value, bytes) else value.encode()
    return f"{name}:: {base64.b64encode(raw).decode()}"


def users_ldif(base_dn: str, entries: Iterable[tuple[str, dict]]) -> str:
    """LDIF of (dn, attributes) pairs (from `user_entry`, or any entry), in the order given, which
    is the order the server lists them in after `load_ldif` (beware: ldap3's paged_search
    generator yields each page backwards). Every DN must be under `base_dn`."""
    blocks = []
    for dn, attributes in entries:
        if not dn.lower().endswith("," + base_dn.lower()):
            raise ValueError(f"{dn} is not under {base_dn}")
        lines = [_ldif_line("dn", dn)]
        for name, values in attributes.items():
            for value in values if isinstance(values, list | tuple) else [values]:
                lines.append(_ldif_line(name, value))
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


class LdapServer:
    """slapd with an AD-like schema. Before `start()`, `load_ldif` loads entries offline (fast);
    after it, `add_user`, `add`, `modify`, `move` and `delete` change entries online as the rootdn.
    `stop()` ends slapd and removes the folder; `with LdapServer() as server:` does both.

    Holds from the start: the suffix entry, ou=People, ou=Staff, ou=Contractors and the service
    account `service_dn` (not a `user`, so user searches never list it).
    """

    service_password = "service-secret"

    def __init__(self, base_dn: str = "dc=example,dc=test", admin_password: str = "admin-secret",
                 page_limit: int | None = None):
        for program, package in ((SLAPD, "slapd"), (SLAPADD, "slapd")):
            if not Path(program).exists():
                raise LdapUnavailable(f"{program} not found: install Debian's {package} package "
                                      "(make test does this when run as root).")
        if shutil.which("openssl") is None:
            raise LdapUnavailable("openssl not found: install Debian's openssl package.")
        if not base_dn.lower().startswith("dc="):
            raise ValueError(f"{base_dn}: the base DN must start with dc= (a dcObject suffix)")
        if re.search(r'["\\\s]', admin_password):
            raise ValueError("the admin password goes into slapd.conf: no quotes, backslashes, spaces")
        self.base_dn, self.admin_password = base_dn, admin_password
        self.page_limit = page_limit  # size.pr: the most entries a server gives per page
        self.admin_dn = f"cn=admin,{base_dn}"
        self.service_dn = f"cn=desk-service,{base_dn}"
        self.port, self.ldaps_port = free_port(), free_port()
        self.url, self.ldaps_url = f"ldap://127.0.0.1:{self.port}", f"ldaps://127.0.0.1:{self.ldaps_port}"
        self.root = Path(tempfile.mkdtemp(prefix="cd-ldap-"))
        self.root.chmod(0o755)  # readable by other users, e.g. an ldapsearch run by hand as one
        self.ca_file = str(self.root / "cert.pem")
        self.config = self.root / "slapd.conf"
        self.process: subprocess.Popen | None = None
        self.highest_usn = 0  # like AD's highestCommittedUSN: the last uSNChanged given out
        self._base_loaded = False
        self._admin: ldap3.Connection | None = None
        try:
            self._make_certificate()
            self._write_config()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def _make_certificate(self) -> None:
        # An EC key: made in milliseconds, where RSA 2048 takes up to a second per server.
        result = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(self.root / "key.pem"), "-out", self.ca_file, "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise LdapUnavailable(f"openssl could not make a certificate: {result.stderr.strip()}")

    def _write_config(self) -> None:
        root = self.root
        (root / "data").mkdir()
        (root / "ad.schema").write_text(AD_SCHEMA)
        includes = "".join(f"include {SCHEMA_DIR / name}.schema\n"
                           for name in ("core", "cosine", "inetorgperson"))
        page_limit = f" size.pr={self.page_limit}" if self.page_limit else ""
        self.config.write_text(f"""\
{includes}include {root}/ad.schema
pidfile {root}/slapd.pid
argsfile {root}/slapd.args
modulepath {MODULE_DIR}
moduleload back_mdb
TLSCertificateFile {self.ca_file}
TLSCertificateKeyFile {root}/key.pem
# AD: 1,000 entries per search without paging, everything with paging.
sizelimit size.soft=1000 size.hard=1000 size.prtotal=unlimited{page_limit}
# AD-like: anonymous sees the root DSE and the schema only; passwords are only for binding.
access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none

database mdb
maxsize 1073741824
suffix "{self.base_dn}"
rootdn "{self.admin_dn}"
rootpw "{self.admin_password}"
directory {root}/data
# A throwaway database: no fsync per change.
dbnosync
index objectClass eq
index sAMAccountName,userPrincipalName,objectGUID eq
index uSNChanged,whenChanged eq
""")

    def _base_ldif(self) -> str:
        dc = self.base_dn.split(",", 1)[0].split("=", 1)[1]
        entries: list[tuple[str, dict]] = [(f"ou={ou},{self.base_dn}",
                                            {"objectClass": ["top", "organizationalUnit"], "ou": ou})
                                           for ou in OUS]
        entries.append((self.service_dn, {
            "objectClass": ["top", "applicationProcess", "simpleSecurityObject"],
            "cn": "desk-service", "userPassword": self.service_password}))
        suffix = "\n".join([f"dn: {self.base_dn}", "objectClass: top", "objectClass: dcObject",
                            "objectClass: organization", _ldif_line("dc", dc),
                            _ldif_line("o", _domain(self.base_dn))])
        return suffix + "\n\n" + users_ldif(self.base_dn, entries)

    def load_ldif(self, text: str) -> None:
        """Add the entries of `text` offline with slapadd in quick mode (2,100 users ≈ 0.05 s);
        only before `start()`. The first call adds the base entries first. Entries keep the order
        given (the server lists them in it); a parent must come before its children."""
        if self.process is not None:
            raise RuntimeError("load_ldif works before start(); use add/add_user/modify afterwards")
        if not self._base_loaded:
            text = self._base_ldif() + "\n" + text
        path = self.root / "load.ldif"
        path.write_text(text)
        result = subprocess.run([SLAPADD, "-q", "-f", str(self.config), "-l", str(path)],
                                capture_output=True, text=True, timeout=600)
        path.unlink()
        if result.returncode != 0:
            raise LdapUnavailable(f"slapadd failed ({result.returncode}): "
                                  f"{(result.stderr or result.stdout).strip()[-2000:]}")
        self._base_loaded = True
        usns = [int(n) for n in re.findall(r"^uSNChanged: (\d+)\s*$", text, flags=re.MULTILINE)]
        self.highest_usn = max([self.highest_usn, *usns])

    def start(self, ready_timeout: float = 10.0) -> LdapServer:
        """Run slapd in the foreground of a child process; return once both ports answer."""
        if self.process is not None:
            raise RuntimeError("this server was started already; make a new LdapServer")
        if not self._base_loaded:
            self.load_ldif("")
        # -d keeps slapd in the foreground; level "none" prints only its errors (a port in use, a
        # bad config), which LdapUnavailable then quotes. "-d 0" would print nothing at all.
        log = (self.root / "slapd.log").open("w")
        with log:
            self.process = subprocess.Popen(
                [SLAPD, "-f", str(self.config), "-h", f"{self.url}/ {self.ldaps_url}/", "-d", "none"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        _RUNNING.add(self)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                reason = f"slapd exited ({self.process.returncode}): {self._log()}"
                self.stop()
                raise LdapUnavailable(reason)
            if listening(self.port) and listening(self.ldaps_port):
                return self
            time.sleep(0.01)
        reason = f"slapd did not listen within {ready_timeout:g} s: {self._log()}"
        self.stop()
        raise LdapUnavailable(reason)

    def _log(self) -> str:
        log = self.root / "slapd.log"
        text = log.read_text(errors="replace")[-2000:].strip() if log.exists() else ""
        return text or "(no output)"

    def tls(self) -> ldap3.Tls:
        """ldap3 TLS settings that trust this server's certificate and check its name."""
        return ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self.ca_file,
                         version=ssl.PROTOCOL_TLS_CLIENT)

    def connect(self, user: str | None = None, password: str | None = None, *, mode: str = "ldaps",
                **options) -> ldap3.Connection:
        """A bound ldap3 connection (anonymous when `user` is None), unbind it when done. `mode`:
        "ldaps" (ldaps://), "starttls" (ldap:// then StartTLS), both verifying the certificate and
        its name, or "plain" (ldap://, no TLS). `options` go to ldap3.Connection.

        ldap3 2.9.1 checks the name with ssl.match_hostname(), which Python 3.11 deprecates: under
        warnings-as-errors a TLS connection fails with LDAPSocketOpenError "socket ssl wrapping
        error: ssl.match_hostname() is deprecated" unless that DeprecationWarning is filtered."""
        if mode not in ("ldaps", "starttls", "plain"):
            raise ValueError(f"mode {mode!r}: ldaps, starttls or plain")
        server = ldap3.Server(self.ldaps_url if mode == "ldaps" else self.url, use_ssl=mode == "ldaps",
                              tls=self.tls(), get_info=options.pop("get_info", ldap3.SCHEMA),
                              connect_timeout=5)
        options.setdefault("raise_exceptions", True)
        conn = ldap3.Connection(server, user=user, password=password, **options)
        try:
            conn.open()
            if mode == "starttls":
                conn.start_tls()
            conn.bind()
        except BaseException:
            conn.unbind()
            raise
        return conn

    def _as_admin(self) -> ldap3.Connection:
        if self.process is None:
            raise RuntimeError("the server is not running: start() it first")
        if self._admin is None:
            # Plain ldap:// on 127.0.0.1: the harness's own changes need no TLS, and so never meet
            # the match_hostname deprecation (see connect).
            self._admin = self.connect(self.admin_dn, self.admin_password, mode="plain",
                                       get_info=ldap3.NONE)
        return self._admin

    def _touch(self, changes: dict) -> dict:
        """AD bumps uSNChanged and whenChanged on every change; so do the online helpers,
        unless the caller sets them."""
        self.highest_usn += 1
        now = generalized_time(datetime.now(UTC))
        return {"uSNChanged": self.highest_usn, "whenChanged": now, **changes}

    def add(self, dn: str, attributes: dict) -> str:
        """Add any entry (values: str, int, bytes or lists of them); returns its DN."""
        self._as_admin().add(dn, attributes=_ldap_values(attributes))
        return dn

    def add_user(self, sam: str, **fields) -> str:
        """Add `user_entry(sam, **fields)` under this base; uSNChanged defaults to the next USN."""
        if "usn" not in fields:
            self.highest_usn += 1
            fields["usn"] = self.highest_usn
        self.highest_usn = max(self.highest_usn, fields["usn"])
        dn, attributes = user_entry(sam, base_dn=self.base_dn, **fields)
        return self.add(dn, attributes)

    def modify(self, dn: str, changes: dict[str, list | str | int | bytes | None], *,
               touch: bool = True) -> None:
        """Replace each attribute's values (a value or a list); None (or []) removes the attribute.
        With `touch`, uSNChanged and whenChanged move on as in AD."""
        if touch:
            changes = self._touch(changes)
        ldap_changes = {name: [(ldap3.MODIFY_REPLACE, [] if values is None else _ldap_list(values))]
                        for name, values in changes.items()}
        self._as_admin().modify(dn, ldap_changes)

    def move(self, dn: str, ou: str, *, touch: bool = True) -> str:
        """Move an entry to ou=<ou> under the base, keeping its RDN and objectGUID (an AD move);
        returns the new DN."""
        rdn = safe_rdn(dn)[0]
        superior = f"ou={escape_rdn(ou)},{self.base_dn}"
        self._as_admin().modify_dn(dn, rdn, new_superior=superior)
        new_dn = f"{rdn},{superior}"
        if touch:
            self.modify(new_dn, {})
        return new_dn

    def delete(self, dn: str) -> None:
        self._as_admin().delete(dn)

    def stop(self) -> None:
        """End slapd (SIGTERM, then SIGKILL after 10 s) and remove the folder; safe to repeat."""
        if self._admin is not None:
            try:
                self._admin.unbind()
            except (LDAPException, OSError):
                pass
            self._admin = None
        _RUNNING.discard(self)
        stop_process(self.process)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LdapServer:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _ldap_list(values) -> list:
    # ldap3 sends str and bytes as they are; integers go as their decimal text, as LDAP wants.
    values = values if isinstance(values, list | tuple) else [values]
    return [str(v) if isinstance(v, int) else v for v in values]


def _ldap_values(attributes: dict) -> dict:
    return {name: _ldap_list(values) for name, values in attributes.items()}

