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
the run beats every few seconds through a session of its own on the real database
(services.directory.run_book.RunBook),
which also writes a dry run's progress and every run's outcome. A cancel asked for is seen at
the next beat: the run stops at that batch boundary, cancelled, keeping what it committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import aliased

from i18n import _
from models import Customer, CustomerStatus, DirectorySource, DirectorySyncRun, Operator
from models.base import utcnow
from models.enums import DirectoryTarget, SyncRunStatus
from services.batches import batch_unit, batches, one_flush, rolled_back
from services.customers import SaveOptions
from services.directory import adapter
from services.directory.changes import ChangesOnly
from services.directory.mapping import (
    DirectoryPerson,
    EntryRefused,
    Exclusion,
    account_keys,
    attribute_map,
    key_attributes,
    map_entry,
    rules_from_json,
    single,
)
from services.directory.run_book import RunBook, SyncOptions, Tally
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
from services.run_leases import DEFAULT_LEASE_SECONDS, CancelRequested, LeaseLost, claim, worker_name
from services.secrets import SecretBox
from services.transactions import DbSession, flush, in_unit_of_work, unit_of_work

log = logging.getLogger(__name__)
Progress = Callable[[int, "int | None"], None]  # (entries processed, entries in all)
# A record's field → the directory field it comes from, where the names differ.
SOURCE_FIELD = {"location_code": "office", "site": "office", "phone": "primary_phone"}


def connection_settings(source: DirectorySource, box: SecretBox) -> adapter.ConnectionSettings:
    return adapter.ConnectionSettings(
        urls=[u.strip() for u in source.server_urls.replace(",", " ").split() if u.strip()],
        bind_dn=source.bind_dn, password=box.decrypt(source.bind_password_encrypted),
        use_starttls=source.use_starttls, verify_certificate=source.verify_certificate,
        ca_file=source.ca_file)


class Import(ChangesOnly):
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
        self.left_out_dns: set[str] = set()  # and their DNs (lower case)
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
                self.left_out_dns.add(dn.lower())
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
                    continue  # neither imported nor failed: counted by the keys pass (_run)
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
            return "; ".join(_("%(field)s has %(given)s characters, at most %(limit)s",
                               field=self._field_label(name), given=given, limit=limit)
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
                        why = _("manager %(dn)s is left out by the source's rule (Leave out …): the "
                                "report is imported without a manager", dn=manager_dn) \
                            if manager_dn.lower() in self.left_out_dns else \
                            _("manager %(dn)s is not among the imported accounts", dn=manager_dn)
                        self.tally.fail(record.directory_dn or "", why,
                                        account=record.sam_account_name, skipped=False)
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
                    self.tally.changed(str(record), [_("status (left out by the source's rule)")
                                                     if record.directory_guid in self.left_out
                                                     else _("status (no longer found)")])
                stop = self.book.checkpoint(self.session, self.tally)
            self._after_batch(stop)


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
            job.tally.left_out = len(job.left_out)  # every run's keys pass reads the whole filter
            if job.incremental:
                job.total = job.plan_changes(conn, target, seen, disabled)
            book.set_total(job.total)
            if job.progress is not None:
                job.progress(0, job.total)
            going, of = job.would_deactivate(target, seen, disabled)
            if of and going * 100 > source.max_deactivate_percent * of and not options.confirm_deactivation:
                numbers = {"going": going, "of": of, "percent": going * 100 // of,
                           "allowed": source.max_deactivate_percent, "left_out": len(job.left_out)}
                book.finish(SyncRunStatus.FAILED, _(
                    "Held before writing anything: this run would deactivate %(going)s of the source's "
                    "%(of)s active records (%(percent)s %%), more than the allowed %(allowed)s %%. Check the "
                    "directory and the filter, and the source's Leave out settings (they leave out "
                    "%(left_out)s accounts), then run again confirming the deactivation.", **numbers)
                    if job.left_out else _(
                    "Held before writing anything: this run would deactivate %(going)s of the source's "
                    "%(of)s active records (%(percent)s %%), more than the allowed %(allowed)s %%. Check the "
                    "directory and the filter, then run again confirming the deactivation.", **numbers),
                    job.tally)
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
            _("Cancelled: a dry run writes nothing.") if dry else
            _("Cancelled after %(done)s of %(total)s entries; what it wrote is kept (the counts above). "
              "Resume continues from there.", done=job.tally.processed, total=job.total or 0)),
            committed, total=job.total)
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
        book.finish(SyncRunStatus.FAILED, _("The import stopped on an unexpected error; the batches written "
                                            "before it are kept, and Resume completes the rest."),
                    committed, total=job.total)
        raise
    except BaseException:  # Ctrl-C of the command line, the interpreter going down
        book.quiet = False
        book.finish(SyncRunStatus.INTERRUPTED, _("Interrupted: the process running it was stopped. What it "
                    "committed is kept (the counts above); Resume continues from there."), committed,
                    total=job.total)
        raise
    message = _("Dry run: nothing was written.") if dry else job.fallback
    if continued is not None:
        message = _("Continued run #%(run)s: the %(count)s entries it had written were found in place and "
                    "counted there, not written again.", run=continued.id, count=job.tally.already)
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
