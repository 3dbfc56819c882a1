"""Importing a directory source: a pipeline of small named steps.

    count the accounts (keys only) → hold when too many would be deactivated → page through the
    entries: map → skip the incomplete → match (GUID, sAMAccountName, e-mail) → create / update
    directory-owned fields → commit the batch → resolve managers → deactivate the vanished → report

Each batch is its own transaction, so a failure part-way leaves a consistent database and a rerun
completes the rest. A dry run is the same import rolled back at the end, so a preview and the
import cannot disagree. The run's row (counts, progress, report) lives in a session of its own,
committed as the import goes, so the admin page can show progress from any process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Customer, DirectorySource, DirectorySyncRun, Operator
from models.base import utcnow
from models.enums import DirectoryTarget, SyncRunStatus
from services.audit import changes_of, record
from services.customers import SaveOptions
from services.directory import adapter
from services.directory.mapping import (
    DirectoryPerson,
    EntryRefused,
    account_keys,
    attribute_map,
    map_entry,
    requested_attributes,
    rules_from_json,
)
from services.directory.targets import ContactTarget, Lookups, PersonTarget, Refused, find_existing
from services.errors import ValidationFailed
from services.secrets import SecretBox

REPORT_LIMIT = 500  # changed and failed entries kept in a run's report
Progress = Callable[[DirectorySyncRun], None]


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
    processed: int = 0
    changes: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    highest_usn: int | None = None

    def fail(self, dn: str, message: str, *, skipped: bool = True) -> None:
        self.failed += skipped
        if len(self.errors) < REPORT_LIMIT:
            self.errors.append({"dn": dn, "message": message, "skipped": skipped})

    def changed(self, name: str, fields: list[str]) -> None:
        if len(self.changes) < REPORT_LIMIT:
            self.changes.append({"name": name, "fields": fields})


def connection_settings(source: DirectorySource, box: SecretBox) -> adapter.ConnectionSettings:
    return adapter.ConnectionSettings(
        urls=[u.strip() for u in source.server_urls.replace(",", " ").split() if u.strip()],
        bind_dn=source.bind_dn, password=box.decrypt(source.bind_password_encrypted),
        use_starttls=source.use_starttls, verify_certificate=source.verify_certificate,
        ca_file=source.ca_file)


def _batches(items: Iterator, size: int) -> Iterator[list]:
    while batch := list(islice(items, size)):
        yield batch


class Import:
    """One run of one source (see the module docstring)."""

    def __init__(self, session: Session, source: DirectorySource, box: SecretBox, actor: Operator | None,
                 options: SyncOptions, save_options: SaveOptions, progress: Progress | None):
        self.session, self.source, self.box, self.actor = session, source, box, actor
        self.options, self.save_options, self.progress = options, save_options, progress
        self.mapping = attribute_map(source.attribute_map)
        self.tally = Tally()
        self.incremental = not options.full and source.last_usn is not None
        self.search_filter = adapter.changed_since(source.search_filter,
                                                   source.last_usn if self.incremental else None)
        self.pending_managers: dict[str, str] = {}  # guid → manager DN not resolvable yet
        self.in_batch: dict[str, Customer] = {}
        self.started = utcnow()

    # --- the steps ---------------------------------------------------------------------------
    def target(self):
        if self.source.target == DirectoryTarget.CONTACTS:
            return ContactTarget(self.session, self.source, self.save_options,
                                 rules_from_json(self.source.company_rules))
        return PersonTarget(self.session, self.source, self.save_options, Lookups(self.session))

    def count_accounts(self, conn) -> tuple[int, set[str], set[str]]:
        """(entries, GUIDs seen, GUIDs of disabled accounts), reading the keys only."""
        keys = [self.mapping["directory_guid"], self.mapping["account_control"]]
        seen: set[str] = set()
        disabled: set[str] = set()
        total = 0
        for _dn, attributes in adapter.entries(conn, self.source.base_dn, self.search_filter, keys,
                                               self.source.page_size):
            total += 1
            guid, is_disabled = account_keys(attributes, self.mapping)
            if guid is not None:
                seen.add(guid)
                if is_disabled:
                    disabled.add(guid)
        return total, seen, disabled

    def would_deactivate(self, target, seen: set[str], disabled: set[str]) -> tuple[int, int]:
        """(records that would become inactive, active records of this source)."""
        model = target.model
        rows = self.session.execute(select(model.directory_guid).where(
            model.directory_source_id == self.source.id, target.active_condition()))
        guids = [g for (g,) in rows]
        going = sum(1 for g in guids if g in disabled or (not self.incremental and g not in seen))
        return going, len(guids)

    def write_batch(self, target, entries: list[tuple[str, dict]]) -> None:
        people: list[DirectoryPerson] = []
        for dn, attributes in entries:
            try:
                people.append(map_entry(dn, attributes, self.mapping))
            except EntryRefused as exc:
                self.tally.fail(dn, str(exc))
        existing = find_existing(self.session, target, people)
        managers = self._managers_by_dn({p.manager_dn for p in people if p.manager_dn})
        self.in_batch = {}  # DN → record of this page, for managers listed earlier on it
        events: list[tuple[Any, str, dict]] = []
        for person in people:
            if person.usn is not None:
                self.tally.highest_usn = max(self.tally.highest_usn or 0, person.usn)
            event = self._write_one(target, person, existing.get(person.guid), managers)
            if event is not None:
                events.append(event)
        self.session.flush()
        for obj, action, changes in events:
            record(self.session, self.actor, action, obj, changes)
        self._checkpoint()
        self.tally.processed += len(entries)

    def _write_one(self, target, person: DirectoryPerson, current, managers: dict[str, int]):
        warnings: list[str] = []
        try:
            with self.session.no_autoflush:
                obj = current if current is not None else target.new(person)
                values = target.desired(person, warnings)
                values.update(directory_guid=person.guid, sam_account_name=person.sam,
                              directory_dn=person.dn, directory_source_id=self.source.id)
                changed = [k for k, v in values.items() if getattr(obj, k) != v]
                for key in changed:
                    setattr(obj, key, values[key])
                if target.is_active(obj) == person.disabled:
                    target.set_active(obj, not person.disabled)
                    changed.append("status")
                    if person.disabled and current is not None:
                        self.tally.deactivated += 1
                if isinstance(obj, Customer):
                    self._set_manager(obj, person, managers, changed)
                    self.in_batch[person.dn.lower()] = obj
                if current is not None and not changed:
                    self.tally.unchanged += 1
                    return None
                target.validate(obj)
        except (Refused, ValidationFailed) as exc:
            self._discard(current, locals().get("obj"))
            message = "; ".join(m for ms in exc.errors.values() for m in ms) \
                if isinstance(exc, ValidationFailed) else str(exc)
            self.tally.fail(person.dn, message)
            return None
        for warning in warnings:
            self.tally.fail(person.dn, warning, skipped=False)
        obj.directory_synced_at = self.started
        self.session.add(obj)
        changes = changes_of(obj)
        if current is None:
            self.tally.created += 1
            return obj, "create", changes
        self.tally.updated += 1
        self.tally.changed(str(obj), sorted(set(changed) - {"directory_source_id"}))
        return obj, "update", changes

    def _discard(self, current, obj) -> None:
        """Forget a refused entry's values: nothing of it may reach the batch's commit."""
        if current is not None:
            self.session.expire(current)  # drops the half-applied values
        elif obj is not None:
            if getattr(obj, "customer", None) is not None:
                obj.customer = None  # out of its company's contacts, which would cascade it
            if obj in self.session:
                self.session.expunge(obj)

    def _managers_by_dn(self, dns: set[str]) -> dict[str, int]:
        if not dns:
            return {}
        rows = self.session.execute(select(Customer.directory_dn, Customer.id).where(
            Customer.directory_dn.in_(dns)))
        return {dn.lower(): cid for dn, cid in rows}

    def _set_manager(self, obj: Customer, person: DirectoryPerson, managers: dict[str, int],
                     changed: list[str]) -> None:
        if not person.manager_dn:
            if obj.manager_id is not None:
                obj.manager_id = None
                changed.append("manager")
            return
        manager_id = managers.get(person.manager_dn.lower())
        earlier = self.in_batch.get(person.manager_dn.lower())
        if manager_id is None and earlier is not None:  # earlier on this page, not yet written
            if obj.manager is not earlier and earlier is not obj:
                obj.manager = earlier
                changed.append("manager")
        elif manager_id is None:  # later in the listing (a forward reference): resolved at the end
            self.pending_managers[person.guid] = person.manager_dn
        elif manager_id != obj.manager_id and manager_id != obj.id:
            obj.manager_id = manager_id
            changed.append("manager")

    def resolve_managers(self) -> None:
        """Second pass: managers that came later in the listing than their reports (or in the
        same batch), 500 reports per transaction."""
        items = iter(self.pending_managers.items())
        for batch in _batches(items, 500):
            guids = dict(batch)
            managers = self._managers_by_dn(set(guids.values()))
            reports = list(self.session.scalars(select(Customer).where(Customer.directory_guid.in_(guids))))
            named = {r.manager_id for r in reports} | set(managers.values())
            names: dict[int, str] = {cid: name for cid, name in self.session.execute(
                select(Customer.id, Customer.display_name).where(Customer.id.in_(named - {None})))}
            events = []
            for obj in reports:
                manager_id = managers.get(guids[obj.directory_guid].lower())
                if manager_id is None:
                    self.tally.fail(obj.directory_dn or "", f"manager {guids[obj.directory_guid]} is not "
                                    "among the imported accounts", skipped=False)
                elif manager_id != obj.manager_id and manager_id != obj.id:
                    old = names.get(obj.manager_id) if obj.manager_id is not None else None
                    events.append((obj, {"manager": [old, names[manager_id]]}))
                    obj.manager_id = manager_id
            self.session.flush()
            for obj, changes in events:
                record(self.session, self.actor, "update", obj, changes)
            self._checkpoint()

    def deactivate_vanished(self, target, seen: set[str]) -> None:
        """Accounts of this source no longer in the directory become inactive (never deleted)."""
        model = target.model
        ids = self.session.scalars(select(model.id).where(
            model.directory_source_id == self.source.id, target.active_condition()))
        for batch in _batches(iter(list(ids)), 500):
            for obj in self.session.scalars(select(model).where(model.id.in_(batch))):
                if obj.directory_guid in seen:
                    continue
                target.set_active(obj, False)
                changes = changes_of(obj)
                record(self.session, self.actor, "update", obj,
                       {**changes, "directory": [None, "no longer found in the directory"]})
                self.tally.deactivated += 1
                self.tally.changed(str(obj), ["status (no longer found)"])
            self._checkpoint()

    def _checkpoint(self) -> None:
        """A real run commits the batch; a dry run only flushes (rolled back at the end)."""
        if self.options.dry_run:
            self.session.flush()
        else:
            self.session.commit()


def start_run(session: Session, source: DirectorySource, actor: Operator | None,
              options: SyncOptions) -> DirectorySyncRun:
    """The row of a run about to start (committed), so a page can show it before it begins."""
    run = DirectorySyncRun(source_id=source.id, dry_run=options.dry_run, status=SyncRunStatus.RUNNING,
                           started_by_id=actor.id if actor is not None else None,
                           incremental=not options.full and source.last_usn is not None)
    session.add(run)
    session.commit()
    return run


def sync_directory(session: Session, source: DirectorySource, box: SecretBox, actor: Operator | None,
                   options: SyncOptions, save_options: SaveOptions,
                   progress: Progress | None = None, run_id: int | None = None) -> DirectorySyncRun:
    """Import (or dry-run) `source`; returns its DirectorySyncRun, finished, with the report.
    `run_id` names a run row made already (start_run: a page started the import and shows it).
    Never raises for a directory or data problem: the run says FAILED and why."""
    book = Session(bind=session.get_bind(), expire_on_commit=False)
    run = book.get(DirectorySyncRun, run_id) if run_id is not None else None
    if run is None:
        run = start_run(book, source, actor, options)
    book.commit()
    job = Import(session, source, box, actor, options, save_options, progress)

    # SQLite has one writer, and a dry run's (rolled back) transaction holds it to the end: its
    # progress is then stored with the result only.
    defer = options.dry_run and session.get_bind().dialect.name == "sqlite"

    def report(status: SyncRunStatus | None = None, message: str | None = None) -> None:
        tally = job.tally
        for name in ("created", "updated", "unchanged", "deactivated", "failed", "processed"):
            setattr(run, name, getattr(tally, name))
        run.changes, run.errors = list(tally.changes) or None, list(tally.errors) or None
        if status is not None:
            run.status, run.finished_at, run.message = status, utcnow(), message
        if status is not None or not defer:
            book.commit()
        if progress is not None:
            progress(run)

    try:
        return _run(session, source, box, options, job, run, report)
    finally:
        book.close()


def _run(session: Session, source: DirectorySource, box: SecretBox, options: SyncOptions, job: Import,
         run: DirectorySyncRun, report: Callable[..., None]) -> DirectorySyncRun:
    try:
        target = job.target()
        with adapter.connect(connection_settings(source, box)) as conn:
            run.total, seen, disabled = job.count_accounts(conn)
            report()
            going, of = job.would_deactivate(target, seen, disabled)
            if of and going * 100 > source.max_deactivate_percent * of and not options.confirm_deactivation:
                report(SyncRunStatus.FAILED, (
                    f"Held before writing anything: this run would deactivate {going} of the source's {of} "
                    f"active records ({going * 100 // of} %), more than the allowed "
                    f"{source.max_deactivate_percent} %. Check the directory and the filter, then run "
                    "again confirming the deactivation."))
                return run
            entries = adapter.entries(conn, source.base_dn, job.search_filter,
                                      requested_attributes(job.mapping), source.page_size)
            for batch in _batches(entries, source.page_size):
                job.write_batch(target, batch)
                report()
        if isinstance(target, PersonTarget):
            job.resolve_managers()
        if not job.incremental:
            job.deactivate_vanished(target, seen)
    except (adapter.DirectoryError, Refused) as exc:
        session.rollback()
        report(SyncRunStatus.FAILED, str(exc))
        return run
    except Exception:
        session.rollback()
        report(SyncRunStatus.FAILED, "The import stopped on an unexpected error; batches written "
                                     "before it are kept and a rerun completes the rest.")
        raise
    if options.dry_run:
        session.rollback()
    elif job.tally.highest_usn is not None:
        source.last_usn = max(source.last_usn or 0, job.tally.highest_usn)
        session.commit()
    report(SyncRunStatus.SUCCEEDED, "Dry run: nothing was written." if options.dry_run else None)
    return run
