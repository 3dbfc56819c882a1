"""Changes-only (incremental) runs against a real Samba AD DC, on SQLite and PostgreSQL: what AD
changes without touching an account's uSNChanged (a deletion, a manager's deletion removing
`manager` from the reports, a group membership) and the change counter kept per domain
controller. Each test changes the directory: a fresh DC per test (fresh_samba_dc). The last test
keeps the same on OpenLDAP (no highestCommittedUSN: the highest uSNChanged read is the position)."""

from __future__ import annotations

import uuid

import ldap3
from sqlalchemy import select

from models import Customer, DirectorySource
from models.enums import DirectoryTarget, SyncRunStatus
from services.customers import SaveOptions
from services.directory.mapping import DEFAULT_FILTER
from services.directory.pipeline import SyncOptions, sync_directory
from services.directory.sources import save_source
from services.secrets import SecretBox
from services.transactions import unit_of_work
from tests.conftest import ENCRYPTION_KEY, written
from tests.samba_fixtures import fresh_samba_dc, samba_dc  # noqa: F401

BOX = SecretBox(ENCRYPTION_KEY)
OPTIONS = SaveOptions("SK")
ENABLED, DISABLED = "66080", "66082"  # userAccountControl: 0x10220, and the same with ACCOUNTDISABLE
# The deletion test imports u0001–u0999 and the managers u2901–u3000 (about 1,100 accounts: three
# pages of 500) and not all 3,000: it runs seven imports, and the suite's time is shared.
SUBSET = f"(&{DEFAULT_FILTER}(|(sAMAccountName=u0*)(sAMAccountName=u29*)(sAMAccountName=u3*)))"


def in_subset(sam: str) -> bool:
    return sam.startswith(("u0", "u29", "u3"))


def make_source(session, actor, directory, **overrides) -> DirectorySource:
    source = DirectorySource(**directory.source_fields(**overrides))
    return written(session, lambda: save_source(session, actor, source, BOX,
                                                bind_password=directory.password))


def sync(session, source, **options):
    run = sync_directory(session, source, BOX, None, SyncOptions(**options), OPTIONS)
    session.expire_all()
    return run


def changes_only(session, source, **options):
    run = sync(session, source, full=False, **options)
    assert run.incremental
    return run


def person(session, sam: str) -> Customer:
    return session.scalar(select(Customer).where(Customer.sam_account_name == sam))


def manager_of(session, sam: str) -> str | None:
    manager = person(session, sam).manager
    return manager.sam_account_name if manager is not None else None


def active(session, sam: str) -> bool:
    return person(session, sam).status.is_active


def change(directory, action) -> None:
    """`action(conn)` as the domain's Administrator."""
    conn = directory.connection()
    try:
        action(conn)
    finally:
        conn.unbind()


def dc_position(directory) -> tuple[str, int]:
    """(the DC's invocationId, its highestCommittedUSN), read here with ldap3 as any AD tool would."""
    conn = directory.connection()
    try:
        conn.search("", "(objectClass=*)", search_scope=ldap3.BASE,
                    attributes=["dsServiceName", "highestCommittedUSN"])
        root = conn.response[0]["attributes"]
        conn.search(root["dsServiceName"][0], "(objectClass=*)", search_scope=ldap3.BASE,
                    attributes=["invocationId"])
        invocation = conn.response[0]["raw_attributes"]["invocationId"][0]  # 16 bytes, as objectGUID
        return str(uuid.UUID(bytes_le=invocation)), int(root["highestCommittedUSN"][0])
    finally:
        conn.unbind()


def reports(directory, manager: str) -> list[str]:
    return sorted(p.sam for p in directory.people.values() if p.manager == manager)


def test_changes_only_runs_see_deletions_and_unlink_reports_of_deleted_managers(
        session, maintainer, fresh_samba_dc):  # noqa: F811
    directory = fresh_samba_dc
    leaver, boss, other_boss, retitled = "u0007", "u2950", "u2970", "u0011"  # enabled accounts
    team = [sam for sam in reports(directory, boss) if in_subset(sam)]
    other_team = [sam for sam in reports(directory, other_boss) if in_subset(sam)]
    assert len(team) >= 8 and leaver not in team and retitled not in team
    source = make_source(session, maintainer, directory, search_filter=SUBSET)
    invocation, usn = dc_position(directory)
    first = sync(session, source)
    assert first.status == SyncRunStatus.SUCCEEDED, first.message
    assert {manager_of(session, sam) for sam in team} == {boss}
    assert {manager_of(session, sam) for sam in other_team} == {other_boss}
    # The position is the DC's own counter, read before the run, kept for that DC.
    session.refresh(source)
    assert source.usn_by_dc == {invocation: usn} and source.last_usn == usn

    def delete_and_retitle(conn):
        conn.delete(directory.people[leaver].dn)
        conn.delete(directory.people[boss].dn)  # AD drops `manager` from the reports, uSNChanged unchanged
        conn.modify(directory.people[retitled].dn, {"title": [(ldap3.MODIFY_REPLACE, ["Team Lead"])]})

    change(directory, delete_and_retitle)
    run = changes_only(session, source)
    assert run.status == SyncRunStatus.SUCCEEDED and run.message is None, run.message
    assert run.total < 100  # the changes, not every entry
    assert not active(session, leaver) and not active(session, boss)
    assert {manager_of(session, sam) for sam in team} == {None}
    assert person(session, retitled).title == "Team Lead"
    assert (run.created, run.deactivated, run.updated) == (0, 2, len(team) + 1)  # what it committed
    unlinked = [c for c in run.changes if [f.get("field") for f in c["fields"]] == ["manager"]]
    assert len(unlinked) == len(team) and {f["new"] for c in unlinked for f in c["fields"]} == {None}
    session.refresh(source)
    assert source.usn_by_dc == {invocation: dc_position(directory)[1]}

    # A full run unlinks the reports of a deleted manager too, although the source keeps local
    # values where the directory has none (the default): the manager's record is inactive.
    change(directory, lambda conn: conn.delete(directory.people[other_boss].dn))
    full = sync(session, source)
    assert full.status == SyncRunStatus.SUCCEEDED, full.message
    assert full.deactivated == 1 and not active(session, other_boss)
    assert {manager_of(session, sam) for sam in other_team} == {None}
    again = sync(session, source)
    assert (again.created, again.updated, again.deactivated) == (0, 0, 0)  # nothing goes back and forth

    # Positions are per DC: the same DC under another URL goes on from its position; a DC the
    # source has no position for (failover to another DC, simulated by another identity) gets
    # every entry read, and keeps its own position from then on.
    with unit_of_work(session):
        source.server_urls = f"{directory.url}:636"
    same_dc = changes_only(session, source)
    assert same_dc.message is None and same_dc.total < 100
    with unit_of_work(session):
        source.usn_by_dc = {"0b2c6a3e-0000-4000-8000-00000000dc02": usn}
    other_dc = changes_only(session, source)
    assert other_dc.status == SyncRunStatus.SUCCEEDED
    assert other_dc.total == again.total and "dc1.cd.test" in other_dc.message
    session.refresh(source)
    assert source.usn_by_dc == {"0b2c6a3e-0000-4000-8000-00000000dc02": usn,
                                invocation: dc_position(directory)[1]}


def test_a_memberof_filter_sees_group_changes_and_deactivated_managers(
        session, maintainer, fresh_samba_dc):  # noqa: F811
    directory = fresh_samba_dc
    group = directory.group_dn
    joiner, leaver, boss, report = "u0500", "u0002", "u2950", "u0050"
    assert directory.people[report].manager == boss and report in directory.group_members
    assert joiner not in directory.group_members and boss not in directory.group_members
    source = make_source(session, maintainer, directory,
                         search_filter=f"(&(objectClass=user)(memberOf={group}))")
    first = sync(session, source)
    assert first.status == SyncRunStatus.SUCCEEDED, first.message
    assert first.created >= len(directory.group_members) - 2  # all members (a refused one aside)

    def members(action, *sams):
        change(directory, lambda conn: conn.modify(
            group, {"member": [(action, [directory.people[s].dn for s in sams])]}))

    def account_control(sam, value):
        change(directory, lambda conn: conn.modify(
            directory.people[sam].dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [value])]}))

    # Joining or leaving a group changes the group, not the account's uSNChanged.
    members(ldap3.MODIFY_ADD, joiner)
    members(ldap3.MODIFY_DELETE, leaver)
    run = changes_only(session, source)
    assert (run.created, run.deactivated) == (1, 1), run.errors
    assert active(session, joiner) and not active(session, leaver)

    # A manager who joins: the report that names him links to him, though it did not change.
    members(ldap3.MODIFY_ADD, boss)
    run = changes_only(session, source)
    assert run.created == 1 and manager_of(session, report) == boss
    # Disabled: deactivated, and the report no longer points at him; enabled again: back.
    account_control(boss, DISABLED)
    run = changes_only(session, source)
    assert run.deactivated == 1 and not active(session, boss) and manager_of(session, report) is None
    account_control(boss, ENABLED)
    run = changes_only(session, source)
    assert active(session, boss) and manager_of(session, report) == boss
    # Out of the group: deactivated, unlinked; a full run then changes nothing back and forth.
    members(ldap3.MODIFY_DELETE, boss)
    run = changes_only(session, source)
    assert run.deactivated == 1 and manager_of(session, report) is None
    full = sync(session, source)
    assert (full.created, full.updated, full.deactivated) == (0, 0, 0), full.changes

    # The hold applies to changes-only runs: 20 of about 90 active members leaving is held.
    leaving = directory.group_members[40:60]
    members(ldap3.MODIFY_DELETE, *leaving)
    held = changes_only(session, source)
    assert held.status == SyncRunStatus.FAILED and "Held before writing anything" in held.message
    assert all(active(session, sam) for sam in leaving if not directory.people[sam].disabled
               and not directory.people[sam].expired)
    confirmed = changes_only(session, source, confirm_deactivation=True)
    assert confirmed.status == SyncRunStatus.SUCCEEDED
    assert confirmed.deactivated == sum(1 for sam in leaving if not directory.people[sam].disabled
                                        and not directory.people[sam].expired)


def test_changes_only_on_openldap_see_deletions_and_accounts_joining_the_filter(session, maintainer,
                                                                                 ldap_server):
    server = ldap_server
    joiner = server.add_user("joiner", given="Jo", sn="Joiner", department="Finance")  # the lowest USN
    boss = server.add_user("boss", given="Bea", sn="Boss", department="Sales")
    worker = server.add_user("worker", given="Walter", sn="Worker", department="Sales", manager_dn=boss)
    for n in range(10):
        server.add_user(f"sales{n}", given="Sam", sn=f"Seller{n}", department="Sales")
    source = DirectorySource(
        name="OpenLDAP", server_urls=server.url, use_starttls=True, verify_certificate=True,
        ca_file=server.ca_file, bind_dn=server.service_dn, base_dn=server.base_dn,
        search_filter=f"(&{DEFAULT_FILTER}(department=Sales))", page_size=300, attribute_map={},
        target=DirectoryTarget.PERSONS, office_maps_to="site", max_deactivate_percent=10)
    written(session, lambda: save_source(session, maintainer, source, BOX,
                                         bind_password=server.service_password))
    assert sync(session, source).created == 12
    assert manager_of(session, "worker") == "boss"
    session.refresh(source)
    position = source.last_usn
    assert position == server.highest_usn and source.usn_by_dc is None  # no DC counters: the highest read
    # As AD does it: the manager's deletion and the move into the filter leave uSNChanged alone.
    server.delete(boss)
    server.modify(worker, {"manager": None}, touch=False)
    server.modify(joiner, {"department": "Sales"}, touch=False)
    run = changes_only(session, source)
    assert run.status == SyncRunStatus.SUCCEEDED, run.message
    assert (run.created, run.deactivated, run.total) == (1, 1, 1)
    assert not active(session, "boss") and active(session, "joiner") and manager_of(session, "worker") is None
    session.refresh(source)
    assert source.last_usn == position and source.usn_by_dc is None
