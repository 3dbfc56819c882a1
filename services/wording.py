"""The users' words for stored values: field labels instead of column names, values as a person
reads them. History, the audit trail, the merge page, the wizard's summary and directory
reports all show changes through here, so a value looks the same on every page.

- `field_label(entity_type, field)`: the label the product's forms use for a field ("Primary
  phone", "Company ID (IČO)"), translated; a field no table knows reads as its name in words.
- `shown_value(entity_type, field, value)`: a stored or audited value as a person reads it —
  a phone in international format, a time (a datetime or the ISO text the audit stores) to the
  minute in the reader's zone (`i18n.when`), a choice by its label, Yes/No, a list
  comma-joined, a secret (or the audit's mask) as "changed", nothing as "—".
- `change_lines(entity_type, changes)`: an audit event's `changes` as ChangeLine(label, old,
  new). A value that is not an [old, new] pair (a merge's or a deletion's summary) becomes a
  line whose `old` is "" (`ChangeLine.is_summary`): show its `new` alone.
- `entity_name(entity_type)` / `action_name(action)` / `record_name(entity_type, label)` /
  `actor_name(label)`: a record type, an audit action, an event's record and its author in
  words ("Customer settings", "Status changed", "Contact: Jana Nová", "System").
- `TEMPLATE_GLOBALS`: these functions by name, for templates.

Pure functions: call them inside an app context (a request's, for the reader's language and
time zone). Nothing here reads the database.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from i18n import _, _l, when
from models.enums import (
    CustomerKind,
    DirectoryTarget,
    EmployeeType,
    IntakeOutcome,
    MailSecurity,
    MailState,
    NotificationRoute,
    OperatorRole,
    PhoneType,
    RequestSource,
    RequestStatus,
    UnknownSenders,
    Via,
)
from services.contact_info import format_phone
from services.secrets import MASK

EMPTY = "—"


class ChangeLine(NamedTuple):
    label: str
    old: str
    new: str

    @property
    def is_summary(self) -> bool:
        """A recorded value that is no [old, new] pair: show `new` alone, without an arrow."""
        return self.old == ""


# ---------------------------------------------------------------------------------------------
# Record types and actions

ENTITY_NAMES = {
    "customer": _l("Customer"),
    "contact": _l("Contact"),
    "operator": _l("Operator"),
    "customersettings": _l("Customer settings"),
    "globalsettings": _l("Settings"),
    "request": _l("Request"),
    "requestcomment": _l("Comment"),
    "directorysource": _l("Directory source"),
    "portalaccount": _l("Portal account"),
    "apitoken": _l("API token"),
    "customerstatus": _l("Customer status"),
    "slalevel": _l("SLA level"),
    "site": _l("Site"),
    "building": _l("Building"),
    "department": _l("Department"),
    "workgroup": _l("Workgroup"),
    "team": _l("Team"),
    "securitygroup": _l("Security group"),
    "incomingmail": _l("Incoming mail"),
    "outgoingmail": _l("Outgoing mail"),
    "computer": _l("Computer"),
    "bulkimport": _l("Import"),
}

ACTION_NAMES = {
    "create": _l("Created"),
    "update": _l("Changed"),
    "delete": _l("Deleted"),
    "status_change": _l("Status changed"),
    "status": _l("Status changed"),
    "operator_assignment": _l("Responsible operators changed"),
    "login_success": _l("Signed in"),
    "login_failure": _l("Sign-in failed"),
    "logout": _l("Signed out"),
    "password_change": _l("Password changed"),
    "password_reset": _l("Password reset"),
    "portal_credentials": _l("Portal access changed"),
    "portal_sign_in": _l("Signed in to the portal"),
    "portal_sign_in_failure": _l("Portal sign-in failed"),
    "portal_sign_in_throttled": _l("Portal sign-in held back"),
    "portal_sign_out": _l("Signed out of the portal"),
    "portal_password_change": _l("Portal password changed"),
    "import": _l("Imported"),
    "merge": _l("Merged"),
    "merged_into": _l("Merged into another record"),
    "unmerge": _l("Merge undone"),
    "rotate_registration_key": _l("Registration key renewed"),
    "register_computer": _l("Computer registered"),
    "reregister_computer": _l("Computer registered again"),
    "fetch_computer_settings": _l("Computer settings fetched"),
    "push_settings": _l("Settings sent to the computer"),
    "revoke": _l("Revoked"),
    "comment": _l("Comment added"),
    "rating": _l("Rated"),
    "resend": _l("Sent again"),
    "intake_decision": _l("Held mail decided"),
}


def _key(entity_type: str | None) -> str:
    return (entity_type or "").lower().replace("_", "").replace(" ", "")


def entity_name(entity_type: str | None) -> str:
    """A record type in words ("customersettings" → "Customer settings")."""
    name = ENTITY_NAMES.get(_key(entity_type))
    if name is not None:
        return str(name)
    return (entity_type or "").replace("_", " ").capitalize() or EMPTY


_REPR = re.compile(r"<([A-Z][A-Za-z0-9_]*)(?: [^<>]*)?>")


def record_name(entity_type: str | None, entity_label: str | None) -> str:
    """The record an event is about, in words: "Customer settings", "Contact: Jana Nová".
    Older events stored a repr ("<CustomerSettings 1>") as the label: the type alone then."""
    kind = entity_name(entity_type)
    if not entity_label or _REPR.fullmatch(entity_label):
        return kind
    return _("%(type)s: %(name)s", type=kind, name=entity_label)


def actor_name(actor_label: str | None, operator=None) -> str:
    """Who an event names: the operator by name (the label keeps the e-mail they had then), a
    portal user — or the desk itself."""
    if operator is not None and getattr(operator, "email", None) == actor_label:
        return operator.full_name
    if actor_label == "system":
        return _("System")
    if actor_label == "command line":
        return _("Command line")
    return actor_label or EMPTY


def action_name(action: str | None) -> str:
    """An audit action in words ("status_change" → "Status changed")."""
    name = ACTION_NAMES.get(action or "")
    if name is not None:
        return str(name)
    return (action or "").replace("_", " ").capitalize() or EMPTY


# ---------------------------------------------------------------------------------------------
# Field labels: one table per record type (the words of its forms), then the words every
# record type shares. A field no table knows reads as its name in words.

def _server_labels(prefix: str, server: Any) -> dict[str, Any]:
    return {
        f"{prefix}_host": _l("%(server)s: host", server=server),
        f"{prefix}_port": _l("%(server)s: port", server=server),
        f"{prefix}_security": _l("%(server)s: security", server=server),
        f"{prefix}_username": _l("%(server)s: user name", server=server),
        f"{prefix}_password": _l("%(server)s: password", server=server),
        f"{prefix}_password_encrypted": _l("%(server)s: password", server=server),
    }


_MAIL_SERVER_LABELS = {
    **_server_labels("pop3", "POP3"),
    **_server_labels("smtp_primary", _l("Primary SMTP")),
    **_server_labels("smtp_fallback", _l("Fallback SMTP")),
    "pop3_address": _l("POP3 mailbox address"),
}

COMMON_LABELS: dict[str, Any] = {
    "name": _l("Name"),
    "display_name": _l("Name"),
    "first_name": _l("First name"),
    "middle_name": _l("Middle name"),
    "last_name": _l("Last name"),
    "title": _l("Title"),
    "email": _l("E-mail"),
    "phone": _l("Phone"),
    "phone_type": _l("Phone type"),
    "is_active": _l("Active"),
    "status": _l("Status"),
    "notes": _l("Notes"),
    "created_at": _l("Created"),
    "updated_at": _l("Changed"),
    "customer": _l("Customer"),
    "contact": _l("Contact"),
    "operator": _l("Operator"),
    "password": _l("Password"),
    "password_hash": _l("Password"),
    "description": _l("Description"),
    "version": _l("Version"),
    "merged": _l("Merged"),
    "merged_into": _l("Merged into"),
    "unmerged": _l("Merge undone"),
    "deleted_with": _l("Deleted with"),
    "contacts": _l("Contacts"),
    "computers": _l("Computers"),
    "requests": _l("Requests"),
    "settings": _l("Settings"),
    "portal_account": _l("Portal account"),
    "directory_guid": _l("Directory GUID (objectGUID)"),
    "directory_dn": _l("Directory DN"),
    "sam_account_name": _l("sAMAccountName"),
    "directory_synced_at": _l("Last directory import"),
    "last_login_at": _l("Last sign-in"),
}

LABELS: dict[str, dict[str, Any]] = {
    "customer": {
        "kind": _l("Kind"),
        "display_name": _l("Name"),
        "company_name": _l("Company name"),
        "registration_number": _l("Company ID (IČO)"),
        "vat_id": _l("VAT ID"),
        "middle_name": _l("Middle name"),
        "employee_type": _l("Employee type"),
        "department": _l("Department"),
        "manager": _l("Manager"),
        "status": _l("Status"),
        "sla_level": _l("SLA level"),
        "site": _l("Site"),
        "building": _l("Building"),
        "location_code": _l("Location ID"),
        "primary_phone": _l("Primary phone"),
        "primary_phone_type": _l("Primary phone type"),
        "secondary_phone": _l("Secondary phone"),
        "secondary_phone_type": _l("Secondary phone type"),
        "email": _l("E-mail"),
        "secondary_email": _l("Secondary e-mail"),
        "workgroups": _l("Workgroups"),
        "operators": _l("Responsible operators"),
        "photo": _l("Photo"),
        "registration_key_hash": _l("Registration key"),
        "merged_at": _l("Merged on"),
        "directory_source": _l("Directory source"),
        "settings": _l("Customer settings"),
        "customersettings": _l("Customer settings"),
        "contact_first_name": _l("Contact person's first name"),
        "contact_last_name": _l("Contact person's last name"),
        "contact_email": _l("Contact person's e-mail"),
        "confirm_duplicate": _l("Created despite a similar record"),
        "portal_username": _l("Portal user name"),
        "portal_password": _l("Portal password"),
        "username": _l("Portal user name"),
        "security_group": _l("Security group"),
        "must_change_password": _l("Must change the password"),
    },
    "contact": {
        "customer": _l("Company"),
        "is_main": _l("Main contact"),
        "phone_type": _l("Phone type"),
    },
    "operator": {
        "email": _l("E-mail (login)"),
        "role": _l("Role"),
        "manager": _l("Manager"),
        "teams": _l("Teams"),
        "language": _l("Language"),
        "time_zone": _l("Time zone"),
        "session_generation": _l("Sessions"),
    },
    "customersettings": {
        "cmonitor_password": _l("C-Monitor access password"),
        "cmonitor_password_encrypted": _l("C-Monitor access password"),
        "cmonitor_password_confirm": _l("Repeat the password"),
        "use_builtin_mail_servers": _l("Use the built-in mail servers"),
        **_MAIL_SERVER_LABELS,
        "mail_ca_certificate": _l("CA certificate of the customer's servers"),
        "notification_route": _l("Send C-Monitor notifications"),
        **_server_labels("notification_smtp", _l("Notification SMTP")),
        "notification_from_address": _l("From address"),
        "notification_to_address": _l("Send to address"),
        "requests_by_email_enabled": _l("Requests and discussion by e-mail"),
        "request_intake_address": _l("Intake address"),
        "unauthenticated_discussion_enabled": _l("Discussion and acceptance without signing in"),
        "operators": _l("Responsible operators"),
    },
    "globalsettings": {
        **_MAIL_SERVER_LABELS,
        "quick_form_requires_email": _l("The quick form requires an e-mail"),
        "duplicate_name_threshold": _l("Similar names threshold"),
        "view_by_team_members": _l("Team members may view"),
        "view_by_managers": _l("Managers may view"),
        "edit_by_team_members": _l("Team members may edit"),
        "edit_by_managers": _l("Managers may edit"),
        "delete_by_team_members": _l("Team members may delete"),
        "delete_by_managers": _l("Managers may delete"),
        "unknown_senders": _l("Mail from unknown senders"),
    },
    "request": {
        "subject": _l("Subject"),
        "description": _l("Description"),
        "status": _l("Status"),
        "source": _l("Raised through"),
        "created_by": _l("Created by"),
        "requester_contact": _l("Requester"),
        "contacts": _l("Assigned contacts"),
        "rating": _l("Rating"),
        "rating_remark": _l("Rating remark"),
        "rated_at": _l("Rated on"),
    },
    "directorysource": {
        "server_urls": _l("Server URLs"),
        "use_starttls": _l("StartTLS"),
        "verify_certificate": _l("Verify certificate"),
        "ca_file": _l("CA file"),
        "bind_dn": _l("Bind DN"),
        "bind_password": _l("Bind password"),
        "bind_password_encrypted": _l("Bind password"),
        "base_dn": _l("Base DN"),
        "search_filter": _l("Search filter"),
        "page_size": _l("Page size"),
        "attribute_map": _l("Attribute mapping"),
        "target": _l("Import people as"),
        "target_company": _l("Company (for contacts)"),
        "company_rules": _l("Company rules"),
        "office_maps_to": _l("physicalDeliveryOfficeName goes to"),
        "empty_values": _l("When the directory has no value"),
        "max_deactivate_percent": _l("Hold above (%)"),
        "exclude_system_accounts": _l("Leave out built-in and service accounts"),
        "exclude_ous": _l("Leave out OUs"),
        "exclude_accounts": _l("Leave out account names"),
        "last_usn": _l("Last imported uSNChanged"),
        "full_sync_at": _l("Nightly full sync at"),
        "changes_every_minutes": _l("Changes every (minutes)"),
        # A directory run's report names the fields of the records it writes:
        "customer": _l("Company"),
        "location_code": _l("Location ID"),
        "department": _l("Department"),
        "manager": _l("Manager"),
        "site": _l("Site"),
        "primary_phone": _l("Primary phone"),
        "secondary_phone": _l("Secondary phone"),
    },
    "portalaccount": {
        "username": _l("User name"),
        "security_group": _l("Security group"),
        "must_change_password": _l("Must change the password"),
        "reset_token_hash": _l("Password reset link"),
        "session_epoch": _l("Sessions"),
    },
    "securitygroup": {
        "may_create_requests": _l("May create requests"),
        "may_see_all_requests": _l("Contacts see all the company's requests"),
    },
    "customerstatus": {
        "is_default": _l("Default for new customers"),
        "is_active": _l("Counts as active"),
    },
    "building": {"site": _l("Site")},
    "apitoken": {"revoked_at": _l("Revoked on"), "last_used_at": _l("Last used")},
    "incomingmail": {
        "outcome": _l("Outcome"), "reason": _l("Reason"), "from_address": _l("From"),
        "subject": _l("Subject"), "request": _l("Request"),
    },
    "outgoingmail": {
        "resent_from": _l("Sent again from"), "recipient_email": _l("Recipient"),
        "subject": _l("Subject"), "state": _l("State"),
    },
    "computer": {"hostname": _l("Computer name"), "settings": _l("Settings")},
}
# Record types whose fields are another's: a merge or deletion summary's keys, the lookups.
for _lookup in ("slalevel", "site", "department", "workgroup", "team"):
    LABELS.setdefault(_lookup, {})


def field_label(entity_type: str, field: str) -> str:
    """The label a person knows a field by (translated)."""
    label = LABELS.get(_key(entity_type), {}).get(field)
    if label is None:
        label = COMMON_LABELS.get(field)
    if label is None:
        label = LABELS["customer"].get(field)
    if label is None:
        base = field.removesuffix("_encrypted").removesuffix("_hash").removesuffix("_id")
        return base.replace("_", " ").strip().capitalize() or field
    return str(label)


# ---------------------------------------------------------------------------------------------
# Values

# A field whose stored value is one of a choice's values → the choice (its label is shown).
ENUM_FIELDS: dict[str, type[enum.Enum]] = {
    "kind": CustomerKind,
    "employee_type": EmployeeType,
    "phone_type": PhoneType,
    "primary_phone_type": PhoneType,
    "secondary_phone_type": PhoneType,
    "role": OperatorRole,
    "via": Via,
    "notification_route": NotificationRoute,
    "target": DirectoryTarget,
    "unknown_senders": UnknownSenders,
    "outcome": IntakeOutcome,
}
ENTITY_ENUM_FIELDS: dict[tuple[str, str], type[enum.Enum]] = {
    ("request", "status"): RequestStatus,
    ("request", "source"): RequestSource,
    ("outgoingmail", "state"): MailState,
}
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_FIELD = re.compile(r"(_at|_on|_date|_until|^date|^at)$")


def _is_secret(field: str) -> bool:
    from services.audit import is_secret  # the audit's own rule (imported late: no cycle)

    return is_secret(field)


def _masked(value: Any) -> Any:
    from services.audit import masked  # the audit's own mask, applied again where it is read

    return masked(value)


def _enum_of(entity_type: str, field: str) -> type[enum.Enum] | None:
    choice = ENTITY_ENUM_FIELDS.get((_key(entity_type), field)) or ENUM_FIELDS.get(field)
    if choice is None and field.endswith("_security"):
        return MailSecurity
    return choice


def _choice_label(member: enum.Enum) -> str:
    label = getattr(member, "label", None)
    return _(str(label)) if label is not None else str(member.value)


_COLUMNS: dict[str, dict[str, Any]] = {}


def _columns(entity_type: str) -> dict[str, Any]:
    """The columns of the record type an event names (its model's, by class name), from the
    models' metadata (not the database); {} for a type no model has."""
    if not _COLUMNS:
        from models import Base

        for mapper in Base.registry.mappers:
            _COLUMNS[mapper.class_.__name__.lower()] = {
                attr.key: attr.columns[0] for attr in mapper.column_attrs}
    return _COLUMNS.get(_key(entity_type), {})


def _is_time_field(entity_type: str, field: str) -> bool:
    """Whether a field holds a date or time: its column's type says so; a field no column
    has (an older event's, a summary's) by its name ("…_at", "…_on", "…_date"). A text that
    merely looks like a time (notes, a title) is shown as it was typed."""
    column = _columns(entity_type).get(field)
    if column is not None:
        try:
            kind = column.type.python_type
        except NotImplementedError:
            return False
        return kind in (datetime, date)
    return bool(_DATE_FIELD.search(field))


def _time(value: str, field: str) -> str | None:
    """An ISO date or time (as the audit stores them) to the minute in the reader's zone; None
    for a text that is none (or one beyond the calendar a zone can shift to)."""
    try:
        if _DATETIME.fullmatch(value):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC).replace(tzinfo=None)
            return when(moment)
        if _DATE.fullmatch(value):
            return when(date.fromisoformat(value))
    except (ValueError, OverflowError):
        return None
    return None


def _is_phone(field: str) -> bool:
    return field == "phone" or field.endswith("_phone") or field.endswith("phone_number")


def shown_value(entity_type: str, field: str, value: Any) -> str:
    """A stored or audited value as a person reads it; "—" for nothing."""
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    value = _masked(value)  # what an older event (or a script) stored past the audit's mask
    if value == MASK or _is_secret(field):
        return _("changed")
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, enum.Enum):
        return _choice_label(value)
    if isinstance(value, datetime | date):
        try:
            return when(value)
        except (ValueError, OverflowError):
            return value.isoformat()
    if isinstance(value, list | tuple | set):
        items = [shown_value(entity_type, field, item) for item in value]
        return ", ".join(item for item in items if item != EMPTY) or EMPTY
    if isinstance(value, dict):
        return summary(entity_type, value)
    if isinstance(value, str):
        if _REPR.fullmatch(value):  # an older event's repr of a record without a name
            return entity_name(_REPR.fullmatch(value).group(1))  # type: ignore[union-attr]
        if field == "photo":
            return _("a photo")
        choice = _enum_of(entity_type, field)
        if choice is not None:
            try:
                return _choice_label(choice(value))
            except ValueError:
                pass  # an older event recorded the label itself
        if _is_phone(field) and value.startswith("+"):
            return format_phone(value)
        if _is_time_field(entity_type, field):
            moment = _time(value, field)
            if moment is not None:
                return moment
    return str(value)


def summary(entity_type: str, values: dict) -> str:
    """A recorded dict (what a deletion took along, a merge's record) in words:
    "Contacts: 2, Portal account: 1"."""
    parts = []
    for key, item in values.items():
        if key == "undo":
            continue
        parts.append(f"{field_label(entity_type, str(key))}: {shown_value(entity_type, str(key), item)}")
    return ", ".join(parts) or EMPTY


# A merge event's record of what its undo needs: internal, never shown.
HIDDEN_CHANGES = {"undo"}


def change_lines(entity_type: str, changes: dict | None) -> list[ChangeLine]:
    """An audit event's `changes` (field → [old, new]) as labelled, readable lines. A value
    that is no pair (a merge's or a deletion's summary) is a line with `old` "" (is_summary).
    Never raises, whatever an event holds."""
    lines = []
    if not isinstance(changes, dict):
        if changes in (None, "", [], {}):
            return []
        return [ChangeLine(_("Recorded"), "", shown_value(entity_type, "", changes))]
    for field, values in changes.items():
        field = str(field)
        if field in HIDDEN_CHANGES:
            continue
        label = field_label(entity_type, field)
        if isinstance(values, list | tuple) and len(values) == 2:
            old, new = values
            if field == "photo" and old and new:
                lines.append(ChangeLine(label, _("a photo"), _("a new photo")))
                continue
            lines.append(ChangeLine(label, shown_value(entity_type, field, old),
                                    shown_value(entity_type, field, new)))
        else:
            lines.append(ChangeLine(label, "", shown_value(entity_type, field, values)))
    return lines


TEMPLATE_GLOBALS = {
    "field_label": field_label, "shown_value": shown_value, "change_lines": change_lines,
    "entity_name": entity_name, "action_name": action_name, "record_name": record_name,
    "actor_name": actor_name,
}
