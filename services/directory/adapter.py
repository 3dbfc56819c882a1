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
from urllib.parse import urlsplit

from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_filter_chars

from services.outbound_policy import OutboundRefused, Outcome, Protocol, Reach, allowed_destination

CONNECT_TIMEOUT = 5  # seconds to reach a server; an unreachable one is an answer too
RECEIVE_TIMEOUT = 30


class DirectoryError(Exception):
    """The directory could not be used; the message says what to fix. `outcome` sorts it into
    services.outbound_policy's fixed set (for a Test connection's answer)."""

    def __init__(self, message: str, outcome: Outcome = Outcome.REFUSED):
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True)
class ConnectionSettings:
    urls: list[str]
    bind_dn: str | None
    password: str | None
    use_starttls: bool = True
    verify_certificate: bool = True
    ca_file: str | None = None


def _tls(settings: ConnectionSettings, name: str | None = None) -> Tls:
    """The TLS settings; DirectoryError when the CA file cannot be used (ldap3 would only say
    "invalid CA public key file", or raise LDAPSSLConfigurationError). `name`: the host name the
    certificate must carry when the connection goes to an address (also sent as SNI)."""
    ca_file = (settings.ca_file or "").strip() or None
    if ca_file is not None and not (os.path.isfile(ca_file) and os.access(ca_file, os.R_OK)):
        raise DirectoryError(f"The CA file {ca_file} does not exist on this server, or is not a file it "
                             "may read. Give the path of the PEM file of the CA that signed the directory "
                             "server's certificate, or leave it empty to use the system's CAs.",
                             Outcome.INVALID)
    try:
        return Tls(validate=ssl.CERT_REQUIRED if settings.verify_certificate else ssl.CERT_NONE,
                   ca_certs_file=ca_file, version=ssl.PROTOCOL_TLS_CLIENT,
                   valid_names=[name] if name else None, sni=name)
    except ldap_errors.LDAPSSLConfigurationError:  # the file went away since the check above
        raise DirectoryError(f"The CA file {ca_file} cannot be used: give the path of a PEM file this "
                             "server may read.", Outcome.INVALID) from None


def _servers(url: str, settings: ConnectionSettings, reach: Reach | None) -> list[Server]:
    """The URL as ldap3 servers. With a `reach` (a Test connection), the host is checked by
    services.outbound_policy and the servers are its checked addresses (the name kept for the
    certificate), so the connection goes nowhere the check did not see."""
    lowered = url.lower()
    if not lowered.startswith(("ldap://", "ldaps://")):
        raise DirectoryError(f"{url}: a server URL starts with ldap:// or ldaps://.", Outcome.INVALID)
    use_ssl = lowered.startswith("ldaps://")
    try:
        if reach is None:  # get_info=NONE: values are decoded here (_decoded), no schema read needed
            return [Server(url, use_ssl=use_ssl, tls=_tls(settings), get_info=NONE,
                           connect_timeout=CONNECT_TIMEOUT)]
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or (636 if use_ssl else 389)
        if not host:
            raise ValueError(url)
        destination = allowed_destination(host, port, Protocol.LDAP, reach)
        tls = _tls(settings, destination.host)
        return [Server(address.split("%", 1)[0], port=port, use_ssl=use_ssl, tls=tls, get_info=NONE,
                       connect_timeout=CONNECT_TIMEOUT) for address in destination.addresses]
    except OutboundRefused as exc:
        raise DirectoryError(exc.message, exc.outcome) from None
    except (ValueError, ldap_errors.LDAPException):  # ldap://dc1:99999, ldap://:389, ldap://a b
        raise DirectoryError(f"{url}: write the server URL as ldap://host or ldaps://host, with a port "
                             "from 1 to 65535 after a colon when it is not the usual one.",
                             Outcome.INVALID) from None


def _explain(exc: Exception, settings: ConnectionSettings) -> DirectoryError:
    """A failure to connect or bind, in words chosen here: the outcome is read from the exception,
    but nothing the server or the TLS library said (their text, a certificate) is repeated."""
    text = str(exc)
    urls = ", ".join(settings.urls)
    if settings.ca_file and ("NO_CERTIFICATE_OR_CRL_FOUND" in text or "PEM lib" in text):
        return DirectoryError(f"The CA file {settings.ca_file} holds no certificate that can be read: give a "
                              "PEM file (-----BEGIN CERTIFICATE-----).", Outcome.INVALID)
    if isinstance(exc, ldap_errors.LDAPInvalidCredentialsResult):
        return DirectoryError("The directory refused the bind DN or password (invalid credentials).",
                              Outcome.WRONG_PASSWORD)
    if isinstance(exc, ldap_errors.LDAPStrongerAuthRequiredResult):
        return DirectoryError("The server requires an encrypted connection: use ldaps:// or StartTLS.")
    if isinstance(exc, ldap_errors.LDAPCertificateError) or "certificate" in text.lower():
        return DirectoryError("TLS failed: the server's certificate is not trusted or is not for this host "
                              "name. Check the CA file and the host name in the server URL.",
                              Outcome.UNTRUSTED_CERTIFICATE)
    if "timed out" in text.lower() or isinstance(exc, TimeoutError):
        waited = RECEIVE_TIMEOUT if isinstance(exc, ldap_errors.LDAPSocketReceiveError) else CONNECT_TIMEOUT
        return DirectoryError(f"No directory server answered at {urls} within {waited} s.", Outcome.NO_ANSWER)
    if isinstance(exc, ldap_errors.LDAPStartTLSError):
        return DirectoryError("StartTLS failed: check the server's TLS setup, or use ldaps://.")
    if isinstance(exc, ldap_errors.LDAPSocketOpenError | ldap_errors.LDAPSocketReceiveError
                  | ldap_errors.LDAPSessionTerminatedByServerError | OSError):
        return DirectoryError(f"No directory server answered at {urls}: the connection was refused. Check "
                              "the host, the port and ldap:// or ldaps://.")
    if isinstance(exc, ldap_errors.LDAPNoSuchObjectResult):
        return DirectoryError("The base DN does not exist in the directory.")
    if isinstance(exc, ldap_errors.LDAPOperationResult):  # the result's name, not the server's text
        return DirectoryError(f"The directory refused the connection ({exc.description}).")
    return DirectoryError(f"The directory could not be used ({type(exc).__name__}).")


# Failing to reach one server is a reason to try the next; any other answer is the directory's.
_UNREACHABLE = (ldap_errors.LDAPSocketOpenError, ldap_errors.LDAPSocketReceiveError,
                ldap_errors.LDAPSessionTerminatedByServerError, OSError)


@contextmanager
def connect(settings: ConnectionSettings, reach: Reach | None = None) -> Iterator[Connection]:
    """A bound connection (StartTLS first on ldap:// when asked), unbound afterwards. The servers
    are tried in order (failover) until one opens. `reach`: a Test connection's, which
    services.outbound_policy checks every URL against (None: the import of a saved source)."""
    if not settings.urls:
        raise DirectoryError("Add at least one server URL.", Outcome.INVALID)
    servers = [server for url in settings.urls for server in _servers(url, settings, reach)]
    conn: Connection | None = None
    failure: Exception = OSError()
    for server in servers:
        candidate = Connection(server, user=settings.bind_dn or None, password=settings.password or None,
                               receive_timeout=RECEIVE_TIMEOUT, raise_exceptions=True, auto_bind=False)
        try:
            candidate.open()
            if settings.use_starttls and not server.ssl:
                candidate.start_tls()
            candidate.bind()
        except _UNREACHABLE as exc:
            _close(candidate)
            failure = exc
            continue
        except ldap_errors.LDAPException as exc:
            _close(candidate)
            raise _explain(exc, settings) from None
        conn = candidate
        break
    if conn is None:
        raise _explain(failure, settings) from None
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
