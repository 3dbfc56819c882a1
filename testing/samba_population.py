"""What the test domain controller holds (testing/samba_dc.py): a deterministic description of an
Active Directory as an MSP meets it — people in eleven OUs with managers, disabled and expired
accounts, names with diacritics and commas (escaped in their DNs), over-long titles and offices,
service and computer accounts, a group, contacts. Pure data, no server: the tests read the same
description the DC was filled from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

REALM, DOMAIN, HOST = "CD.TEST", "CD", "dc1"
BASE_DN = "DC=cd,DC=test"
STAFF_DN = f"OU=Staff,{BASE_DN}"
SERVICE_DN = f"OU=Service Accounts,{BASE_DN}"
COMPUTERS_DN = f"OU=Workstations,{BASE_DN}"
GROUPS_DN = f"OU=Groups,{BASE_DN}"
PARTNERS_DN = f"OU=Partners,{BASE_DN}"
GROUP_DN = f"CN=Desk Users,{GROUPS_DN}"
OUS = ("Sales", "Support", "Finance", "IT", "Operations", "Legal", "Logistics", "HR", "Marketing",
       "Research", "Management")
GIVEN = ("Ján", "Jana", "Peter", "Zuzana", "Ľubica", "Tomáš", "Mária", "Martin", "Eva", "Štefan", "Anna",
         "Michal")
SURNAMES = ("Novák", "Kováč", "Horváth", "Šťastný", "Varga", "Tóth", "Nagy", "Baláž", "Molnár", "Lukáč",
            "Oravec", "Čierny", "Hudák")
TITLES = ("Engineer", "Analyst", "Consultant", "Accountant", "Technician")
# userAccountControl as AD shows it for accounts created without a password (PASSWD_NOTREQD 0x20):
# NORMAL_ACCOUNT 0x200, ACCOUNTDISABLE 0x2, DONT_EXPIRE_PASSWORD 0x10000.
ENABLED, ENABLED_NO_EXPIRY = 0x220, 0x10220
DISABLED, DISABLED_NO_EXPIRY = 0x222, 0x10222
WORKSTATION = 0x1000
LONG_TITLE = ("Senior Principal Infrastructure and Service Desk Operations Engineer for Managed Network, "
              "Cloud and Workplace Services, EMEA+CEE")
LONG_OFFICE = ("Bratislava Business Centre III, Building C, Floor 14, Open Space East Wing, "
               "Desk Cluster 7, next to the large meeting room A, 2F")
assert len(LONG_TITLE) == 128 and len(LONG_OFFICE) == 128, (len(LONG_TITLE), len(LONG_OFFICE))
PAST = datetime(2025, 6, 30, tzinfo=UTC)  # accountExpires of the expired accounts
GROUP_SIZE = 100  # u0001 … u0100 are members of GROUP_DN


@dataclass(frozen=True)
class Person:
    """One user account under OU=Staff."""

    n: int
    sam: str
    given: str
    sn: str
    dn: str
    ou: str
    mail: str
    title: str
    office: str
    phone: str
    mobile: str | None
    initials: str | None
    manager: str | None  # the manager's sam
    control: int
    expired: bool

    @property
    def disabled(self) -> bool:
        return bool(self.control & 0x2)

    def attributes(self, dn_of: dict[str, str]) -> dict[str, object]:
        values: dict[str, object] = {
            "sAMAccountName": self.sam, "userPrincipalName": f"{self.sam}@cd.test", "givenName": self.given,
            "sn": self.sn, "displayName": f"{self.given} {self.sn}", "mail": self.mail, "title": self.title,
            "department": self.ou, "company": "Example s.r.o.", "physicalDeliveryOfficeName": self.office,
            "telephoneNumber": self.phone, "userAccountControl": str(self.control)}
        if self.mobile:
            values["mobile"] = self.mobile
        if self.initials:
            values["initials"] = self.initials
        if self.manager:
            values["manager"] = dn_of[self.manager]
        if self.expired:
            values["accountExpires"] = str(filetime(PAST))
        return values


def filetime(moment: datetime) -> int:
    """AD's time: 100-nanosecond intervals since 1601-01-01 UTC."""
    return int((moment - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds() * 10_000_000)


def escape_dn_value(value: str) -> str:
    """An RDN value as AD writes it (RFC 4514: the comma escaped)."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("+", "\\+").replace('"', '\\"')


def people(count: int) -> list[Person]:
    """u0001 … u{count}. The last `count // 30` are managers of everyone before them (a block of
    about 30 each); the managers report to the last one, the head, who has none. Every 8th user is
    disabled (about 12 %), every 97th enabled one expired. u0013 has a 128-character title, u0017 a
    128-character office."""
    heads = max(1, count // 30)
    first_manager = count - heads + 1
    result = []
    for n in range(1, count + 1):
        sam = f"u{n:04d}"
        given, sn = GIVEN[n % len(GIVEN)], SURNAMES[(n * 7) % len(SURNAMES)]
        ou = OUS[n % len(OUS)]
        if n < first_manager:
            manager: str | None = f"u{first_manager + (n - 1) % heads:04d}"
        elif n < count:
            manager = f"u{count:04d}"
        else:
            manager = None
        disabled = n % 8 == 0
        control = (DISABLED if n % 16 == 0 else DISABLED_NO_EXPIRY) if disabled else \
            (ENABLED_NO_EXPIRY if n % 2 else ENABLED)
        result.append(Person(
            n=n, sam=sam, given=given, sn=sn,
            dn=f"CN={escape_dn_value(f'{sn}, {given} {n:04d}')},OU={ou},{STAFF_DN}", ou=ou,
            mail=f"{sam}@example.com", title=LONG_TITLE if n == 13 else TITLES[n % len(TITLES)],
            office=LONG_OFFICE if n == 17 else f"Bratislava, floor {n % 5 + 1}",
            phone=f"+421 2 5555 {n % 10000:04d}",
            mobile=f"+421 905 {n // 1000 % 1000:03d} {n % 1000:03d}" if n % 3 == 0 else None,
            initials="K." if n % 10 == 1 else None, manager=manager, control=control,
            expired=not disabled and n % 97 == 0))
    return result


@dataclass(frozen=True)
class Extra:
    """An entry that is not a person of Staff: service, computer and managed service accounts,
    contacts and the group."""

    dn: str
    object_class: list[str]
    attributes: dict[str, object]


SERVICE_ACCOUNTS = ("svc-backup", "svc-sql")
COMPUTERS = tuple(f"ws{n:03d}$" for n in range(1, 6))


def extras() -> list[Extra]:
    user = ["top", "person", "organizationalPerson", "user"]
    found = [
        Extra(f"CN=Backup Service,{SERVICE_DN}", user,
              {"sAMAccountName": "svc-backup", "givenName": "Backup", "sn": "Service",
               "servicePrincipalName": "backup/dc1.cd.test", "userAccountControl": str(ENABLED_NO_EXPIRY),
               "mail": "svc-backup@example.com"}),
        Extra(f"CN=SQL Service,{SERVICE_DN}", user,
              {"sAMAccountName": "svc-sql", "servicePrincipalName": "MSSQLSvc/sql1.cd.test:1433",
               "userAccountControl": str(ENABLED_NO_EXPIRY)}),
    ]
    found += [Extra(f"CN={sam[:-1].upper()},{COMPUTERS_DN}", ["top", "person", "organizationalPerson", "user",
                                                               "computer"],
                    {"sAMAccountName": sam, "userAccountControl": str(WORKSTATION)}) for sam in COMPUTERS]
    found += [Extra(f"CN=Partner {n},{PARTNERS_DN}", ["top", "person", "organizationalPerson", "contact"],
                    {"givenName": "Partner", "sn": f"Contact {n}", "mail": f"partner{n}@example.com"})
              for n in range(1, 4)]
    return found


def containers() -> list[str]:
    """The OUs, parents first."""
    return [STAFF_DN, *(f"OU={ou},{STAFF_DN}" for ou in OUS), SERVICE_DN, COMPUTERS_DN, GROUPS_DN,
            PARTNERS_DN]
