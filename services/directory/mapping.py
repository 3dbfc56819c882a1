"""From a directory entry to the fields of a person: pure functions, no server, no database.

The attribute map of a source says which LDAP attribute feeds which field; the defaults are
Active Directory's. OpenLDAP returns standard attributes as lists and AD as single values, so
every value is normalised to one string (or bytes for objectGUID) first.

The exclusion rule (`Exclusion`) leaves built-in and service accounts out of an import. It is
decided here, on attributes read with the entry, never in the LDAP filter: a server without AD's
attributes (OpenLDAP) evaluates a filter naming them as Undefined and would match nothing.
"""

from __future__ import annotations

import fnmatch
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from i18n import _

# field → LDAP attribute. Fields are the customer's (or contact's) columns, plus the directory's
# own: the manager's DN, the office, the account control flags and the change counter.
DEFAULT_ATTRIBUTE_MAP: dict[str, str] = {
    "sam_account_name": "sAMAccountName",
    "directory_guid": "objectGUID",
    "first_name": "givenName",
    "middle_name": "initials",
    "last_name": "sn",
    "email": "mail",
    "primary_phone": "telephoneNumber",
    "secondary_phone": "mobile",
    "department": "department",
    "title": "title",
    "manager": "manager",
    "office": "physicalDeliveryOfficeName",
    "company": "company",
    "account_control": "userAccountControl",
    "account_expires": "accountExpires",
    "usn_changed": "uSNChanged",
}
# Fields the directory owns: an import updates these and nothing else on a record.
DIRECTORY_FIELDS = ("first_name", "middle_name", "last_name", "email", "primary_phone", "secondary_phone",
                    "title", "department", "office", "manager", "sam_account_name", "directory_dn")
ACCOUNT_DISABLED = 0x2  # userAccountControl ACCOUNTDISABLE
# accountExpires: 100-ns intervals since 1601-01-01 UTC (FILETIME); 0 and the largest value: never.
NEVER_EXPIRES = (0, 0x7FFFFFFFFFFFFFFF)
FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
# User accounts, enabled and disabled; computer accounts (also objectClass=user in AD) end in "$".
# Written without objectCategory/objectClass=computer, which a server lacking them (OpenLDAP)
# evaluates as Undefined, so the whole filter would match nothing.
DEFAULT_FILTER = "(&(objectClass=user)(!(sAMAccountName=*$)))"


class EntryRefused(ValueError):
    """The entry cannot become a person (a required name missing, no stable key)."""


@dataclass(frozen=True)
class DirectoryPerson:
    """One directory account, normalised."""

    dn: str
    guid: str  # objectGUID as a UUID string
    sam: str | None
    first_name: str | None
    middle_name: str | None
    last_name: str | None
    email: str | None
    primary_phone: str | None
    secondary_phone: str | None
    department: str | None
    title: str | None
    manager_dn: str | None
    office: str | None
    company: str | None
    ou: str | None  # the entry's first organizational unit, for the company rules
    disabled: bool  # userAccountControl says disabled, or the account has expired
    usn: int | None
    expired: bool = False  # accountExpires is in the past (also counted as disabled)


def attribute_map(custom: Mapping[str, str] | None) -> dict[str, str]:
    """The defaults overridden by a source's own mapping; unknown fields raise ValueError."""
    unknown = set(custom or {}) - set(DEFAULT_ATTRIBUTE_MAP)
    if unknown:
        raise ValueError(_("Unknown field(s) in the attribute mapping: %(fields)s.",
                           fields=", ".join(sorted(unknown))))
    return {**DEFAULT_ATTRIBUTE_MAP, **{k: v.strip() for k, v in (custom or {}).items() if v and v.strip()}}


def single(value: Any) -> Any:
    """One value of a possibly multi-valued attribute (the first), None for empty."""
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if isinstance(value, str):
        value = value.strip() or None
    return value


def guid_of(value: Any) -> str | None:
    """objectGUID as a UUID string: AD sends 16 bytes in little-endian field order."""
    value = single(value)
    if value is None:
        return None
    if isinstance(value, bytes | bytearray) and len(value) == 16:
        return str(uuid.UUID(bytes_le=bytes(value)))
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def first_ou(dn: str) -> str | None:
    for part in dn.split(","):
        key, _, value = part.strip().partition("=")
        if key.lower() == "ou":
            return value
    return None


def _int(value: Any) -> int | None:
    value = single(value)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def filetime(moment: datetime) -> int:
    """`moment` as AD's FILETIME (a naive datetime is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def has_expired(value: Any, now: datetime | None = None) -> bool:
    """Whether an accountExpires value lies at or before `now` (default: this moment). An empty or
    unreadable value, 0 and 9223372036854775807 mean the account never expires."""
    expires = _int(value)
    if expires is None or expires in NEVER_EXPIRES:
        return False
    return expires <= filetime(now or datetime.now(UTC))


def _disabled(lowered: Mapping[str, Any], mapping: Mapping[str, str],
              now: datetime | None) -> tuple[bool, bool]:
    """(disabled, expired): an expired account counts as disabled, as AD refuses its sign-in."""
    control = _int(lowered.get(mapping["account_control"].lower()))
    expired = has_expired(lowered.get(mapping["account_expires"].lower()), now)
    return bool(control is not None and control & ACCOUNT_DISABLED) or expired, expired


def map_entry(dn: str, attributes: Mapping[str, Any], mapping: Mapping[str, str], *,
              now: datetime | None = None) -> DirectoryPerson:
    """A directory entry as a DirectoryPerson; raises EntryRefused with the reason. `now`: the
    moment accountExpires is compared with (default: this moment)."""
    lowered = {k.lower(): v for k, v in attributes.items()}

    def get(field: str) -> Any:
        return single(lowered.get(mapping[field].lower()))

    guid = guid_of(lowered.get(mapping["directory_guid"].lower()))
    if guid is None:
        raise EntryRefused(_("no objectGUID: the entry has no stable key to import it by"))
    first, last = get("first_name"), get("last_name")
    if not first or not last:
        names = f"{mapping['first_name']}/{mapping['last_name']}"
        if not first and not last:
            raise EntryRefused(_("no first name and no last name (%(attributes)s)", attributes=names))
        if not first:
            raise EntryRefused(_("no first name (%(attributes)s)", attributes=names))
        raise EntryRefused(_("no last name (%(attributes)s)", attributes=names))
    disabled, expired = _disabled(lowered, mapping, now)
    return DirectoryPerson(
        dn=dn, guid=guid, sam=get("sam_account_name"), first_name=first, middle_name=get("middle_name"),
        last_name=last, email=get("email"), primary_phone=get("primary_phone"),
        secondary_phone=get("secondary_phone"), department=get("department"), title=get("title"),
        manager_dn=get("manager"), office=get("office"), company=get("company"), ou=first_ou(dn),
        disabled=disabled, usn=_int(lowered.get(mapping["usn_changed"].lower())), expired=expired,
    )


def account_keys(attributes: Mapping[str, Any], mapping: Mapping[str, str]) -> tuple[str | None, bool]:
    """(GUID, disabled or expired) of an entry read with its keys only (the counting pass)."""
    lowered = {k.lower(): v for k, v in attributes.items()}
    return guid_of(lowered.get(mapping["directory_guid"].lower())), _disabled(lowered, mapping, None)[0]


def key_attributes(mapping: Mapping[str, str]) -> list[str]:
    """What the counting pass reads of each entry: its keys, whether it is disabled or expired,
    and what the exclusion rule looks at."""
    return sorted({mapping[f] for f in ("directory_guid", "account_control", "account_expires",
                                        "sam_account_name")} | set(EXCLUSION_ATTRIBUTES))


def requested_attributes(mapping: Mapping[str, str]) -> list[str]:
    """What an import reads of each entry: the mapped attributes and the exclusion rule's."""
    return sorted(set(mapping.values()) | set(EXCLUSION_ATTRIBUTES))


# --- the exclusion rule: built-in and service accounts -------------------------------------------
EXCLUSION_ATTRIBUTES = ("objectClass", "isCriticalSystemObject", "servicePrincipalName")
# objectClass values of accounts that are not people (computers and managed service accounts are
# also objectClass=user in AD), the most specific first. Lower case, as compared.
SYSTEM_CLASSES = {
    "msds-groupmanagedserviceaccount": "group managed service account",
    "msds-delegatedmanagedserviceaccount": "delegated managed service account",
    "msds-managedserviceaccount": "managed service account",
    "computer": "computer account",
}
BUILT_IN = "built-in account (isCriticalSystemObject)"
SERVICE = "service account (it has a servicePrincipalName)"
MACHINE = "computer account (its name ends in $)"
_ESCAPED = re.compile(r"\\([0-9a-fA-F]{2}|.)", re.DOTALL)
# Characters AD refuses in a sAMAccountName; "=" and "," also tell an OU line from a name.
_NOT_IN_NAMES = set('"/\\:;|=,+<>')


def _split(text: str, separator: str) -> list[str]:
    """`text` split at each `separator` that is not escaped with a backslash (RFC 4514)."""
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    """An RDN value without its escapes: "\\," is ",", and runs of "\\XX" are the UTF-8 bytes of
    a character (AD writes "á" itself, other tools may send "\\C3\\A1")."""
    raw, position = bytearray(), 0
    for match in _ESCAPED.finditer(value):
        raw += value[position:match.start()].encode()
        code = match.group(1)
        raw += bytes([int(code, 16)]) if len(code) == 2 else code.encode()
        position = match.end()
    raw += value[position:].encode()
    return raw.decode("utf-8", "replace")


def dn_parts(dn: str) -> tuple[str, ...] | None:
    """A DN as its RDNs in comparable form ("ou=service accounts", …): attribute names lower case,
    values unescaped, case-folded and with spaces collapsed; None when it is no DN (an RDN without
    "attribute=value")."""
    parts = []
    for rdn in _split(dn.strip(), ","):
        name, equals, value = rdn.partition("=")
        name, value = name.strip().lower(), value.strip()
        if not equals or not name or not value or not name.replace("-", "").isalnum():
            return None
        parts.append(f"{name}={' '.join(_unescape(value).split()).casefold()}")
    return tuple(parts)


def _contains(whole: tuple[str, ...], part: tuple[str, ...]) -> bool:
    return any(whole[i:i + len(part)] == part for i in range(len(whole) - len(part) + 1))


def _setting_lines(text: str | None) -> Iterator[tuple[int, str]]:
    """(line number, line) of a one-per-line setting, without blank lines and # comments; a
    control character (a NUL, a tab…) is in no OU or account name: ValueError naming the line."""
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if any(ord(c) < 32 or ord(c) == 127 for c in line):
            raise ValueError(_("Line %(number)s: remove the control characters (a NUL, a tab…); they are in "
                               "no OU or account name.", number=number))
        yield number, line


def _unescaped(text: str, char: str) -> bool:
    """Whether `char` occurs in `text` not escaped by a backslash."""
    escaped = False
    for c in text:
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == char:
            return True
    return False


def parse_ous(text: str | None) -> list[str]:
    """The "leave out" OUs of a source: one per line, an OU or any part of a DN ("OU=Service
    Accounts", "OU=Service Accounts,OU=IT,DC=example,DC=com"). Returns the cleaned lines; raises
    ValueError naming the line that is no DN."""
    lines = []
    for number, line in _setting_lines(text):
        parts = dn_parts(line)
        # A trailing "\" escapes nothing and a "+" joins two values in one RDN: such a line would
        # never match the DN of an account (they are compared RDN by RDN).
        if parts is None or _unescaped(line, "+") or (len(line) - len(line.rstrip("\\"))) % 2:
            raise ValueError(_("Line %(number)s: write an OU or part of a DN, e.g. OU=Service Accounts (one "
                               "value per RDN; a \\ escapes the character after it).", number=number))
        lines.append(line)
    return lines


def parse_account_patterns(text: str | None) -> list[str]:
    """The "leave out" account names of a source: one sAMAccountName per line, * and ? as
    wildcards ("svc-*"). Returns the cleaned lines; raises ValueError naming the line that cannot
    be an account name."""
    lines = []
    for number, line in _setting_lines(text):
        if _NOT_IN_NAMES & set(line) or len(line) > 256:
            raise ValueError(_("Line %(number)s: write an account name (sAMAccountName), * and ? as "
                               "wildcards, e.g. svc-*; OUs go in the field above.", number=number))
        lines.append(line)
    return lines


@dataclass(frozen=True)
class Exclusion:
    """Which accounts a source leaves out: neither imported nor failed, counted as left out.

    `system_accounts` (the default): AD's built-in accounts (isCriticalSystemObject TRUE:
    Administrator, Guest, krbtgt, the domain controllers), computer and managed service accounts
    (by objectClass, or a sAMAccountName ending in $) and service accounts (a servicePrincipalName
    set on the account). `ous`: accounts whose DN contains one of these parts. `accounts`:
    sAMAccountName patterns (case-insensitive, * and ?)."""

    system_accounts: bool = True
    ous: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()

    @classmethod
    def of(cls, system_accounts: bool | None, ous: str | None, accounts: str | None) -> Exclusion:
        """From a source's settings (text one per line, as services.directory.sources saved it)."""
        return cls(system_accounts is not False, tuple(parse_ous(ous)),
                   tuple(parse_account_patterns(accounts)))

    @cached_property
    def _ou_parts(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(line, parts) for line in self.ous if (parts := dn_parts(line))]

    def reason(self, dn: str, attributes: Mapping[str, Any], mapping: Mapping[str, str]) -> str | None:
        """Why the entry is left out, in a maintainer's words ("built-in account
        (isCriticalSystemObject)"), or None when the source imports it."""
        lowered = {k.lower(): v for k, v in attributes.items()}
        sam = single(lowered.get(mapping["sam_account_name"].lower()))
        sam = sam if isinstance(sam, str) else None
        if self.system_accounts:
            found = self._system_reason(lowered, sam)
            if found:
                return found
        if self._ou_parts:
            parts = dn_parts(dn) or ()
            for line, wanted in self._ou_parts:
                if _contains(parts, wanted):
                    return f"in {line}"
        if sam:
            for pattern in self.accounts:
                if fnmatch.fnmatchcase(sam.casefold(), pattern.casefold()):
                    return f"account name matches {pattern}"
        return None

    @staticmethod
    def _system_reason(lowered: Mapping[str, Any], sam: str | None) -> str | None:
        critical = single(lowered.get("iscriticalsystemobject"))
        if isinstance(critical, str) and critical.upper() == "TRUE":
            return BUILT_IN
        classes = lowered.get("objectclass") or []
        classes = [classes] if isinstance(classes, str) else classes
        names = {value.lower() for value in classes if isinstance(value, str)}
        for name, words in SYSTEM_CLASSES.items():
            if name in names:
                return words
        if sam and sam.endswith("$"):
            return MACHINE
        if single(lowered.get("serviceprincipalname")):
            return SERVICE
        return None


@dataclass(frozen=True)
class CompanyRule:
    """Entries whose `attribute` (company, department or ou) equals `value` (case-insensitive)
    become contacts of company `company_id`."""

    attribute: str
    value: str
    company_id: int

    def matches(self, person: DirectoryPerson) -> bool:
        actual = getattr(person, self.attribute, None)
        return actual is not None and actual.casefold() == self.value.casefold()


RULE_ATTRIBUTES = ("company", "department", "ou")


def parse_rules(text: str | None) -> list[CompanyRule]:
    """Rules one per line: `department = Sales -> 12` (attribute = value -> company id).
    Raises ValueError naming the line that does not parse."""
    rules = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        condition, arrow, target = line.partition("->")
        attribute, equals, value = condition.partition("=")
        attribute = attribute.strip().lower()
        if not arrow or not equals or attribute not in RULE_ATTRIBUTES or not value.strip() \
                or not target.strip().isdigit():
            raise ValueError(_("Line %(number)s: write “company|department|ou = value -> company id”.",
                               number=number))
        rules.append(CompanyRule(attribute, value.strip(), int(target.strip())))
    return rules


def rules_from_json(rows: list[dict] | None) -> list[CompanyRule]:
    return [CompanyRule(r["attribute"], r["value"], int(r["company_id"])) for r in rows or []]


def rules_to_text(rows: list[dict] | None) -> str:
    return "\n".join(f"{r.attribute} = {r.value} -> {r.company_id}" for r in rules_from_json(rows))


def company_for(person: DirectoryPerson, rules: list[CompanyRule]) -> int | None:
    """The company of the first rule that matches, or None."""
    return next((rule.company_id for rule in rules if rule.matches(person)), None)
