"""Importing a directory source: a pipeline of small named steps.

    count the accounts (keys only) → hold when too many would be deactivated → page through the
    entries: map → skip the incomplete → match (GUID, sAMAccountName, e-mail) → create / update
    directory-owned fields → commit the batch → resolve managers → deactivate the vanished → report

Every record is written by the command every door uses (through the target: save_customer or
save_contact). Each batch is a unit of work (services.batches). Its new records go to the
database together, in one flush, and each changed record in a savepoint of its own; when a
command or that flush refuses anything, the batch is written again with each account in a
savepoint: an account a rule refuses (a value longer than its column, a loop of managers…) is
reported and skipped, the rest of its batch is written. A failure part-way leaves a consistent
database and a rerun completes the rest. A dry run is the same import inside one
unit of work rolled back at the end (in services.dry_runs' session), so a preview and the import
cannot disagree.

A run is done by whoever claimed its queued row (services.directory.runs; a worker of
jobs.directory, or the command line) and holds its lease (services.run_leases): each batch's
unit of work renews the heartbeat and commits the run's counts with the records they count, so
an interrupted run shows exactly what it wrote; while the directory is read (counting, paging)
the run beats every few seconds through a session of its own on the real database (`RunBook`),
which also writes a dry run's progress and every run's outcome. A cancel asked for is seen at
the next beat: the run stops at that batch boundary, cancelled, keeping what it committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, aliased

from models import Customer, CustomerStatus, DirectorySource, DirectorySyncRun, Operator
from models.base import utcnow
from models.enums import DirectoryTarget, SyncRunStatus
from services.batches import batch_unit, batches, one_flush, rolled_back
from services.customers import SaveOptions
from services.directory import adapter
from services.directory.mapping import (
    DirectoryPerson,
    EntryRefused,
    Exclusion,
    account_keys,
    attribute_map,
    key_attributes,
    map_entry,
    requested_attributes,
    rules_from_json,
    single,
)
from services.directory.runs import chain_start, queue_run
from services.directory.targets import (
    ContactTarget,
    Lookups,
    PersonTarget,
    Refused,
    TooLong,
    field_label,
    find_existing,
    keeps_empty,
    kept_when_empty,
    refuse_too_long,
    report_values,
)
from services.dry_runs import dry_run_session
from services.errors import FORM, DomainError, ValidationFailed
from services.run_leases import DEFAULT_LEASE_SECONDS, CancelRequested, LeaseLost, beat, claim, worker_name
from services.secrets import SecretBox
from services.transactions import DbSession, flush, in_unit_of_work, unit_of_work

log = logging.getLogger(__name__)
REPORT_LIMIT = 500  # changed and failed entries kept in a run's report
FILTER_VALUES = 100  # GUIDs or manager DNs per search of a changes-only run (a filter of a few KB)
Progress = Callable[[int, "int | None"], None]  # (entries processed, entries in all)
COUNTS = ("created", "updated", "unchanged", "deactivated", "failed", "left_out", "processed")
# A record's field → the directory field it comes from, where the names differ.
SOURCE_FIELD = {"location_code": "office", "site": "office", "phone": "primary_phone"}


@dataclass(frozen=True)
class SyncOptions:
    dry_run: bool = False
    confirm_deactivation: bool = False  # go ahead although more than the allowed share goes inactive
    full: bool = True  # False: only entries changed since the last import (uSNChanged)


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    failed: int = 0
    left_out: int = 0  # entries the source's exclusion rule leaves out (mapping.Exclusion)
    processed: int = 0
    already: int = 0  # entries the run this one continues had written (counted there)
    changes: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    highest_usn: int | None = None

    def fail(self, dn: str, message: str, *, account: str | None = None, skipped: bool = True,
             name: str | None = None) -> None:
        """An entry refused (`skipped`) or imported with a warning: the account (sAMAccountName),
        its name and why, in the report."""
        self.failed += skipped
        if len(self.errors) < REPORT_LIMIT:
            entry = {"dn": dn, "account": account, "message": message, "skipped": skipped}
            if name:
                entry["name"] = name
            self.errors.append(entry)

    @property
    def reports_changes(self) -> bool:
        """Whether another changed record still goes into the report (REPORT_LIMIT)."""
        return len(self.changes) < REPORT_LIMIT

    def changed(self, name: str, fields: list[dict | str], *, account: str | None = None) -> None:
        """A changed record in the report: per field {field, label, old, new}, the values as people
        read them (targets.shown: names of related records, never a secret; None for empty) — or
        a label alone, for what a run did without a value to show."""
        if self.reports_changes:
            entry: dict = {"name": name,
                           "fields": [f if isinstance(f, dict) else {"label": f} for f in fields]}
            if account:
                entry["account"] = account
            self.changes.append(entry)


def connection_settings(source: DirectorySource, box: SecretBox) -> adapter.ConnectionSettings:
    return adapter.ConnectionSettings(
        urls=[u.strip() for u in source.server_urls.replace(",", " ").split() if u.strip()],
        bind_dn=source.bind_dn, password=box.decrypt(source.bind_password_encrypted),
        use_starttls=source.use_starttls, verify_certificate=source.verify_certificate,
        ca_file=source.ca_file)


class RunBook:
    """A run's row as its worker writes it: the lease, the progress, the outcome. Its own session
    on the real database (never a dry run's); a real run's counts also go into each batch's unit
    of work (`checkpoint`), so they are committed with what they count."""

    def __init__(self, bind, run_id: int, *, worker: str, lease_seconds: int):
        self.session = Session(bind=bind, expire_on_commit=False)
        self.run_id, self.worker = run_id, worker
        self.beat_every = max(0.2, min(5.0, lease_seconds / 4))  # several beats within a lease
        self.last_beat = time.monotonic()
        self.dry_run = False
        self.quiet = False  # SQLite, a dry run on the same file: it holds the only write lock
        self.reported: tuple[int, int] = (0, 0)  # lengths of changes and errors written

    def close(self) -> None:
        self.session.close()

    def run(self) -> DirectorySyncRun | None:
        return self.session.get(DirectorySyncRun, self.run_id, populate_existing=True)

    def alive(self) -> None:
        """While the directory is read: a beat every few seconds, in a unit of work of its own.
        Raises CancelRequested (asked to stop) or LeaseLost (the run is no longer this worker's)."""
        if self.quiet or time.monotonic() - self.last_beat < self.beat_every:
            return
        with unit_of_work(self.session):
            beat(self.session, DirectorySyncRun, self.run_id, worker=self.worker)
        self.last_beat = time.monotonic()

    def checkpoint(self, session: DbSession, tally: Tally) -> bool:
        """At the end of a batch: beat and write the counts — a real run inside the batch's unit
        of work on `session` (committed with the batch; LeaseLost rolls the batch back), a dry
        run in a unit of its own. True when a cancel was asked for: stop after this batch."""
        if self.dry_run:
            if self.quiet:
                return False
            with unit_of_work(self.session):
                return self._checkpoint(self.session, tally)
        return self._checkpoint(session, tally)

    def _checkpoint(self, session: DbSession, tally: Tally) -> bool:
        cancel = False
        try:
            beat(session, DirectorySyncRun, self.run_id, worker=self.worker)
        except CancelRequested:
            cancel = True
        session.execute(update(DirectorySyncRun).where(DirectorySyncRun.id == self.run_id)
                        .values(**self._counts(tally)).execution_options(synchronize_session=False))
        self.last_beat = time.monotonic()
        return cancel

    def _counts(self, tally: Tally) -> dict:
        values: dict = {name: getattr(tally, name) for name in COUNTS}
        lengths = (len(tally.changes), len(tally.errors))
        if lengths != self.reported:  # the report's lists only when they grew
            values.update(changes=list(tally.changes) or None, errors=list(tally.errors) or None)
            self.reported = lengths
        return values

    def set_total(self, total: int) -> None:
        if self.quiet:
            return
        with unit_of_work(self.session):
            beat(self.session, DirectorySyncRun, self.run_id, worker=self.worker)
            self.session.execute(update(DirectorySyncRun).where(DirectorySyncRun.id == self.run_id)
                                 .values(total=total).execution_options(synchronize_session=False))
        self.last_beat = time.monotonic()

    def finish(self, status: SyncRunStatus, message: str | None, tally: Tally | None, *,
               total: int | None = None) -> None:
        """The outcome, if the run is still this worker's (else LeaseLost: somebody marked it
        interrupted meanwhile, and that stands). `tally` None: keep the committed counts."""
        values: dict = {"status": status, "finished_at": utcnow(), "message": message, "worker": None}
        if tally is not None:
            self.reported = (-1, -1)
            values.update(self._counts(tally))
        if total is not None:
            values["total"] = total
        with unit_of_work(self.session):
            done = self.session.execute(
                update(DirectorySyncRun).where(DirectorySyncRun.id == self.run_id,
                                               DirectorySyncRun.worker == self.worker,
                                               DirectorySyncRun.status == SyncRunStatus.RUNNING)
                .values(**values).execution_options(synchronize_session=False))
            if not done.rowcount:  # type: ignore[attr-defined]
                raise LeaseLost(self.run_id)


class Import:
    """One run of one source (see the module docstring)."""

    def __init__(self, session: DbSession, source: DirectorySource, box: SecretBox, actor: Operator | None,
                 options: SyncOptions, save_options: SaveOptions, progress: Progress | None,
                 book: RunBook, resume_since: datetime | None = None):
        self.session, self.source, self.box, self.actor = session, source, box, actor
        self.options, self.save_options, self.progress = options, save_options, progress
        self.book, self.resume_since = book, resume_since
        self.total: int | None = None
        self.mapping = attribute_map(source.attribute_map)
        self.exclusion = Exclusion.of(source.exclude_system_accounts, source.exclude_ous,
                                      source.exclude_accounts)
        self.left_out: set[str] = set()  # GUIDs of the entries the exclusion rule leaves out
        self.tally = Tally()
        # The keys pass (count_accounts) always reads the whole filter: who is still there
        # (deletions, accounts that left a memberOf filter) and who is new (joined the group),
        # none of which changes the account's uSNChanged. A changes-only run then reads in full
        # what changed since its DC's position (find_position) and what the keys pass found
        # new or out of step (plan_changes); without a position for that DC it reads every entry.
        self.search_filter = source.search_filter
        self.incremental = False  # decided once connected: the position is the DC's
        self.position = adapter.ServerPosition()
        self.changes_filter = source.search_filter
        self.fallback: str | None = None  # why a changes-only run read every entry
        self.extra: set[str] = set()  # GUIDs read in full beyond the changed entries
        self.active_before: set[str] = set()  # GUIDs of this source's active records before the run
        self.read: set[str] = set()  # GUIDs of the entries this run read in full
        self.seen: set[str] = set()  # GUIDs the keys pass found (changes only)
        self.pending_managers: dict[str, str] = {}  # guid → manager DN not resolvable yet
        self.in_batch: dict[str, Customer] = {}
        self.managers: set[str] = set()  # GUIDs of the accounts others name as manager (count_accounts)
        self.started = utcnow()

    # --- the steps ---------------------------------------------------------------------------
    def target(self):
        if self.source.target == DirectoryTarget.CONTACTS:
            return ContactTarget(self.session, self.source, self.save_options,
                                 rules_from_json(self.source.company_rules))
        return PersonTarget(self.session, self.source, self.save_options, Lookups(self.session))

    def count_accounts(self, conn) -> tuple[int, set[str], set[str]]:
        """(entries, GUIDs seen, GUIDs of disabled or expired accounts), reading the keys and what
        the exclusion rule needs only. An entry the rule leaves out is not "seen": a record of
        it imported before is deactivated like one of an account that left the filter. Also
        notes the managers (`self.managers`), which a full run reads first (read_entries): a
        report listed before its manager would otherwise be saved twice, the second time to
        link the manager (resolve_managers) — a third of a first import's saves on AD."""
        seen: set[str] = set()
        disabled: set[str] = set()
        total = 0
        manager = self.mapping["manager"].lower()
        guid_of_dn: dict[str, str] = {}
        named: set[str] = set()  # DNs (lower case) named as someone's manager
        for dn, attributes in adapter.entries(conn, self.source.base_dn, self.search_filter,
                                              [*key_attributes(self.mapping), self.mapping["manager"]],
                                              self.source.page_size):
            total += 1
            self.book.alive()
            guid, is_disabled = account_keys(attributes, self.mapping)
            if guid is None:
                continue
            if self.exclusion.reason(dn, attributes, self.mapping) is not None:
                self.left_out.add(guid)
                continue
            seen.add(guid)
            if is_disabled:
                disabled.add(guid)
            guid_of_dn[dn.lower()] = guid
            boss = single(next((v for k, v in attributes.items() if k.lower() == manager), None))
            if isinstance(boss, str):
                named.add(boss.lower())
        self.managers = {guid_of_dn[dn] for dn in named if dn in guid_of_dn}
        return total, seen, disabled

    def would_deactivate(self, target, seen: set[str], disabled: set[str]) -> tuple[int, int]:
        """(records that would become inactive, active records of this source). Only a change
        from active to inactive counts: a disabled or expired account whose record is inactive
        already (created so) is none, so a directory with many disabled accounts is not held."""
        model = target.model
        rows = self.session.execute(select(model.directory_guid).where(
            model.directory_source_id == self.source.id, target.active_condition()))
        guids = [g for (g,) in rows]
        going = sum(1 for g in guids if g in disabled or g not in seen)  # `seen`: the whole filter, always
        return going, len(guids)

    def write_batch(self, target, entries: list[tuple[str, dict]]) -> None:
        """One page of entries, one unit of work. First all together: the new records' commands
        leave their flush to the page (services.batches.one_flush), which sends their rows in
        one flush; a changed record is written in a savepoint of its own after the rows before
        it were flushed, so its command sees them. When a command or the page's flush refuses
        anything, that attempt (a savepoint) is rolled back and the page written again one
        account at a time, each in a savepoint: the refused account is reported alone."""
        with batch_unit(self.session):
            people: list[DirectoryPerson] = []
            for dn, attributes in entries:
                if self.exclusion.reason(dn, attributes, self.mapping) is not None:
                    self.tally.left_out += 1  # neither imported nor failed: see count_accounts
                    continue
                try:
                    people.append(map_entry(dn, attributes, self.mapping))
                except EntryRefused as exc:
                    self.tally.fail(dn, str(exc), account=_account(attributes, self.mapping))
            # Managers first: a report listed before its manager on the same page (ldap3 yields a
            # page backwards) then gets it as it is written, not in a second save at the end.
            named = {p.manager_dn.lower() for p in people if p.manager_dn}
            people.sort(key=lambda p: p.dn.lower() not in named)
            existing = find_existing(self.session, target, people)
            managers = self._managers_by_dn({p.manager_dn for p in people if p.manager_dn})
            tally, pending = replace(self.tally, changes=list(self.tally.changes),
                                     errors=list(self.tally.errors)), dict(self.pending_managers)
            try:
                with unit_of_work(self.session, savepoint=True), one_flush(self.session):
                    self._write_page(target, people, existing, managers, together=True)
            except (Refused, DomainError):
                # Rolled back to before the page; its records are expired and read again.
                self.tally, self.pending_managers = tally, pending
                self._write_page(target, people, existing, managers, together=False)
            self.tally.processed += len(entries)
            stop = self.book.checkpoint(self.session, self.tally)
        self._after_batch(stop)

    def _after_batch(self, stop: bool) -> None:
        if self.progress is not None:
            self.progress(self.tally.processed, self.total)
        if stop:
            raise CancelRequested(self.book.run_id)

    def _written_before(self, record) -> bool:
        """Whether `record` was written by the run this one continues (counted there)."""
        synced = getattr(record, "directory_synced_at", None)
        return self.resume_since is not None and synced is not None and synced >= self.resume_since \
            and record.directory_source_id == self.source.id

    def _write_page(self, target, people: list[DirectoryPerson], existing: dict, managers: dict[str, int],
                    *, together: bool) -> None:
        self.in_batch = {}  # DN → record of this page, for managers listed earlier on it
        for person in people:
            if person.usn is not None:
                self.tally.highest_usn = max(self.tally.highest_usn or 0, person.usn)
            self._write_one(target, person, existing.get(person.guid), managers, together)

    def _write_one(self, target, person: DirectoryPerson, current, managers: dict[str, int],
                   together: bool) -> None:
        """Compare the entry with its record (nothing written for the many unchanged ones), then
        write what changed through the target's command. One at a time (`together` False), or a
        changed record, goes in a savepoint: a refusal drops this account alone and is reported
        with the field it concerns. A new record written `together` is not flushed here, and
        what its command refuses is raised: the page is then written again one at a time.
        A value longer than its field skips the account (TooLong), before anything is written.
        What the directory has no value for keeps the record's own under the source's "keep"
        (targets.kept_when_empty), the manager too."""
        warnings: list[str] = []
        name = f"{person.last_name}, {person.first_name}"
        try:
            with self.session.no_autoflush:
                values = target.desired(person, warnings)
            values.update(directory_guid=person.guid, sam_account_name=person.sam,
                          directory_dn=person.dn, directory_source_id=self.source.id)
            refuse_too_long(target.model, values)
        except (Refused, DomainError) as exc:  # nothing written yet
            self.tally.fail(person.dn, self._refusal(exc), account=person.sam, name=name)
            return
        values = kept_when_empty(values, current, self.source)
        changed = [k for k, v in values.items() if current is None or getattr(current, k) != v]
        activate = current is None and person.disabled or \
            current is not None and target.is_active(current) == person.disabled
        known, manager_id, new_manager = (False, None, None) if target.model is not Customer else \
            self._manager_of(person, managers)
        if current is not None and not person.manager_dn and keeps_empty(self.source):
            known = False  # no manager in the directory: the one set in Customer Desk stays
        if current is None:
            move_manager = known and (manager_id is not None or new_manager is not None)
        else:  # nobody is their own manager
            move_manager = known and (new_manager is not None or
                                      manager_id != current.manager_id and manager_id != current.id)
        # Written by the run this one continues, and the directory has not changed it since: it
        # was counted there (at most its manager is completed now).
        carried = current is not None and not (changed or activate) and self._written_before(current)
        if current is not None and not (changed or activate or move_manager):
            if carried:
                self.tally.already += 1
            else:
                self.tally.unchanged += 1
            self._remember(person, current)
            return
        reported = sorted(set(changed) - {"directory_source_id"}) + \
            [f for f, done in ((target.status_field, activate), ("manager", move_manager)) if done]
        before = report_values(current, reported) \
            if current is not None and self.tally.reports_changes else None

        def write():
            record = current if current is not None else target.new(person)
            with self.session.no_autoflush:
                for key in changed:
                    setattr(record, key, values[key])
                if activate:
                    target.set_active(record, not person.disabled)
                if move_manager:
                    record.manager = new_manager if new_manager is not None else \
                        self.session.get(Customer, manager_id) if manager_id else None
            record.directory_synced_at = self.started
            target.save(record, self.actor)
            return record

        if together and current is None:
            record = write()
        else:
            if together:  # the page's new rows first; a refusal of theirs is the page's
                flush(self.session)
            try:
                with unit_of_work(self.session, savepoint=True):
                    record = write()
            except (Refused, DomainError) as exc:
                self.tally.fail(person.dn, self._refusal(exc), account=person.sam, name=name)
                return
        for warning in warnings:
            self.tally.fail(person.dn, warning, account=person.sam, skipped=False, name=name)
        self._remember(person, record)
        if current is None:
            self.tally.created += 1
            return
        if carried:
            self.tally.already += 1
            return
        self.tally.updated += 1
        if activate and person.disabled:
            self.tally.deactivated += 1
        if before is not None:  # old → new, as the report shows them
            after = report_values(record, reported)
            self.tally.changed(str(record), [
                {"field": f, "label": field_label(f), "old": before[f], "new": after[f]} for f in reported
                if before[f] != after[f] or f in ("manager", target.status_field)], account=person.sam)

    def _remember(self, person: DirectoryPerson, record) -> None:
        if isinstance(record, Customer):
            self.in_batch[person.dn.lower()] = record

    def _refusal(self, exc: Exception) -> str:
        """A refusal as the report says it: each message with the field it concerns and the
        directory attribute that field comes from ("Location ID (physicalDeliveryOfficeName) has
        130 characters, at most 128")."""
        if isinstance(exc, TooLong):
            return "; ".join(f"{self._field_label(name)} has {given} characters, at most {limit}"
                             for name, given, limit in exc.fields)
        if not isinstance(exc, ValidationFailed):
            return str(exc)
        return "; ".join(message if name == FORM else f"{self._field_label(name)}: {message}"
                         for name, messages in exc.errors.items() for message in messages)

    def _field_label(self, name: str) -> str:
        """A field as people call it, with the directory attribute it comes from when that is
        named otherwise: "Location ID (physicalDeliveryOfficeName)", "Title"."""
        attribute = self.mapping.get(SOURCE_FIELD.get(name, name))
        label = field_label(name)
        return f"{label} ({attribute})" if attribute and attribute.lower() != name.replace("_", "").lower() \
            else label

    def _managers_by_dn(self, dns: set[str]) -> dict[str, int]:
        """DN (lower case) → id of the active records with these DNs. An inactive manager (deleted
        in the directory, out of the filter, disabled) is left to resolve_managers, which sees
        whether this run brought it back: a report never links to an inactive manager."""
        return {dn: cid for dn, (cid, active) in self._manager_records(dns).items() if active}

    def _manager_records(self, dns: set[str]) -> dict[str, tuple[int, bool]]:
        """DN (lower case) → (id, active) of the records with these DNs."""
        if not dns:
            return {}
        rows = self.session.execute(
            select(Customer.directory_dn, Customer.id, CustomerStatus.is_active)
            .outerjoin(CustomerStatus, Customer.status_id == CustomerStatus.id)
            .where(Customer.directory_dn.in_(dns)))
        return {dn.lower(): (cid, active is not False) for dn, cid, active in rows}

    def _manager_of(self, person: DirectoryPerson,
                    managers: dict[str, int]) -> tuple[bool, int | None, Customer | None]:
        """(known, the manager's id, the manager when it is new on this page and not flushed
        yet): no manager when the entry names none; not known when the manager comes later in
        the listing (a forward reference, resolved at the end)."""
        if not person.manager_dn:
            return True, None, None
        key = person.manager_dn.lower()
        manager_id = managers.get(key)
        earlier = self.in_batch.get(key) if manager_id is None else None  # written earlier on this page
        with self.session.no_autoflush:
            if earlier is not None and earlier.status is not None and not earlier.status.is_active:
                earlier = None  # inactive: resolve_managers decides, as for one on an earlier page
        if earlier is not None and earlier.id is None:
            return True, None, earlier
        manager_id = manager_id or (earlier.id if earlier is not None else None)
        if manager_id is None:
            self.pending_managers[person.guid] = person.manager_dn
            return False, None, None
        return True, manager_id, None

    def resolve_managers(self, target: PersonTarget) -> None:
        """Second pass: managers that came later in the listing than their reports (or in the
        same batch), and inactive ones, decided now that this run wrote them all: an active
        manager is linked, an inactive one (deleted, out of the filter, disabled) unlinked.
        500 reports per unit of work, each through the command in a savepoint."""
        for batch in batches(self.pending_managers.items(), 500):
            with batch_unit(self.session):
                guids = dict(batch)
                managers = self._manager_records(set(guids.values()))
                reports = self.session.scalars(select(Customer).where(Customer.directory_guid.in_(guids)))
                for record in list(reports):
                    manager_dn = guids[record.directory_guid or ""]  # found by it: never None
                    found = managers.get(manager_dn.lower())
                    if found is None:
                        self.tally.fail(record.directory_dn or "", f"manager {manager_dn} is not among the "
                                        "imported accounts", account=record.sam_account_name, skipped=False)
                        continue
                    manager_id, active = found
                    wanted = manager_id if active else None
                    if manager_id != record.id and wanted != record.manager_id:  # nobody is their own manager
                        self._set_manager(target, record, wanted)
                stop = self.book.checkpoint(self.session, self.tally)
            self._after_batch(stop)

    def clear_inactive_managers(self, target: PersonTarget) -> None:
        """Reports of this source whose manager's record an import made inactive (the account was
        deleted, left the filter or was disabled) point at nobody any more. Needed on every run:
        AD removes `manager` from the reports of a deleted account without changing their
        uSNChanged, a disabled manager keeps his reports' links, and a source keeping local
        values keeps a link the directory no longer names. 500 per unit of work, each through
        the command (its audit event) in a savepoint."""
        manager = aliased(Customer)
        inactive = select(CustomerStatus.id).where(CustomerStatus.is_active.is_(False))
        ids = list(self.session.scalars(
            select(Customer.id).join(manager, Customer.manager_id == manager.id)
            .where(Customer.directory_source_id == self.source.id, manager.directory_guid.is_not(None),
                   manager.status_id.in_(inactive))))
        for batch in batches(ids, 500):
            with batch_unit(self.session):
                for record in self.session.scalars(select(Customer).where(Customer.id.in_(batch))):
                    self._set_manager(target, record, None)
                stop = self.book.checkpoint(self.session, self.tally)
            self._after_batch(stop)

    def _set_manager(self, target: PersonTarget, record: Customer, manager_id: int | None) -> None:
        """Link `record` to its manager (None: to nobody) through the command, and count it once
        in this run: a record this run wrote already was counted so; one it read and found
        unchanged (or found written by the run it continues) is counted updated instead; one it
        did not read (a changes-only run: AD changed nothing on it) is counted updated."""
        written = record.directory_synced_at == self.started
        carried = not written and self._written_before(record)
        before = report_values(record, ["manager"])["manager"] if self.tally.reports_changes else None
        try:
            with unit_of_work(self.session, savepoint=True):
                record.manager = self.session.get(Customer, manager_id) if manager_id else None
                record.directory_synced_at = self.started
                target.save(record, self.actor)
        except DomainError as exc:
            self.tally.fail(record.directory_dn or "", self._refusal(exc),
                            account=record.sam_account_name, skipped=False)
            return
        if written:
            return
        if record.directory_guid in self.read:
            if carried and self.tally.already:
                self.tally.already -= 1
            elif self.tally.unchanged:
                self.tally.unchanged -= 1
        self.tally.updated += 1
        self.tally.changed(str(record), [{"field": "manager", "label": field_label("manager"), "old": before,
                                          "new": report_values(record, ["manager"])["manager"]}],
                           account=record.sam_account_name)

    def deactivate_vanished(self, target, seen: set[str]) -> None:
        """Accounts of this source no longer in the directory become inactive (never deleted),
        through the command (its audit event), 500 per unit of work."""
        model = target.model
        ids = [i for i, guid in self.session.execute(select(model.id, model.directory_guid).where(
            model.directory_source_id == self.source.id, target.active_condition())) if guid not in seen]
        for batch in batches(ids, 500):  # only those to deactivate: no unit of work for the others
            with batch_unit(self.session):
                for record in self.session.scalars(select(model).where(model.id.in_(batch))):
                    if record.directory_guid in seen:
                        continue
                    try:
                        with unit_of_work(self.session, savepoint=True):
                            target.set_active(record, False)
                            target.save(record, self.actor)
                    except DomainError as exc:
                        self.tally.fail(record.directory_dn or "", self._refusal(exc),
                                        account=record.sam_account_name)
                        continue
                    self.tally.deactivated += 1
                    self.tally.changed(str(record), ["status (left out by the source's rule)"
                                                     if record.directory_guid in self.left_out
                                                     else "status (no longer found)"])
                stop = self.book.checkpoint(self.session, self.tally)
            self._after_batch(stop)

    # --- changes only ------------------------------------------------------------------------
    def find_position(self, conn) -> None:
        """Before anything is read: the DC's position (adapter.read_position), and for a
        changes-only run where to start. AD: the position this source keeps for that very DC
        (USNs are per DC); none, or one the DC has not reached (a restore), and every entry is
        read. A server without DC counters (OpenLDAP): the highest uSNChanged read before."""
        self.position = adapter.read_position(conn)
        if self.options.full:
            return
        dc = self.position
        if dc.dc is None:
            since = self.source.last_usn
        else:
            since = (self.source.usn_by_dc or {}).get(dc.dc)
            if since is None or dc.usn is None or since > dc.usn:
                since = None
                self.fallback = (f"Changes only: every entry was read, as this source had no position of "
                                 f"changes for the domain controller {dc.host or dc.dc} (a first run there, "
                                 "failover to another DC, or a DC restored from a backup). The next "
                                 "changes-only run there reads only changes.")
        self.incremental = since is not None
        if since is not None:
            self.changes_filter = adapter.changed_since(self.source.search_filter, since)

    def plan_changes(self, conn, target, seen: set[str], disabled: set[str]) -> int:
        """A changes-only run, after the keys pass: what it reads in full, and how many entries
        that is. The changed entries (uSNChanged), and the accounts the keys pass found that
        their records do not agree with — new to this source (joined the group of a memberOf
        filter, or moved into the base: AD changes nothing on them), active although disabled,
        inactive although back. Records not seen at all are deactivated at the end
        (deactivate_vanished), as in a full run."""
        model = target.model
        mine = model.directory_source_id == self.source.id
        known = set(self.session.scalars(select(model.directory_guid).where(mine)))
        self.active_before = set(self.session.scalars(select(model.directory_guid).where(
            mine, target.active_condition())))
        self.seen = seen
        self.extra = {g for g in seen if g not in known or (g in self.active_before) == (g in disabled)}
        changed = 0
        key = self.mapping["directory_guid"]
        for _dn, attributes in adapter.entries(conn, self.source.base_dn, self.changes_filter, [key],
                                               self.source.page_size):
            self.book.alive()
            changed += 1
            self.extra.discard(account_keys(attributes, self.mapping)[0] or "")
        return changed + len(self.extra)

    def read_entries(self, conn) -> Iterator[tuple[str, dict]]:
        """The entries this run reads in full: all of the filter (the managers first, see
        count_accounts), or (changes only) the changed ones and plan_changes' extra ones. Each
        account once."""
        if not self.incremental:
            yield from self._by_guid(conn, self.managers)
            yield from self._once(adapter.entries(conn, self.source.base_dn, self.search_filter,
                                                  requested_attributes(self.mapping), self.source.page_size))
            return
        yield from self._once(adapter.entries(conn, self.source.base_dn, self.changes_filter,
                                              requested_attributes(self.mapping), self.source.page_size))
        yield from self._by_guid(conn, self.extra)

    def reports_of_returned(self, conn, target: PersonTarget) -> Iterator[tuple[str, dict]]:
        """Changes only, after the changed entries were written: the reports of managers this
        run made active (enabled again, back in the filter, new). Their own entries did not
        change, so they were not read; read now, they link to their manager again."""
        rows = self.session.execute(select(Customer.directory_dn, Customer.directory_guid).where(
            Customer.directory_source_id == self.source.id, Customer.directory_synced_at == self.started,
            target.active_condition()))
        back = sorted(dn for dn, guid in rows if dn and guid not in self.active_before)
        reports: set[str] = set()
        key = self.mapping["directory_guid"]
        for dns in _chunks(back, FILTER_VALUES):
            wanted = adapter.reports_filter(self.search_filter, self.mapping["manager"], dns)
            for _dn, attributes in adapter.entries(conn, self.source.base_dn, wanted, [key],
                                                   self.source.page_size):
                guid = account_keys(attributes, self.mapping)[0]
                if guid is not None and guid in self.seen and guid not in self.read:
                    reports.add(guid)
        if reports:
            self.total = (self.total or 0) + len(reports)
            self.book.set_total(self.total)
            yield from self._by_guid(conn, reports)

    def _by_guid(self, conn, guids: set[str]) -> Iterator[tuple[str, dict]]:
        for chunk in _chunks(sorted(guids), FILTER_VALUES):
            wanted = adapter.guids_filter(self.search_filter, self.mapping["directory_guid"], chunk)
            yield from self._once(adapter.entries(conn, self.source.base_dn, wanted,
                                                  requested_attributes(self.mapping), self.source.page_size))

    def _once(self, entries: Iterator[tuple[str, dict]]) -> Iterator[tuple[str, dict]]:
        """`entries` without the accounts this run read already (self.read keeps their GUIDs)."""
        for dn, attributes in entries:
            guid = account_keys(attributes, self.mapping)[0]
            if guid is not None:
                if guid in self.read:
                    continue
                self.read.add(guid)
            yield dn, attributes

    def keep_position(self) -> None:
        """Remember how far the directory was read, for the next changes-only run: on AD the
        DC's highestCommittedUSN read before this run read anything (a change made meanwhile
        is read again next time, never missed), kept for that DC; on a server without it the
        highest uSNChanged this run read."""
        dc = self.position
        if dc.dc is not None and dc.usn is not None:
            with unit_of_work(self.session):
                self.source.usn_by_dc = {**(self.source.usn_by_dc or {}), dc.dc: dc.usn}
                self.source.last_usn = dc.usn
        elif self.tally.highest_usn is not None:
            with unit_of_work(self.session):
                self.source.last_usn = max(self.source.last_usn or 0, self.tally.highest_usn)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _account(attributes: dict, mapping: dict[str, str]) -> str | None:
    value = {k.lower(): v for k, v in attributes.items()}.get(mapping["sam_account_name"].lower())
    value = value[0] if isinstance(value, list | tuple) and value else value
    return value if isinstance(value, str) else None


def run_queued(session: DbSession, run_id: int, box: SecretBox, save_options: SaveOptions, *,
               lease_seconds: int = DEFAULT_LEASE_SECONDS, worker: str | None = None,
               progress: Progress | None = None) -> DirectorySyncRun | None:
    """Claim the queued run `run_id` and do it (a worker's job, jobs.directory, or the command
    line in its own process); returns the run as it ended, or None when it was not queued any
    more (cancelled meanwhile, or taken by another worker: a job delivered twice). Never raises
    for a directory or data problem: the run says FAILED and why. What the import meets
    unexpectedly is raised after the run is marked failed. `session` is the door's; the import
    opens its units of work on it (a dry run in services.dry_runs' session), so it must not be
    inside one."""
    if in_unit_of_work(session):
        raise RuntimeError("A directory import commits batch by batch: run it outside a unit of work.")
    book = RunBook(session.get_bind(), run_id, worker=worker or worker_name(), lease_seconds=lease_seconds)
    try:
        with unit_of_work(book.session):
            if not claim(book.session, DirectorySyncRun, run_id, queued=SyncRunStatus.QUEUED,
                         running=SyncRunStatus.RUNNING, worker=book.worker):
                log.info("Directory run %s is not queued any more: left alone", run_id)
                return None
        run = book.run()
        assert run is not None  # claimed just now
        options = SyncOptions(dry_run=run.dry_run, confirm_deactivation=run.confirm_deactivation,
                              full=not run.incremental)
        continued = book.session.get(DirectorySyncRun, run.resumes_id) if run.resumes_id else None
        since = chain_start(book.session, run) if continued is not None else None
        book.dry_run = run.dry_run
        with ExitStack() as stack:
            work: DbSession = session
            if run.dry_run:
                try:
                    work = stack.enter_context(dry_run_session(session))
                except DomainError as exc:  # its copy of the database could not be made
                    book.finish(SyncRunStatus.FAILED, str(exc), None)
                    return book.run()
            source = work.get(DirectorySource, run.source_id)
            actor = work.get(Operator, run.started_by_id) if run.started_by_id else None
            assert source is not None  # runs are deleted with their source
            job = Import(work, source, box, actor, options, save_options, progress, book, since)
            if continued is not None:  # what it committed, counted once: see Import._written_before
                tally = job.tally
                tally.created, tally.updated, tally.deactivated = (continued.created, continued.updated,
                                                                   continued.deactivated)
                tally.changes = list(continued.changes or [])
            _run(job, book, continued, shares_lock=run.dry_run and _same_sqlite_file(work, book.session))
        return book.run()
    except LeaseLost:
        log.warning("Directory run %s was taken from worker %s (its lease lapsed): stopped without "
                    "writing more", run_id, book.worker)
        return book.run()
    finally:
        book.close()


def _same_sqlite_file(one: DbSession, other: DbSession) -> bool:
    """Whether a dry run's writes hold the write lock the run's row needs (SQLite, one file)."""
    first, second = one.get_bind().engine, other.get_bind().engine
    return first.dialect.name == "sqlite" and first.url.database == second.url.database


def _run(job: Import, book: RunBook, continued: DirectorySyncRun | None, *, shares_lock: bool) -> None:
    source, options, dry = job.source, job.options, job.options.dry_run
    # A real run's counts are the committed ones (each batch wrote its own): on a stop they stay.
    committed = None if not dry else job.tally
    clear_text = None  # the report notes a password sent in clear text (adapter.cleartext_warning)
    try:
        target = job.target()
        settings = connection_settings(source, job.box)
        clear_text = adapter.cleartext_warning(settings)
        with adapter.connect(settings) as conn:
            job.find_position(conn)  # before reading anything: changes made meanwhile come next time
            job.total, seen, disabled = job.count_accounts(conn)
            if job.incremental:
                job.total = job.plan_changes(conn, target, seen, disabled)
            book.set_total(job.total)
            if job.progress is not None:
                job.progress(0, job.total)
            going, of = job.would_deactivate(target, seen, disabled)
            if of and going * 100 > source.max_deactivate_percent * of and not options.confirm_deactivation:
                book.finish(SyncRunStatus.FAILED, (
                    f"Held before writing anything: this run would deactivate {going} of the source's {of} "
                    f"active records ({going * 100 // of} %), more than the allowed "
                    f"{source.max_deactivate_percent} %. Check the directory and the filter, then run "
                    "again confirming the deactivation."), job.tally)
                return
            # A dry run: every batch joins this one unit of work, rolled back at its end. On one
            # SQLite file it holds the write lock to its end: its progress comes with the result.
            book.quiet = shares_lock
            with rolled_back(job.session) if dry else nullcontext():
                for batch in batches(job.read_entries(conn), source.page_size):
                    job.write_batch(target, batch)
                if isinstance(target, PersonTarget):
                    if job.incremental:
                        for batch in batches(job.reports_of_returned(conn, target), source.page_size):
                            job.write_batch(target, batch)
                    job.resolve_managers(target)
                job.deactivate_vanished(target, seen)  # the keys pass read the whole filter, always
                if isinstance(target, PersonTarget):
                    job.clear_inactive_managers(target)
                if not dry:
                    job.keep_position()
            book.quiet = False
    except CancelRequested:
        book.quiet = False
        book.finish(SyncRunStatus.CANCELLED, (
            "Cancelled: a dry run writes nothing." if dry else
            f"Cancelled after {job.tally.processed} of {job.total or 0} entries; what it wrote is kept "
            "(the counts above). Resume continues from there."), committed, total=job.total)
        return
    except (adapter.DirectoryError, Refused) as exc:
        book.quiet = False
        book.finish(SyncRunStatus.FAILED, " ".join(filter(None, [str(exc), clear_text])), committed,
                    total=job.total)
        return
    except LeaseLost:
        raise
    except Exception:
        book.quiet = False
        book.finish(SyncRunStatus.FAILED, "The import stopped on an unexpected error; the batches written "
                                          "before it are kept, and Resume completes the rest.",
                    committed, total=job.total)
        raise
    except BaseException:  # Ctrl-C of the command line, the interpreter going down
        book.quiet = False
        book.finish(SyncRunStatus.INTERRUPTED, "Interrupted: the process running it was stopped. What it "
                    "committed is kept (the counts above); Resume continues from there.", committed,
                    total=job.total)
        raise
    message = "Dry run: nothing was written." if dry else job.fallback
    if continued is not None:
        message = (f"Continued run #{continued.id}: the {job.tally.already} entries it had written were "
                   "found in place and counted there, not written again.")
    book.finish(SyncRunStatus.SUCCEEDED, " ".join(filter(None, [message, clear_text])) or None, job.tally,
                total=job.total)


def sync_directory(session: DbSession, source: DirectorySource, box: SecretBox, actor: Operator | None,
                   options: SyncOptions, save_options: SaveOptions, progress: Progress | None = None, *,
                   lease_seconds: int = DEFAULT_LEASE_SECONDS) -> DirectorySyncRun:
    """Import (or dry-run) `source` here and now, through a run row like any other (queued, then
    claimed by this process, with its lease: a page sees it and starts no second one); returns
    the run as it ended. Raises RunActive when the source has a run queued or running already,
    and what `run_queued` raises. `session` must not be inside a unit of work."""
    if in_unit_of_work(session):
        raise RuntimeError("A directory import commits batch by batch: run it outside a unit of work.")
    with unit_of_work(session):
        run = queue_run(session, source, actor, dry_run=options.dry_run, full=options.full,
                        confirm_deactivation=options.confirm_deactivation, lease_seconds=lease_seconds)
    run_id = run.id
    done = run_queued(session, run_id, box, save_options, lease_seconds=lease_seconds, progress=progress)
    if done is None:  # cancelled before this process took it
        session.expire_all()
        done = session.get(DirectorySyncRun, run_id)
    assert done is not None
    return done
