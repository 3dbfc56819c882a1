"""A customer's technical settings (the wizard's steps 2–5 and the edit tabs of the same names)
and the effective settings a computer registered under the customer inherits.

Secrets are accepted in clear, stored only encrypted (services.secrets.SecretBox) and never
returned by `settings_form_values`: an edit form shows whether one is set, and an empty value
keeps it. Inheritance is one function over explicit defaults, so an unknown key is an error.
"""

from __future__ import annotations

import ssl
from typing import Any

from sqlalchemy import select

from i18n import _
from models import Customer, CustomerSettings, GlobalSettings, Operator
from models.enums import MailSecurity, NotificationRoute
from services.access import Right, require
from services.audit import changes_of, record
from services.contact_info import clean_text, normalise_email
from services.errors import ErrorBag
from services.limits import check_lengths
from services.secrets import SecretBox
from services.transactions import DbSession, flush
from services.versions import ON_CURRENT, SeenVersion, check_seen_version

SERVERS = ("pop3", "smtp_primary", "smtp_fallback", "notification_smtp")
DEFAULT_PORTS = {("pop3", MailSecurity.SSL): 995, ("pop3", MailSecurity.NONE): 110,
                 ("pop3", MailSecurity.STARTTLS): 110, ("smtp", MailSecurity.SSL): 465,
                 ("smtp", MailSecurity.STARTTLS): 587, ("smtp", MailSecurity.NONE): 25}
DEFAULT_SECURITY = {"pop3": MailSecurity.SSL, "smtp": MailSecurity.STARTTLS}
SECRETS = ("cmonitor_password", *(f"{server}_password" for server in SERVERS))
PLAIN = (
    "use_builtin_mail_servers", "pop3_address", "notification_route", "notification_from_address",
    "notification_to_address", "requests_by_email_enabled", "request_intake_address",
    "unauthenticated_discussion_enabled", "mail_ca_certificate",
    *(f"{server}_{part}" for server in SERVERS for part in ("host", "port", "security", "username")),
)
EMAILS = ("pop3_address", "notification_from_address", "notification_to_address", "request_intake_address")
CA_CERTIFICATE_LIMIT = 64 * 1024  # a bundle of a few CA certificates; more is no CA file
FLAGS = ("use_builtin_mail_servers", "requests_by_email_enabled", "unauthenticated_discussion_enabled")


def settings_of(session: DbSession, customer: Customer) -> CustomerSettings:
    """The customer's settings row (a new one, with the defaults, when it has none yet)."""
    found = session.scalar(select(CustomerSettings).where(CustomerSettings.customer_id == customer.id))
    return found or CustomerSettings(customer_id=customer.id, use_builtin_mail_servers=True,
                                     notification_route=NotificationRoute.CM_SERVER,
                                     requests_by_email_enabled=False,
                                     unauthenticated_discussion_enabled=False)


def _port(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ValueError(_("A port is a number from 1 to 65535.")) from None
    if not 1 <= port <= 65535:
        raise ValueError(_("A port is a number from 1 to 65535."))
    return port


def clean_ca_certificate(value: Any) -> str | None:
    """A pasted or uploaded CA certificate as stored: PEM text of one or more certificates, line
    ends normalised; None when empty. Raises ValueError (in the user's words) for anything that
    is not certificates: a private key (which must never be pasted here), another file, a
    certificate OpenSSL cannot read."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return None
    if len(text) > CA_CERTIFICATE_LIMIT:
        raise ValueError(_("A CA certificate file is at most 64 KB: paste only the CA's certificate."))
    if "PRIVATE KEY" in text:
        raise ValueError(_("This is a private key: paste only the CA's certificate, never a key."))
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValueError(_("Paste the CA certificate in PEM form: the text from "
                           "-----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----."))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError):
        raise ValueError(_("This is not a certificate that can be read: paste the CA certificate "
                           "in PEM form.")) from None
    if not context.cert_store_stats().get("x509"):
        raise ValueError(_("No certificate was found in the text: paste the CA certificate in PEM form."))
    return text + "\n"


def _apply(row: CustomerSettings, values: dict[str, Any], box: SecretBox, bag: ErrorBag) -> None:
    for key, value in values.items():
        if key in SECRETS:
            if value:  # empty keeps the stored secret; clear_<name> removes it
                setattr(row, f"{key}_encrypted", box.encrypt(value))
        elif key.startswith("clear_") and key[6:] in SECRETS:
            if value:
                setattr(row, f"{key[6:]}_encrypted", None)
        elif key == "mail_ca_certificate":
            setattr(row, key, bag.check(key, clean_ca_certificate, value))
        elif key in FLAGS:
            setattr(row, key, bool(value))
        elif key.endswith("_port"):
            setattr(row, key, bag.check(key, _port, value))
        elif key.endswith("_security"):
            setattr(row, key, bag.check(key, lambda v: MailSecurity(v) if v else None, value))
        elif key == "notification_route":
            setattr(row, key, bag.check(key, NotificationRoute, value or NotificationRoute.CM_SERVER))
        elif key in EMAILS:
            setattr(row, key, bag.check(key, normalise_email, value))
        else:
            setattr(row, key, bag.check(key, clean_text, value))


def _require(row: CustomerSettings, bag: ErrorBag, field: str, why: str) -> None:
    if not getattr(row, field):
        bag.add(field, why)


def validate_settings(row: CustomerSettings, bag: ErrorBag) -> None:
    """Rules across fields: own servers need hosts, routing through SMTP needs its server and
    address, requests by e-mail need the intake address; no text longer than its column."""
    check_lengths(row, bag)
    if not row.use_builtin_mail_servers:
        _require(row, bag, "pop3_host", _("Required when the customer uses its own mail servers."))
        _require(row, bag, "smtp_primary_host", _("Required when the customer uses its own mail servers."))
    if row.notification_route == NotificationRoute.SMTP:
        _require(row, bag, "notification_smtp_host",
                 _("Required to send notifications through another SMTP server."))
        _require(row, bag, "notification_to_address",
                 _("Required to send notifications through another SMTP server."))
    if row.requests_by_email_enabled:
        _require(row, bag, "request_intake_address", _("Required to accept requests by e-mail."))
    for server in SERVERS:  # a host alone gets the usual security and port of its protocol
        if not getattr(row, f"{server}_host"):
            continue
        kind = "pop3" if server == "pop3" else "smtp"
        if getattr(row, f"{server}_security") is None:
            setattr(row, f"{server}_security", DEFAULT_SECURITY[kind])
        if not getattr(row, f"{server}_port"):
            setattr(row, f"{server}_port", DEFAULT_PORTS[(kind, getattr(row, f"{server}_security"))])


def build_settings(values: dict[str, Any], box: SecretBox) -> CustomerSettings:
    """New settings from `values`, checked but not saved (the wizard attaches them to the new
    customer, so both are written in one transaction). Raises ValidationFailed."""
    _check_keys(values)
    row = CustomerSettings(use_builtin_mail_servers=True, notification_route=NotificationRoute.CM_SERVER,
                           requests_by_email_enabled=False, unauthenticated_discussion_enabled=False)
    bag = ErrorBag()
    _apply(row, values, box, bag)
    validate_settings(row, bag)
    bag.raise_if_any()
    return row


def _check_keys(values: dict[str, Any]) -> None:
    unknown = set(values) - set(PLAIN) - set(SECRETS) - {f"clear_{s}" for s in SECRETS}
    if unknown:
        raise ValueError(f"Unknown settings: {', '.join(sorted(unknown))}")


def save_customer_settings(
    session: DbSession, customer: Customer, actor: Operator | None, box: SecretBox,
    values: dict[str, Any], *, seen_version: SeenVersion = ON_CURRENT,
) -> CustomerSettings:
    """Apply `values` (keys of PLAIN, SECRETS and clear_<secret>) to the customer's settings and
    flush them with an audit event (secrets recorded as "changed"); the door's unit of work
    commits. Raises ValueError for an unknown key (a programming error), ValidationFailed
    (StaleRecord when changed since `seen_version`), VersionRequired when a door sends None for a
    stored row (`ON_CURRENT`, the default, is for the system's jobs) or PermissionDenied; the
    door's unit of work then rolls back, so nothing is written."""
    _check_keys(values)
    row = settings_of(session, customer)
    if actor is not None:
        require(session, actor, customer.id, Right.EDIT)
    with session.no_autoflush:
        check_seen_version(session, "customersettings", row, seen_version)
    bag = ErrorBag()
    with session.no_autoflush:
        _apply(row, values, box, bag)
        validate_settings(row, bag)
    bag.raise_if_any()
    session.add(row)
    changes = changes_of(row)
    flush(session)
    if changes:
        record(session, actor, "update", row, changes, entity_type="customersettings")
    flush(session)
    return row


def settings_form_values(row: CustomerSettings) -> dict[str, Any]:
    """What an edit form may show: every plain value, and for each secret only whether it is set."""
    values = {key: getattr(row, key) for key in PLAIN}
    values.update({f"{secret}_set": bool(getattr(row, f"{secret}_encrypted")) for secret in SECRETS})
    return values


def _server(source, prefix: str, box: SecretBox | None) -> dict[str, Any] | None:
    host = getattr(source, f"{prefix}_host")
    if not host:
        return None
    security = getattr(source, f"{prefix}_security")
    server = {"host": host, "port": getattr(source, f"{prefix}_port"),
              "security": security.value if security else None,
              "username": getattr(source, f"{prefix}_username")}
    if box is not None:
        server["password"] = box.decrypt(getattr(source, f"{prefix}_password_encrypted"))
    return server


def effective_settings(session: DbSession, customer: Customer, box: SecretBox | None = None) -> dict:
    """The settings a computer of `customer` inherits: the global built-in mail servers unless the
    customer has its own, the customer's C-Monitor password, notification routing and requests by
    e-mail. Secrets are included (decrypted) only when `box` is given — for the agent itself."""
    own = settings_of(session, customer)
    builtin = session.get(GlobalSettings, 1)
    if builtin is None:
        raise LookupError("Global settings are missing: run `flask --app app setup`.")
    mail_source = builtin if own.use_builtin_mail_servers else own
    smtp = [s for s in (_server(mail_source, "smtp_primary", box), _server(mail_source, "smtp_fallback", box))
            if s is not None]
    pop3 = _server(mail_source, "pop3", box)
    if pop3 is not None:
        pop3["address"] = mail_source.pop3_address
    cmonitor: dict[str, Any] = {"access_password_set": bool(own.cmonitor_password_encrypted)}
    if box is not None:
        cmonitor["access_password"] = box.decrypt(own.cmonitor_password_encrypted)
    return {
        "cmonitor": cmonitor,
        "mail": {"source": "builtin" if own.use_builtin_mail_servers else "customer",
                 "pop3": pop3, "smtp": smtp},
        "notifications": {
            "route": own.notification_route.value,
            "smtp": _server(own, "notification_smtp", box)
            if own.notification_route == NotificationRoute.SMTP else None,
            "from_address": own.notification_from_address,
            "to_address": own.notification_to_address,
        },
        "requests_by_email": {
            "enabled": own.requests_by_email_enabled,
            "intake_address": own.request_intake_address,
            "unauthenticated_discussion": own.unauthenticated_discussion_enabled,
        },
    }
