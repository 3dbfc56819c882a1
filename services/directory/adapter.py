"""The one module that talks to a directory server (ldap3): connect with TLS, bind, page through
entries, unbind. Every failure becomes a DirectoryError whose message an AD administrator can
act on — in words chosen here, naming the account and the fix; nothing the server or the TLS
library said (their text, a certificate) is repeated, and passwords never appear in one.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_bytes, escape_filter_chars

from i18n import _, _l
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


def cleartext_warning(settings: ConnectionSettings) -> str | None:
    """The one rule for a bind password sent in clear text: a password over an ldap:// URL
    without StartTLS. Test connection's answer, the source's page when it is saved and an
    import's report say it; None when every URL is encrypted or nothing secret is sent."""
    if settings.use_starttls or not (settings.bind_dn and settings.password):
        return None
    plain = [url for url in settings.urls if not url.lower().startswith("ldaps://")]
    if not plain:
        return None
    return _("Warning: the password travels unencrypted — the bind password of %(account)s goes in clear "
             "text to %(urls)s (ldap:// without StartTLS), readable by anyone on the network between. Use "
             "ldaps:// or switch StartTLS on.", account=settings.bind_dn, urls=", ".join(plain))


def _tls(settings: ConnectionSettings, name: str | None = None) -> Tls:
    """The TLS settings; DirectoryError when the CA file cannot be used (ldap3 would only say
    "invalid CA public key file", or raise LDAPSSLConfigurationError). `name`: the host name in
    the server URL, sent as SNI. The certificate's name is checked by `_check_name` (so that a
    mismatch can say which names the certificate holds): ldap3's own check is passed ("*")."""
    ca_file = (settings.ca_file or "").strip() or None
    if ca_file is not None and not (os.path.isfile(ca_file) and os.access(ca_file, os.R_OK)):
        raise DirectoryError(_("The CA file %(file)s does not exist on this server, or is not a file it "
                               "may read. Give the path of the PEM file of the CA that signed the directory "
                               "server's certificate, or leave it empty to use the system's CAs.",
                               file=ca_file), Outcome.INVALID)
    if ca_file is not None:
        try:
            ssl.create_default_context(cafile=ca_file)
        except (ssl.SSLError, ValueError, OSError):
            raise DirectoryError(_("The CA file %(file)s holds no certificate that can be read: give a PEM "
                                   "file (-----BEGIN CERTIFICATE-----).", file=ca_file),
                                 Outcome.INVALID) from None
    try:
        return Tls(validate=ssl.CERT_REQUIRED if settings.verify_certificate else ssl.CERT_NONE,
                   ca_certs_file=ca_file, version=ssl.PROTOCOL_TLS_CLIENT, valid_names=["*"], sni=name)
    except ldap_errors.LDAPSSLConfigurationError:  # the file went away since the check above
        raise DirectoryError(_("The CA file %(file)s cannot be used: give the path of a PEM file this "
                               "server may read.", file=ca_file), Outcome.INVALID) from None


def _servers(url: str, settings: ConnectionSettings, reach: Reach | None) -> list[Server]:
    """The URL as ldap3 servers. With a `reach` (a Test connection), the host is checked by
    services.outbound_policy and the servers are its checked addresses (the name kept for the
    certificate), so the connection goes nowhere the check did not see."""
    lowered = url.lower()
    if not lowered.startswith(("ldap://", "ldaps://")):
        raise DirectoryError(_("%(url)s: a server URL starts with ldap:// or ldaps://.", url=url),
                             Outcome.INVALID)
    use_ssl = lowered.startswith("ldaps://")
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or (636 if use_ssl else 389)
        if not host:
            raise ValueError(url)
        if reach is None:  # get_info=NONE: values are decoded here (_decoded), no schema read needed
            return [Server(url, use_ssl=use_ssl, tls=_tls(settings, host), get_info=NONE,
                           connect_timeout=CONNECT_TIMEOUT)]
        destination = allowed_destination(host, port, Protocol.LDAP, reach)
        tls = _tls(settings, destination.host)
        return [Server(address.split("%", 1)[0], port=port, use_ssl=use_ssl, tls=tls, get_info=NONE,
                       connect_timeout=CONNECT_TIMEOUT) for address in destination.addresses]
    except OutboundRefused as exc:
        raise DirectoryError(exc.message, exc.outcome) from None
    except (ValueError, ldap_errors.LDAPException):  # ldap://dc1:99999, ldap://:389, ldap://a b
        raise DirectoryError(_("%(url)s: write the server URL as ldap://host or ldaps://host, with a port "
                               "from 1 to 65535 after a colon when it is not the usual one.", url=url),
                             Outcome.INVALID) from None


# --- The server's certificate: its names against the host in the URL ---------------------------

def _certificate_names(certificate: dict) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) a certificate is for: its subjectAltName, or its subject's CN
    when it has no DNS name there (RFC 6125)."""
    alt = certificate.get("subjectAltName", ())
    dns = [value for key, value in alt if key == "DNS"]
    addresses = [value.strip() for key, value in alt if key == "IP Address"]
    if not dns:
        dns = [value for rdn in certificate.get("subject", ()) for key, value in rdn if key == "commonName"]
    return dns, addresses


def _name_matches(pattern: str, host: str) -> bool:
    """A DNS name of a certificate against a host name: equal, or a wildcard standing for the
    host's whole first label (*.example.com covers dc1.example.com, not example.com)."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        first, _dot, rest = host.partition(".")
        return bool(first) and rest == pattern[2:] and "." in rest
    return pattern == host


def _certificate_fits(certificate: dict, host: str) -> bool:
    """Whether the certificate is for `host`: an IP address only by its IP entries, a name by
    its DNS names."""
    dns, addresses = _certificate_names(certificate)
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return any(_name_matches(name, host) for name in dns)
    for entry in addresses:
        try:
            if ipaddress.ip_address(entry) == address:
                return True
        except ValueError:
            continue
    return False


def _check_name(conn: Connection, url: str) -> None:
    """Before the bind (the password goes nowhere else): the certificate of an encrypted
    connection must be for the host named in the server URL. DirectoryError saying both when
    it is not."""
    tls = conn.server.tls
    if not (conn.server.ssl or conn.tls_started) or tls is None or tls.validate == ssl.CERT_NONE:
        return
    certificate = conn.socket.getpeercert() if conn.socket is not None else None
    host = tls.sni or conn.server.host
    if certificate and _certificate_fits(certificate, host):
        return
    dns, addresses = _certificate_names(certificate or {})
    names = ", ".join(dns + addresses) or _("no host name at all")
    raise DirectoryError(_("The server's certificate is for %(names)s, not for %(host)s (the host in "
                           "%(url)s): write a host name the certificate holds in the server URL (the one it "
                           "was issued for), or have the certificate reissued with this name.",
                           names=names, host=host, url=url),
                         Outcome.UNTRUSTED_CERTIFICATE)


# --- Failures in words -------------------------------------------------------------------------

# Why AD (and Samba) refused a bind: the "data NNN" code in the bind result's diagnostic message
# (LDAP's own result only says "invalid credentials"). Documented by Microsoft (the
# AcceptSecurityContext error data codes); the server's text around it is not repeated.
AD_BIND_REFUSALS = {  # %(who)s: the bind DN
    "525": _l("no account matches %(who)s. Check the bind DN: a DN, user@domain or DOMAIN\\user"),
    "52e": _l("the password of %(who)s is wrong (or no account has that name). Check the bind DN, and type "
              "the account's current password as the bind password"),
    "530": _l("%(who)s may not sign in at this time (its logon hours). Allow it in the account's logon "
              "hours"),
    "531": _l("%(who)s may not sign in from this computer (its allowed workstations). Allow this server in "
              "the account's “Log On To” list"),
    "532": _l("the password of %(who)s has expired. Set a new password in the directory, then type it here"),
    "533": _l("the account %(who)s is disabled. Enable it in the directory, or bind as another account"),
    "568": _l("%(who)s belongs to too many groups to sign in. Bind as an account with fewer group "
              "memberships"),
    "701": _l("the account %(who)s has expired (accountExpires). Extend it in the directory, or bind as "
              "another account"),
    "773": _l("%(who)s must change its password before it signs in. Set a new password in the directory, "
              "then type it here"),
    "775": _l("the account %(who)s is locked out (too many wrong passwords). Unlock it in the directory, or "
              "wait for the lockout to end; then check the bind password here"),
}
_AD_DATA = re.compile(r"\bdata ([0-9a-f]{1,8})\b", re.IGNORECASE)


def _ad_reason(exc: ldap_errors.LDAPOperationResult, who: str | None) -> str | None:
    found = _AD_DATA.search(str(getattr(exc, "message", "") or ""))
    reason = AD_BIND_REFUSALS.get(found.group(1).lower()) if found else None
    return str(reason) % {"who": who} if reason is not None else None


def _in_words(exc: ldap_errors.LDAPException, what: str, who: str | None) -> DirectoryError:
    """An LDAP result other than success (of the bind, or of `what`: "search of …", "read of …")
    in words: the result's code is read, the server's diagnostic text is not repeated. `what` is
    already in the reader's language (_what)."""
    account = who or _("an anonymous bind")
    if isinstance(exc, ldap_errors.LDAPStrongerAuthRequiredResult
                  | ldap_errors.LDAPConfidentialityRequiredResult):
        return DirectoryError(_("The server requires an encrypted connection: use ldaps:// or StartTLS (it "
                                "refused the %(what)s as %(account)s over a plain ldap:// one).",
                                what=what, account=account))
    if isinstance(exc, ldap_errors.LDAPOperationsErrorResult) and not who:
        return DirectoryError(_("The directory answered the %(what)s only to a signed-in account (this was "
                                "an anonymous bind): give a bind DN and password.", what=what))
    if isinstance(exc, ldap_errors.LDAPInsufficientAccessRightsResult):
        return DirectoryError(_("%(account)s may not do the %(what)s: give the account read access to the "
                                "base DN, or bind as an account that has it.", account=account, what=what))
    if isinstance(exc, ldap_errors.LDAPBusyResult):
        return DirectoryError(_("The directory server is busy and refused the %(what)s: try again in a few "
                                "minutes.", what=what), Outcome.NO_ANSWER)
    if isinstance(exc, ldap_errors.LDAPUnavailableResult):
        return DirectoryError(_("The directory server is unavailable (starting, stopping or not serving) "
                                "and refused the %(what)s: try again later, or add another domain "
                                "controller's URL for failover.", what=what), Outcome.NO_ANSWER)
    if isinstance(exc, ldap_errors.LDAPUnwillingToPerformResult):
        return DirectoryError(_("The directory is unwilling to perform the %(what)s as %(account)s. Check "
                                "the bind DN's form (a DN, user@domain or DOMAIN\\user), that the account "
                                "may sign in over LDAP, and the filter.", what=what, account=account))
    if isinstance(exc, ldap_errors.LDAPReferralResult):
        return DirectoryError(_("The server does not hold what the %(what)s asked for and referred it to "
                                "another directory: use that directory's server URL, or a base DN inside "
                                "this one.", what=what))
    if isinstance(exc, ldap_errors.LDAPInvalidDNSyntaxResult | ldap_errors.LDAPInvalidDnError):
        return DirectoryError(_("The %(what)s names something that is not a DN: write DNs like "
                                "OU=Staff,DC=example,DC=com.", what=what), Outcome.INVALID)
    if isinstance(exc, ldap_errors.LDAPInvalidFilterError):
        return DirectoryError(_("The search filter is not a valid LDAP filter: write it in parentheses, "
                                "e.g. (&(objectClass=user)(department=Sales))."), Outcome.INVALID)
    if isinstance(exc, ldap_errors.LDAPTimeLimitExceededResult | ldap_errors.LDAPAdminLimitExceededResult):
        return DirectoryError(_("The directory's limits stopped the %(what)s: use a smaller page size, or a "
                                "narrower base DN or filter.", what=what))
    if isinstance(exc, ldap_errors.LDAPOperationResult) and exc.description:
        return DirectoryError(_("The directory refused the %(what)s as %(account)s (LDAP result "
                                "“%(result)s”).", what=what, account=account, result=exc.description))
    return DirectoryError(_("The %(what)s failed (%(error)s).", what=what, error=type(exc).__name__))


def _explain(exc: Exception, settings: ConnectionSettings) -> DirectoryError:
    """A failure of the connection's set-up (StartTLS, the bind) in words."""
    who = settings.bind_dn or None
    if isinstance(exc, ldap_errors.LDAPInvalidCredentialsResult):
        reason = _ad_reason(exc, who)
        if reason is not None:
            return DirectoryError(_("The directory refused the bind: %(reason)s.", reason=reason),
                                  Outcome.WRONG_PASSWORD)
        return DirectoryError(_("The directory refused the bind DN or password of %(who)s: check both (a "
                                "DN, user@domain or DOMAIN\\user, and that account's password).", who=who),
                              Outcome.WRONG_PASSWORD)
    if isinstance(exc, ldap_errors.LDAPPasswordIsMandatoryError):
        return DirectoryError(_("Give the bind password of %(who)s (or leave the bind DN empty for an "
                                "anonymous bind).", who=who), Outcome.INVALID)
    if isinstance(exc, ldap_errors.LDAPStartTLSError):
        return DirectoryError(_("StartTLS failed: the server did not switch this connection to TLS. Use "
                                "ldaps:// (port 636), or set TLS up on the server."))
    if isinstance(exc, ldap_errors.LDAPNoSuchObjectResult):
        return DirectoryError(_("The base DN does not exist in the directory."))
    if isinstance(exc, ldap_errors.LDAPException):
        return _in_words(exc, _("bind"), who)
    return DirectoryError(_("The directory could not be used (%(error)s).", error=type(exc).__name__))


def _causes(exc: Exception) -> list[Exception]:
    """The socket errors behind a failure to open: ldap3 lists one per address it tried."""
    history = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], list) else None
    if history:
        return [item[0] for item in history if isinstance(item, tuple) and isinstance(item[0], Exception)]
    return [exc]


NO_ANSWER = "no answer"  # a marker, never shown: said as "no answer within N s"


def _reason(server: Server, exc: Exception) -> tuple[str, Outcome]:
    """Why one server could not be used, read from the exception's type (the TLS library's
    verification text only to tell an expired certificate from an untrusted one)."""
    causes = _causes(exc)
    if not server.address_info:
        return (_("its host name could not be resolved: check the spelling and the DNS"),
                Outcome.HOST_NOT_FOUND)
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        text = " ".join(str(c) for c in causes).lower()
        if "expired" in text or "not yet valid" in text:
            return (_("the server's certificate has expired or is not valid yet: renew it on the directory "
                      "server"), Outcome.UNTRUSTED_CERTIFICATE)
        return (_("the server's certificate is not trusted or is not for this host name: no CA this server "
                  "trusts signed it. Give the CA file (the PEM of the CA that signed the directory server's "
                  "certificate)"), Outcome.UNTRUSTED_CERTIFICATE)
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return (_("the TLS handshake failed: the server does not speak TLS there. Use ldaps:// on port 636, "
                  "or ldap:// with StartTLS on port 389"), Outcome.REFUSED)
    if any(isinstance(c, TimeoutError) for c in causes):
        return NO_ANSWER, Outcome.NO_ANSWER
    if all(isinstance(c, ConnectionRefusedError) for c in causes):
        return (_("the connection was refused (nothing listens on that port). Check the host, the port and "
                  "ldap:// or ldaps://"), Outcome.REFUSED)
    if any(isinstance(c, ConnectionError | ldap_errors.LDAPSessionTerminatedByServerError) for c in causes):
        return (_("the server closed the connection. Check ldap:// or ldaps:// against the port: ldaps:// is "
                  "usually port 636, ldap:// with StartTLS 389"), Outcome.REFUSED)
    return _("no route to it from this server"), Outcome.NO_ANSWER  # the host or its network unreachable


def _unreached(failures: list[tuple[str, Server, Exception]], waited: float) -> DirectoryError:
    """No server could be used: each one's reason, in the order tried. `waited`: the seconds
    this took, said as such (a connect timeout per server and address tried adds up)."""
    reasons = list(dict.fromkeys((url, *_reason(server, exc)) for url, server, exc in failures))
    urls = ", ".join(dict.fromkeys(url for url, _s, _o in reasons))
    if all(outcome == Outcome.NO_ANSWER for _u, _s, outcome in reasons):
        details = "; ".join(f"{url}: {said}" for url, said, _o in reasons if said != NO_ANSWER)
        seconds = max(1, round(waited))
        if details:
            return DirectoryError(_("No directory server answered at %(urls)s within %(seconds)s s "
                                    "(%(details)s). Check the host, the port, and that a firewall lets this "
                                    "server through.", urls=urls, seconds=seconds, details=details),
                                  Outcome.NO_ANSWER)
        return DirectoryError(_("No directory server answered at %(urls)s within %(seconds)s s. Check the "
                                "host, the port, and that a firewall lets this server through.",
                                urls=urls, seconds=seconds), Outcome.NO_ANSWER)
    outcome = next(outcome for _u, _s, outcome in reasons if outcome != Outcome.NO_ANSWER)
    heads = {Outcome.UNTRUSTED_CERTIFICATE: _("TLS failed"),
             Outcome.HOST_NOT_FOUND: _("No directory server was found")}
    head = heads.get(outcome) or _("No directory server answered")
    alike: dict[str, list[str]] = {}  # the URLs with the same reason, said once
    for url, said, _o in reasons:
        alike.setdefault(said, []).append(url)
    if len(alike) == 1:
        return DirectoryError(_("%(head)s at %(urls)s: %(reason)s.", head=head, urls=urls,
                                reason=reasons[0][1]), outcome)
    silent = _("no answer within %(seconds)s s", seconds=max(1, round(waited)))
    said = "; ".join(f"{', '.join(group)}: {silent if s == NO_ANSWER else s}" for s, group in alike.items())
    return DirectoryError(_("%(head)s: %(reasons)s.", head=head, reasons=said), outcome)


# Failing to reach one server is a reason to try the next; any other answer is the directory's.
_UNREACHABLE = (ldap_errors.LDAPSocketOpenError, ldap_errors.LDAPSocketReceiveError,
                ldap_errors.LDAPSessionTerminatedByServerError, OSError)


@contextmanager
def connect(settings: ConnectionSettings, reach: Reach | None = None) -> Iterator[Connection]:
    """A bound connection (StartTLS first on ldap:// when asked), unbound afterwards. The servers
    are tried in order (failover) until one opens; an encrypted connection's certificate is
    checked for the URL's host before the password is sent. Referrals are not followed (they
    would take the password to a server nobody checked). `reach`: a Test connection's, which
    services.outbound_policy checks every URL against (None: the import of a saved source)."""
    if not settings.urls:
        raise DirectoryError(_("Add at least one server URL."), Outcome.INVALID)
    targets = [(url, server) for url in settings.urls for server in _servers(url, settings, reach)]
    conn: Connection | None = None
    failures: list[tuple[str, Server, Exception]] = []
    started = time.monotonic()
    for url, server in targets:
        candidate = Connection(server, user=settings.bind_dn or None, password=settings.password or None,
                               receive_timeout=RECEIVE_TIMEOUT, raise_exceptions=True, auto_bind=False,
                               auto_referrals=False)
        try:
            candidate.open()
            if settings.use_starttls and not server.ssl:
                candidate.start_tls()
            _check_name(candidate, url)
            candidate.bind()
        except _UNREACHABLE as exc:
            _close(candidate)
            failures.append((url, server, exc))
            continue
        except DirectoryError:
            _close(candidate)
            raise
        except ldap_errors.LDAPException as exc:
            _close(candidate)
            raise _explain(exc, settings) from None
        conn = candidate
        break
    if conn is None:
        raise _unreached(failures, time.monotonic() - started) from None
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


@dataclass(frozen=True)
class ServerPosition:
    """How far a server's changes go, read from its rootDSE before an import reads any entry
    (Microsoft's "retrieve changes using uSNChanged"): `usn` is highestCommittedUSN, `dc` the
    domain controller whose counter it is — its invocationId (a new one when the DC is restored
    from a backup, so an old position is never used against it), else its dsServiceName — and
    `host` its dnsHostName, for messages. USNs are per DC: a position means nothing on another.
    All None on a server without them (OpenLDAP)."""

    dc: str | None = None
    host: str | None = None
    usn: int | None = None


def read_position(conn: Connection) -> ServerPosition:
    """The bound server's ServerPosition. A server that answers without AD's attributes (or
    refuses the rootDSE) has none; DirectoryError when the connection is cut."""
    root = _base_attributes(conn, "", ["highestCommittedUSN", "dsServiceName", "dnsHostName"])
    usn, service, host = (_text(root, "highestCommittedUSN"), _text(root, "dsServiceName"),
                          _text(root, "dnsHostName"))
    if usn is None or not usn.isdigit():
        return ServerPosition(host=host)
    invocation = _base_attributes(conn, service, ["invocationId"]).get("invocationId") if service else None
    raw = invocation[0] if invocation else None
    dc = str(uuid.UUID(bytes_le=raw)) if isinstance(raw, bytes) and len(raw) == 16 else service
    return ServerPosition(dc=dc, host=host, usn=int(usn))


def _base_attributes(conn: Connection, dn: str, attributes: list[str]) -> dict[str, list]:
    """The raw values of one entry's `attributes` (names as asked), {} when the server refuses."""
    try:
        conn.search(dn, "(objectClass=*)", search_scope=BASE, attributes=attributes)
    except _UNREACHABLE:
        raise DirectoryError(_("The directory server stopped answering while its position of changes was "
                               "read: run the import again."), Outcome.NO_ANSWER) from None
    except ldap_errors.LDAPException:
        return {}
    found = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
    raw = (found[0].get("raw_attributes") or {}) if found else {}
    by_name = {name.lower(): values for name, values in raw.items()}
    return {name: list(by_name[name.lower()]) for name in attributes if by_name.get(name.lower())}


def _text(values: dict[str, list], name: str) -> str | None:
    value = values.get(name, [None])[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def guids_filter(search_filter: str, attribute: str, guids: Iterable[str]) -> str:
    """The source's filter for the accounts with these GUIDs (UUID text): objectGUID as AD keeps
    it (16 bytes, the first three fields little-endian), another key attribute as UUID text."""
    binary = attribute.lower() == "objectguid"
    values = (escape_bytes(uuid.UUID(g).bytes_le) if binary else escape_filter_chars(g) for g in guids)
    wanted = "".join(f"({attribute}={value})" for value in values)
    return f"(&{search_filter}(|{wanted}))"


def reports_filter(search_filter: str, attribute: str, manager_dns: Iterable[str]) -> str:
    """The source's filter for the accounts whose manager (`attribute`) is one of these DNs."""
    wanted = "".join(f"({attribute}={escape_filter_chars(dn)})" for dn in manager_dns)
    return f"(&{search_filter}(|{wanted}))"


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
        raise DirectoryError(_("The base DN %(dn)s does not exist in the directory.", dn=base_dn)) from None
    except (ldap_errors.LDAPSizeLimitExceededResult, ldap_errors.LDAPAdminLimitExceededResult):
        raise DirectoryError(_size_limit(page_size)) from None
    except ldap_errors.LDAPInvalidDnError:
        raise DirectoryError(_("The base DN %(dn)s is not written as a DN: write it like "
                               "OU=Staff,DC=example,DC=com.", dn=base_dn), Outcome.INVALID) from None
    except _UNREACHABLE:
        raise DirectoryError(_("The directory server stopped answering during the search (the connection "
                               "was cut or timed out): run it again, or add another domain controller's URL "
                               "for failover."), Outcome.NO_ANSWER) from None
    except ldap_errors.LDAPException as exc:
        raise _in_words(exc, _("search of %(dn)s", dn=base_dn), conn.user or None) from None
    # ldap3's paged generator does not raise when the server stops early: ask the result.
    result = conn.result or {}
    if result.get("description") == "sizeLimitExceeded":
        raise DirectoryError(_size_limit(page_size))
    if result.get("description") == "referral":  # a base DN outside this directory (not followed)
        raise DirectoryError(_("The base DN %(dn)s is not in this directory: the server referred the "
                               "search to another one. Use a base DN inside this domain, or that directory's "
                               "server URL.", dn=base_dn))


def _size_limit(page_size: int) -> str:
    return _("The directory's size limit stopped the search: use a page size (now %(size)s) at or below the "
             "server's limit per page (AD: 1,000).", size=page_size)


def read_entry(conn: Connection, dn: str, attributes: list[str]) -> dict | None:
    """One entry by its DN (a manager outside this run), or None when it does not exist."""
    try:
        conn.search(dn, "(objectClass=*)", search_scope=BASE, attributes=attributes)
    except ldap_errors.LDAPNoSuchObjectResult:
        return None
    except _UNREACHABLE:
        raise DirectoryError(_("The directory server stopped answering while reading %(dn)s: run the "
                               "import again.", dn=dn), Outcome.NO_ANSWER) from None
    except ldap_errors.LDAPException as exc:
        raise _in_words(exc, _("read of %(dn)s", dn=dn), conn.user or None) from None
    found = [e for e in conn.response or [] if e.get("type") == "searchResEntry"]
    return _decoded(found[0].get("raw_attributes") or {}) if found else None


def _decoded(raw: dict) -> dict[str, list]:
    """Values as text (UTF-8, as LDAP sends them), except objectGUID, which stays 16 bytes."""
    return {name: list(values) if name.lower() == "objectguid"
            else [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
            for name, values in raw.items()}
