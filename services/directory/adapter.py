"""The one module that talks to a directory server (ldap3): connect with TLS, bind, page through
entries, unbind. Every failure becomes a DirectoryError whose message an AD administrator can
act on; passwords never appear in one.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ldap3 import BASE, FIRST, NONE, SUBTREE, Connection, Server, ServerPool, Tls, set_config_parameter
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_filter_chars

CONNECT_TIMEOUT = 5  # seconds to reach a server; an unreachable one is an answer too
RECEIVE_TIMEOUT = 30


class DirectoryError(Exception):
    """The directory could not be used; the message says what to fix."""


@dataclass(frozen=True)
class ConnectionSettings:
    urls: list[str]
    bind_dn: str | None
    password: str | None
    use_starttls: bool = True
    verify_certificate: bool = True
    ca_file: str | None = None


def _tls(settings: ConnectionSettings) -> Tls:
    """The TLS settings; DirectoryError when the CA file cannot be used (ldap3 would only say
    "invalid CA public key file")."""
    ca_file = (settings.ca_file or "").strip() or None
    if ca_file is not None and not (os.path.isfile(ca_file) and os.access(ca_file, os.R_OK)):
        raise DirectoryError(f"The CA file {ca_file} does not exist on this server, or is not a file it "
                             "may read. Give the path of the PEM file of the CA that signed the directory "
                             "server's certificate, or leave it empty to use the system's CAs.")
    try:
        return Tls(validate=ssl.CERT_REQUIRED if settings.verify_certificate else ssl.CERT_NONE,
                   ca_certs_file=ca_file, version=ssl.PROTOCOL_TLS_CLIENT)
    except ldap_errors.LDAPSSLConfigurationError as exc:
        raise DirectoryError(f"The TLS settings cannot be used: {exc}.") from None


def _server(url: str, settings: ConnectionSettings) -> Server:
    tls = _tls(settings)
    if not url.lower().startswith(("ldap://", "ldaps://")):
        raise DirectoryError(f"{url}: a server URL starts with ldap:// or ldaps://.")
    # get_info=NONE: values are decoded here (_decoded), so the schema read is not needed.
    return Server(url, use_ssl=url.lower().startswith("ldaps://"), tls=tls, get_info=NONE,
                  connect_timeout=CONNECT_TIMEOUT)


def _explain(exc: Exception, settings: ConnectionSettings) -> str:
    text = str(exc)
    if settings.ca_file and ("NO_CERTIFICATE_OR_CRL_FOUND" in text or "PEM lib" in text):
        return (f"The CA file {settings.ca_file} holds no certificate that can be read: give a PEM file "
                "(-----BEGIN CERTIFICATE-----).")
    if isinstance(exc, ldap_errors.LDAPInvalidCredentialsResult):
        return "The directory refused the bind DN or password (invalid credentials)."
    if isinstance(exc, ldap_errors.LDAPSocketOpenError | ldap_errors.LDAPServerPoolExhaustedError):
        if "certificate" in text.lower() or "ssl" in text.lower():
            return f"TLS failed: the server's certificate is not trusted or does not match ({text})."
        return f"No directory server answered at {', '.join(settings.urls)} within {CONNECT_TIMEOUT} s."
    if isinstance(exc, ldap_errors.LDAPStartTLSError) or "tls" in text.lower():
        return f"StartTLS failed: {text}. Check the CA file, or the server's TLS setup."
    if isinstance(exc, ldap_errors.LDAPNoSuchObjectResult):
        return "The base DN does not exist in the directory."
    return f"The directory answered with an error: {text}"


@contextmanager
def connect(settings: ConnectionSettings) -> Iterator[Connection]:
    """A bound connection (StartTLS first on ldap:// when asked), unbound afterwards."""
    if not settings.urls:
        raise DirectoryError("Add at least one server URL.")
    servers = [_server(url, settings) for url in settings.urls]
    # One cycle over the servers (failover); ldap3 would then pause 10 s before saying that
    # none answered — a pause with nothing after it, which only keeps the user waiting.
    set_config_parameter("POOLING_LOOP_TIMEOUT", 0)
    pool = ServerPool(servers, FIRST, active=1, exhaust=True)
    conn = Connection(pool, user=settings.bind_dn or None, password=settings.password or None,
                      receive_timeout=RECEIVE_TIMEOUT, raise_exceptions=True, auto_bind=False)
    try:
        conn.open()
        if settings.use_starttls and not any(s.ssl for s in servers):
            conn.start_tls()
        conn.bind()
    except (ldap_errors.LDAPException, OSError) as exc:
        _close(conn)
        raise DirectoryError(_explain(exc, settings)) from None
    try:
        yield conn
    finally:
        _close(conn)


def _close(conn: Connection) -> None:
    try:
        conn.unbind()
    except (ldap_errors.LDAPException, OSError):
        pass


def changed_since(search_filter: str, usn: int | None) -> str:
    """The source's filter restricted to entries changed after `usn` (incremental runs)."""
    if usn is None:
        return search_filter
    return f"(&{search_filter}(uSNChanged>={int(usn) + 1}))"


def account_filter(search_filter: str, sam: str) -> str:
    """The source's filter for one account; the typed name is escaped (RFC 4515)."""
    return f"(&{search_filter}(sAMAccountName={escape_filter_chars(sam)}))"


def entries(conn: Connection, base_dn: str, search_filter: str, attributes: list[str],
            page_size: int) -> Iterator[tuple[str, dict]]:
    """(dn, attributes) of every matching entry, fetched page by page (streamed, never all in
    memory). Raises DirectoryError when the server stops early (a size limit, a missing base)."""
    try:
        results = conn.extend.standard.paged_search(
            base_dn, search_filter, search_scope=SUBTREE, attributes=attributes,
            paged_size=page_size, generator=True)
        for item in results:
            if item.get("type") == "searchResEntry":  # AD also returns referrals
                yield item["dn"], _decoded(item.get("raw_attributes") or {})
    except ldap_errors.LDAPNoSuchObjectResult:
        raise DirectoryError(f"The base DN {base_dn} does not exist in the directory.") from None
    except (ldap_errors.LDAPSizeLimitExceededResult, ldap_errors.LDAPAdminLimitExceededResult):
        raise DirectoryError(_size_limit(page_size)) from None
    except ldap_errors.LDAPException as exc:
        raise DirectoryError(f"The directory stopped the search: {exc}") from None
    # ldap3's paged generator does not raise when the server stops early: ask the result.
    result = conn.result or {}
    if result.get("description") == "sizeLimitExceeded":
        raise DirectoryError(_size_limit(page_size))


def _size_limit(page_size: int) -> str:
    return (f"The directory's size limit stopped the search: use a page size (now {page_size}) "
            "at or below the server's limit per page (AD: 1,000).")


def read_entry(conn: Connection, dn: str, attributes: list[str]) -> dict | None:
    """One entry by its DN (a manager outside this run), or None when it does not exist."""
    try:
        conn.search(dn, "(objectClass=*)", search_scope=BASE, attributes=attributes)
    except ldap_errors.LDAPNoSuchObjectResult:
        return None
    except ldap_errors.LDAPException as exc:
        raise DirectoryError(f"The directory refused to read {dn}: {exc}") from None
    found = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
    return _decoded(found[0].get("raw_attributes") or {}) if found else None


def _decoded(raw: dict) -> dict[str, list]:
    """Values as text (UTF-8, as LDAP sends them), except objectGUID, which stays 16 bytes."""
    return {name: list(values) if name.lower() == "objectguid"
            else [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
            for name, values in raw.items()}
