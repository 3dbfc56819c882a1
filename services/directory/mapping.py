"""From a directory entry to the fields of a person: pure functions, no server, no database.

The attribute map of a source says which LDAP attribute feeds which field; the defaults are
Active Directory's. OpenLDAP returns standard attributes as lists and AD as single values, so
every value is normalised to one string (or bytes for objectGUID) first.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
    "usn_changed": "uSNChanged",
}
# Fields the directory owns: an import updates these and nothing else on a record.
DIRECTORY_FIELDS = ("first_name", "middle_name", "last_name", "email", "primary_phone", "secondary_phone",
                    "title", "department", "office", "manager", "sam_account_name", "directory_dn")
ACCOUNT_DISABLED = 0x2  # userAccountControl ACCOUNTDISABLE
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
    disabled: bool
    usn: int | None


def attribute_map(custom: Mapping[str, str] | None) -> dict[str, str]:
    """The defaults overridden by a source's own mapping; unknown fields raise ValueError."""
    unknown = set(custom or {}) - set(DEFAULT_ATTRIBUTE_MAP)
    if unknown:
        raise ValueError(f"Unknown field(s) in the attribute mapping: {', '.join(sorted(unknown))}.")
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


def map_entry(dn: str, attributes: Mapping[str, Any], mapping: Mapping[str, str]) -> DirectoryPerson:
    """A directory entry as a DirectoryPerson; raises EntryRefused with the reason."""
    lowered = {k.lower(): v for k, v in attributes.items()}

    def get(field: str) -> Any:
        return single(lowered.get(mapping[field].lower()))

    guid = guid_of(lowered.get(mapping["directory_guid"].lower()))
    if guid is None:
        raise EntryRefused("no objectGUID: the entry has no stable key to import it by")
    first, last = get("first_name"), get("last_name")
    if not first or not last:
        missing = " and ".join(n for n, v in (("first name", first), ("last name", last)) if not v)
        raise EntryRefused(f"no {missing} ({mapping['first_name']}/{mapping['last_name']})")
    control = _int(lowered.get(mapping["account_control"].lower()))
    return DirectoryPerson(
        dn=dn, guid=guid, sam=get("sam_account_name"), first_name=first, middle_name=get("middle_name"),
        last_name=last, email=get("email"), primary_phone=get("primary_phone"),
        secondary_phone=get("secondary_phone"), department=get("department"), title=get("title"),
        manager_dn=get("manager"), office=get("office"), company=get("company"), ou=first_ou(dn),
        disabled=bool(control is not None and control & ACCOUNT_DISABLED),
        usn=_int(lowered.get(mapping["usn_changed"].lower())),
    )


def account_keys(attributes: Mapping[str, Any], mapping: Mapping[str, str]) -> tuple[str | None, bool]:
    """(GUID, disabled) of an entry read with its keys only (the counting pass)."""
    lowered = {k.lower(): v for k, v in attributes.items()}
    control = _int(lowered.get(mapping["account_control"].lower()))
    return (guid_of(lowered.get(mapping["directory_guid"].lower())),
            bool(control is not None and control & ACCOUNT_DISABLED))


def requested_attributes(mapping: Mapping[str, str]) -> list[str]:
    return sorted(set(mapping.values()))


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
            raise ValueError(f"Line {number}: write “company|department|ou = value -> company id”.")
        rules.append(CompanyRule(attribute, value.strip(), int(target.strip())))
    return rules


def rules_from_json(rows: list[dict] | None) -> list[CompanyRule]:
    return [CompanyRule(r["attribute"], r["value"], int(r["company_id"])) for r in rows or []]


def rules_to_text(rows: list[dict] | None) -> str:
    return "\n".join(f"{r.attribute} = {r.value} -> {r.company_id}" for r in rules_from_json(rows))


def company_for(person: DirectoryPerson, rules: list[CompanyRule]) -> int | None:
    """The company of the first rule that matches, or None."""
    return next((rule.company_id for rule in rules if rule.matches(person)), None)
