"""Attacks on the directory import of issue 16 (commit 5b994ce) against the real Samba AD DC, on
SQLite and PostgreSQL: a hostile maintainer, a weird AD and a careless operator. Each test is a
problem the attack found, fixed since. None of them changes the directory (the module's
`samba_dc`)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import AuditEvent, Customer, DirectorySource, DirectorySyncRun
from models.enums import CustomerKind, PhoneType, SyncRunStatus
from services.customers import SaveOptions
from services.directory.mapping import parse_ous
from services.directory.pipeline import SyncOptions, sync_directory
from services.directory.sources import save_source
from services.secrets import SecretBox
from tests.conftest import ENCRYPTION_KEY, written
from tests.samba_fixtures import fresh_samba_dc, samba_dc  # noqa: F401
from tests.served_app import page_text

BOX = SecretBox(ENCRYPTION_KEY)
OPTIONS = SaveOptions("SK")
SAMS = ("u0011", "u0012", "u0013")  # enabled accounts without a mobile


def only(*sams: str) -> str:
    return f"(&(objectClass=user)(|{''.join(f'(sAMAccountName={sam})' for sam in sams)}))"


def make_source(session, actor, dc, **overrides) -> DirectorySource:
    source = DirectorySource(**dc.source_fields(**overrides))
    return written(session, lambda: save_source(session, actor, source, BOX, bind_password=dc.password))


def resave(session, actor, source, mapping: str | None = None, **changes) -> None:
    """The source's settings changed by a maintainer (as the form saves them)."""
    for key, value in changes.items():
        setattr(source, key, value)
    written(session, lambda: save_source(session, actor, source, BOX, mapping=mapping))


def sync(session, source, **options) -> DirectorySyncRun:
    run = sync_directory(session, source, BOX, None, SyncOptions(**options), OPTIONS)
    session.expire_all()
    return run


def person(session, sam: str) -> Customer:
    return session.scalar(select(Customer).where(Customer.sam_account_name == sam))


def test_a_changed_attribute_mapping_is_applied_by_the_next_changes_only_run(
        session, maintainer, samba_dc):  # noqa: F811
    """Seen: after a full import, the maintainer maps title to physicalDeliveryOfficeName; the
    next changes-only run (what a schedule every N minutes does) is incremental, reads nothing,
    and every title stays the old one ("Analyst") until the nightly full run — the position kept
    per DC (usn_by_dc) is not dropped when the mapping (or office_maps_to, company rules) changes."""
    dc = samba_dc
    source = make_source(session, maintainer, dc, search_filter=only(*SAMS))
    assert sync(session, source).status == SyncRunStatus.SUCCEEDED
    assert person(session, "u0011").title == dc.people["u0011"].title
    resave(session, maintainer, source, mapping="title = physicalDeliveryOfficeName")
    run = sync(session, source, full=False)
    assert run.status == SyncRunStatus.SUCCEEDED, run.message
    assert person(session, "u0011").title == dc.people["u0011"].office


def test_switching_to_clear_after_a_keep_run_clears_at_the_next_run_and_is_audited(
        session, maintainer, new_customer, samba_dc):  # noqa: F811
    """Seen: an operator typed a mobile for u0011 (the directory has none); the first import under
    'keep' links the record and keeps it (right). The maintainer then chooses 'Clear the field'
    so records mirror the directory; the next changes-only run says Succeeded, updated 0, and the
    mobile is still there (a full run does clear it)."""
    dc = samba_dc
    entry = dc.people["u0011"]
    assert entry.mobile is None
    new_customer(kind=CustomerKind.PERSON, first_name=entry.given, last_name=entry.sn, email=entry.mail,
                 secondary_phone="+421 905 111 222", secondary_phone_type=PhoneType.MOBILE)
    source = make_source(session, maintainer, dc, search_filter=only(*SAMS))
    assert sync(session, source).status == SyncRunStatus.SUCCEEDED
    assert person(session, "u0011").secondary_phone  # kept: the default
    resave(session, maintainer, source, empty_values="clear")
    # The change is in the audit trail (it was lost: a flush before the audit emptied the history).
    event = session.scalars(select(AuditEvent).where(AuditEvent.entity_type == "directorysource",
                                                     AuditEvent.action == "update")).all()[-1]
    assert event.changes["empty_values"][-1] == "clear"
    run = sync(session, source, full=False)
    assert run.status == SyncRunStatus.SUCCEEDED, run.message
    assert person(session, "u0011").secondary_phone is None


def test_a_changes_only_run_reports_what_the_rule_leaves_out(
        session, maintainer, samba_dc):  # noqa: F811
    """Seen: the filter matches u0011–u0013 and Administrator; a full run says "left out 1", a
    changes-only run right after says "left out 0" (and so does the run page), although the rule
    left Administrator out of it just the same (its keys pass read it)."""
    dc = samba_dc
    source = make_source(session, maintainer, dc, search_filter=only(*SAMS, "Administrator"))
    full = sync(session, source)
    assert full.status == SyncRunStatus.SUCCEEDED and full.left_out == 1
    run = sync(session, source, full=False)
    assert run.status == SyncRunStatus.SUCCEEDED and run.incremental
    assert run.left_out == full.left_out


def test_a_run_held_because_the_rule_leaves_everyone_out_says_so(
        session, maintainer, samba_dc):  # noqa: F811
    """Seen: a careless "*" in Leave out account names. The hold works (nobody deactivated), but
    the run says "left out 0" and "would deactivate 3 of the source's 3 active records … Check the
    directory and the filter" — the maintainer looks everywhere but at the rule he just typed."""
    dc = samba_dc
    source = make_source(session, maintainer, dc, search_filter=only(*SAMS))
    assert sync(session, source).created == len(SAMS)
    resave(session, maintainer, source, exclude_accounts="*")
    held = sync(session, source)
    assert held.status == SyncRunStatus.FAILED and "Held" in held.message
    assert person(session, "u0011").status.is_active  # the hold held
    assert held.left_out == len(SAMS) or "left out" in held.message


def test_reports_of_a_manager_left_out_by_the_rule_are_told_why(
        session, maintainer, samba_dc):  # noqa: F811
    """Seen: the source leaves out u2911 (by name); his report u0011 gets "manager CN=Nagy\\,
    Martin 2911,… is not among the imported accounts" as a warning in every run — the same as a
    manager outside the filter — never that the source's rule leaves him out (the fix: the rule)."""
    dc = samba_dc
    boss = dc.people["u0011"].manager
    assert boss is not None
    source = make_source(session, maintainer, dc, search_filter=only("u0011", boss), exclude_accounts=boss)
    for _ in range(2):
        run = sync(session, source)
        assert run.status == SyncRunStatus.SUCCEEDED and run.left_out == 1
        assert person(session, "u0011").manager is None  # never linked to a left-out record
        warned = [e["message"] for e in run.errors or [] if e.get("account") == "u0011"]
        assert all("left out" in message for message in warned), warned


def test_a_nul_in_leave_out_account_names_is_refused_on_its_field(
        maintainer_client, session, samba_dc):  # noqa: F811
    """Seen: "svc\\x00x" in Leave out account names: nothing is saved (no 500, on PostgreSQL
    either), but the message reads "DirectorySource exclude accounts: Remove the control
    characters …" above the form (the flush guard's words), not under "Leave out account names"."""
    dc = samba_dc
    form = {"name": "Samba AD", "server_urls": dc.url, "verify_certificate": "y", "ca_file": dc.ca_file,
            "bind_dn": dc.admin_dn, "bind_password": dc.password, "base_dn": dc.base_dn,
            "search_filter": "(objectClass=user)", "page_size": "500", "attribute_mapping": "",
            "target": "persons", "company_rules_text": "", "office_maps_to": "site", "empty_values": "keep",
            "max_deactivate_percent": "10", "is_active": "y", "exclude_system_accounts": "y",
            "exclude_accounts": "svc\x00x"}
    answer = maintainer_client.submit("/admin/directory/new/", form)
    text = page_text(answer.get_data(as_text=True))
    assert answer.status_code == 200 and session.scalar(select(DirectorySource)) is None
    assert "remove the control characters" in text.lower()
    assert "DirectorySource" not in text and "exclude accounts" not in text


@pytest.mark.parametrize("line", ["OU=\\", "OU=Legal+CN=x"])
def test_a_leave_out_ou_line_that_can_never_match_is_refused(line):
    """Seen: "OU=\\" (a dangling escape) and "OU=Legal+CN=x" (a multi-valued RDN: DNs are split at
    commas only, so it is compared whole and never found) are saved without a word; the source
    then leaves out nobody the maintainer meant to."""
    with pytest.raises(ValueError):
        parse_ous(line)
