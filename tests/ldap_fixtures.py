"""Fixtures starting real OpenLDAP servers shaped like Active Directory (testing/ldap_server.py).
A server that cannot start fails the run in CI and skips its tests loudly elsewhere.

`ldap_server`: a fresh, nearly empty server per test (≈ 0.04 s), free to change.
`big_directory`: one server per session with 2,100 users, loaded offline; read-only: a test that
changes it spoils the others (use `ldap_server` to change entries).

TLS connections made with ldap3 2.9.1 on Python 3.11 meet `DeprecationWarning: ssl.match_hostname()
is deprecated` (raised inside ldap3's certificate check); pyproject's filterwarnings ignores it,
as an error ldap3 would report it as LDAPSocketOpenError on every verified TLS connection.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from testing.ldap_server import LdapServer, LdapUnavailable, default_guid, user_entry, users_ldif
from tests.conftest import started, unavailable

BIG_COUNT = 2100
MANAGERS = 100  # the last 100 users manage the others; the very last one manages those
GIVEN_NAMES = ["Anna", "Peter", "Jana", "Martin", "Eva", "Tomas", "Zuzana", "Michal", "Lucia", "Jakub"]
TITLES = ["Engineer", "Analyst", "Consultant", "Accountant", "Technician"]
DEPARTMENTS = ["Sales", "Support", "Finance", "IT", "Operations", "Legal", "Logistics"]
FIRST_CHANGE = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class BigDirectory:
    """A started `server` holding `count` users u0001…u2100 under ou=People, listed by a search
    in that order (`sams`). uSNChanged of user n is n (so `server.highest_usn` is 2,100) and its
    whenChanged FIRST_CHANGE + n minutes. Everyone has mail (<sam>@example.com: e-mail checks refuse
    the special-use .test domain), title,
    department, company, telephoneNumber and a userPrincipalName.

    Managers are forward references: every user but the last reports to a user the server lists
    LATER (u0001–u2000 to one of the 100 managers u2001–u2100, 20 each; u2001–u2099 to u2100, the
    head, who has none), so a one-pass sync meets a manager's DN before the manager's entry.
    ldap3's paged_search generator yields each page backwards (500…1, 1000…501, …): in its order,
    with pages of 500 or 1,000, u0001–u2000 still come before their managers (a later page), while
    u2001–u2099 come after u2100 (the same, last page).
    `disabled_sam` (u0005) has userAccountControl 514, the rest 512. `non_ascii_sam` (u0007) is
    Ľubica Šťastná, whose names travel base64-encoded in the LDIF.
    """

    server: LdapServer
    sams: list[str]
    dns: dict[str, str]  # sam → DN
    managers: dict[str, str | None]  # sam → the manager's sam (None for the head)
    disabled_sam: str = "u0005"
    non_ascii_sam: str = "u0007"
    head_sam: str = f"u{BIG_COUNT:04d}"
    count: int = BIG_COUNT
    guids: dict[str, uuid.UUID] = field(default_factory=dict)  # sam → objectGUID


def big_directory_entries(base_dn: str, count: int = BIG_COUNT) -> list[tuple[str, dict]]:
    """(dn, attributes) of the users described in BigDirectory, in listing order."""
    names = {n: _name(n) for n in range(1, count + 1)}
    dn_of = {n: user_entry(f"u{n:04d}", given=names[n][0], sn=names[n][1], base_dn=base_dn)[0]
             for n in names}
    entries = []
    for n in range(1, count + 1):
        sam = f"u{n:04d}"
        boss = _manager(n, count)
        given, sn = names[n]
        entries.append(user_entry(
            sam, given=given, sn=sn, base_dn=base_dn, mail=f"{sam}@example.com",
            title=TITLES[n % len(TITLES)], department=DEPARTMENTS[n % len(DEPARTMENTS)],
            company="Example s.r.o.", telephone=f"+421 2 5555 {n:04d}",
            manager_dn=dn_of[boss] if boss else None, disabled=sam == "u0005", usn=n,
            when_changed=FIRST_CHANGE + timedelta(minutes=n)))
    return entries


def _name(n: int) -> tuple[str, str]:
    if n == 7:
        return "Ľubica", "Šťastná"
    return GIVEN_NAMES[n % len(GIVEN_NAMES)], f"Tester{n:04d}"  # unique: the DN is cn=<given sn>


def _manager(n: int, count: int) -> int | None:
    first_manager = count - MANAGERS + 1
    if n < first_manager:
        return first_manager + (n - 1) * MANAGERS // (first_manager - 1)
    return count if n < count else None


@pytest.fixture
def ldap_server():
    """A started server with only the base entries (suffix, ou=People/Staff/Contractors and the
    service account); stopped and removed after the test."""
    server = started(lambda: LdapServer().start(), LdapUnavailable, "LDAP")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def big_directory():
    """The read-only BigDirectory (≈ 0.15 s to build and start, once per session)."""
    server = None
    try:
        server = LdapServer()
        entries = big_directory_entries(server.base_dn)
        server.load_ldif(users_ldif(server.base_dn, entries))
        server.start()
    except LdapUnavailable as exc:
        reason = str(exc)
        if server is not None:
            server.stop()
        server = None
    if server is None:
        unavailable(f"LDAP: {reason}")
    sams = [attributes["sAMAccountName"] for _, attributes in entries]
    managers = {f"u{n:04d}": (f"u{boss:04d}" if (boss := _manager(n, BIG_COUNT)) else None)
                for n in range(1, BIG_COUNT + 1)}
    dns = {attributes["sAMAccountName"]: dn for dn, attributes in entries}
    yield BigDirectory(server=server, sams=sams, dns=dns, managers=managers,
                       guids={sam: default_guid(sam) for sam in sams})
    server.stop()
