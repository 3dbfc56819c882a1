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
unit of work rolled back at the end, so a preview and the import cannot disagree. The run's row
(counts, progress, report) is written by units of work of a session of its own, committed as
the import goes, so the admin page can show progress from any process.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Customer, DirectorySource, DirectorySyncRun, Operator
from models.base import utcnow
from models.enums import DirectoryTarget, SyncRunStatus
from services.batches import batch_unit, batches, one_flush, rolled_back
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
from services.errors import FORM, DomainError, ValidationFailed
from services.secrets import SecretBox
from services.transactions import DbSession, flush, in_unit_of_work, unit_of_work

REPORT_LIMIT = 500  # changed and failed entries kept in a run's report
Progress = Callable[[DirectorySyncRun], None]
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
    processed: int = 0
    changes: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    highest_usn: int | None = None

    def fail(self, dn: str, message: str, *, account: str | None = None, skipped: bool = True) -> None:
        self.failed += skipped
        if len(self.errors) < REPORT_LIMIT:
            self.errors.append({"dn": dn, "account": account, "message": message, "skipped": skipped})

    def changed(self, name: str, fields: list[str]) -> None:
        if len(self.changes) < REPORT_LIMIT:
            self.changes.append({"name": name, "fields": fields})


def connection_settings(source: DirectorySource, box: SecretBox) -> adapter.ConnectionSettings:
    return adapter.ConnectionSettings(
        urls=[u.strip() for u in source.server_urls.replace(",", " ").split() if u.strip()],
        bind_dn=source.bind_dn, password=box.decrypt(source.bind_password_encrypted),
        use_starttls=source.use_starttls, verify_certificate=source.verify_certificate,
        ca_file=source.ca_file)


class Import:
    """One run of one source (see the module docstring)."""

    def __init__(self, session: DbSession, source: DirectorySource, box: SecretBox, actor: Operator | None,
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
        """One page of entries, one unit of work. First all together: the new records' commands
        leave their flush to the page (services.batches.one_flush), which sends their rows in
        one flush; a changed record is written in a savepoint of its own after the rows before
        it were flushed, so its command sees them. When a command or the page's flush refuses
        anything, that attempt (a savepoint) is rolled back and the page written again one
        account at a time, each in a savepoint: the refused account is reported alone."""
        with batch_unit(self.session):
            people: list[DirectoryPerson] = []
            for dn, attributes in entries:
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
        what its command refuses is raised: the page is then written again one at a time."""
        warnings: list[str] = []
        try:
            with self.session.no_autoflush:
                values = target.desired(person, warnings)
        except (Refused, DomainError) as exc:  # nothing written yet
            self.tally.fail(person.dn, self._refusal(exc), account=person.sam)
            return
        values.update(directory_guid=person.guid, sam_account_name=person.sam,
                      directory_dn=person.dn, directory_source_id=self.source.id)
        changed = [k for k, v in values.items() if current is None or getattr(current, k) != v]
        activate = current is None and person.disabled or \
            current is not None and target.is_active(current) == person.disabled
        known, manager_id, new_manager = (False, None, None) if target.model is not Customer else \
            self._manager_of(person, managers)
        if current is None:
            move_manager = known and (manager_id is not None or new_manager is not None)
        else:  # nobody is their own manager
            move_manager = known and (new_manager is not None or
                                      manager_id != current.manager_id and manager_id != current.id)
        if current is not None and not (changed or activate or move_manager):
            self.tally.unchanged += 1
            self._remember(person, current)
            return

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
                self.tally.fail(person.dn, self._refusal(exc), account=person.sam)
                return
        for warning in warnings:
            self.tally.fail(person.dn, warning, account=person.sam, skipped=False)
        self._remember(person, record)
        if current is None:
            self.tally.created += 1
            return
        self.tally.updated += 1
        if activate and person.disabled:
            self.tally.deactivated += 1
        fields = set(changed) - {"directory_source_id"}
        fields |= {name for name, done in (("status", activate), ("manager", move_manager)) if done}
        self.tally.changed(str(record), sorted(fields))

    def _remember(self, person: DirectoryPerson, record) -> None:
        if isinstance(record, Customer):
            self.in_batch[person.dn.lower()] = record

    def _refusal(self, exc: Exception) -> str:
        """A refusal as the report says it: each message with the field it concerns and the
        directory attribute that field comes from ("title: At most 120 characters…")."""
        if not isinstance(exc, ValidationFailed):
            return str(exc)
        return "; ".join(message if name == FORM else f"{self._field_label(name)}: {message}"
                         for name, messages in exc.errors.items() for message in messages)

    def _field_label(self, name: str) -> str:
        attribute = self.mapping.get(SOURCE_FIELD.get(name, name))
        return f"{name} ({attribute})" if attribute and attribute != name else name

    def _managers_by_dn(self, dns: set[str]) -> dict[str, int]:
        if not dns:
            return {}
        rows = self.session.execute(select(Customer.directory_dn, Customer.id).where(
            Customer.directory_dn.in_(dns)))
        return {dn.lower(): cid for dn, cid in rows}

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
        if earlier is not None and earlier.id is None:
            return True, None, earlier
        manager_id = manager_id or (earlier.id if earlier is not None else None)
        if manager_id is None:
            self.pending_managers[person.guid] = person.manager_dn
            return False, None, None
        return True, manager_id, None

    def resolve_managers(self, target: PersonTarget) -> None:
        """Second pass: managers that came later in the listing than their reports (or in the
        same batch), 500 reports per unit of work, each through the command in a savepoint."""
        for batch in batches(self.pending_managers.items(), 500):
            with batch_unit(self.session):
                guids = dict(batch)
                managers = self._managers_by_dn(set(guids.values()))
                reports = self.session.scalars(select(Customer).where(Customer.directory_guid.in_(guids)))
                for record in list(reports):
                    manager_dn = guids[record.directory_guid or ""]  # found by it: never None
                    manager_id = managers.get(manager_dn.lower())
                    if manager_id is None:
                        self.tally.fail(record.directory_dn or "", f"manager {manager_dn} is not among the "
                                        "imported accounts", account=record.sam_account_name, skipped=False)
                    elif manager_id != record.manager_id and manager_id != record.id:
                        try:
                            with unit_of_work(self.session, savepoint=True):
                                record.manager = self.session.get(Customer, manager_id)
                                target.save(record, self.actor)
                        except DomainError as exc:
                            self.tally.fail(record.directory_dn or "", self._refusal(exc),
                                            account=record.sam_account_name, skipped=False)

    def deactivate_vanished(self, target, seen: set[str]) -> None:
        """Accounts of this source no longer in the directory become inactive (never deleted),
        through the command (its audit event), 500 per unit of work."""
        model = target.model
        ids = list(self.session.scalars(select(model.id).where(
            model.directory_source_id == self.source.id, target.active_condition())))
        for batch in batches(ids, 500):
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
                    self.tally.changed(str(record), ["status (no longer found)"])

    def keep_position(self) -> None:
        """Remember how far the directory was read, for the next changes-only run."""
        if self.tally.highest_usn is not None:
            with unit_of_work(self.session):
                self.source.last_usn = max(self.source.last_usn or 0, self.tally.highest_usn)


def _account(attributes: dict, mapping: dict[str, str]) -> str | None:
    value = {k.lower(): v for k, v in attributes.items()}.get(mapping["sam_account_name"].lower())
    value = value[0] if isinstance(value, list | tuple) and value else value
    return value if isinstance(value, str) else None


def start_run(session: DbSession, source: DirectorySource, actor: Operator | None,
              options: SyncOptions) -> DirectorySyncRun:
    """The row of a run about to start (flushed; the caller's unit of work commits it, so a
    page can show it before it begins)."""
    run = DirectorySyncRun(source_id=source.id, dry_run=options.dry_run, status=SyncRunStatus.RUNNING,
                           started_by_id=actor.id if actor is not None else None,
                           incremental=not options.full and source.last_usn is not None)
    session.add(run)
    session.flush()
    return run


def sync_directory(session: DbSession, source: DirectorySource, box: SecretBox, actor: Operator | None,
                   options: SyncOptions, save_options: SaveOptions,
                   progress: Progress | None = None, run_id: int | None = None) -> DirectorySyncRun:
    """Import (or dry-run) `source`; returns its DirectorySyncRun, finished, with the report.
    `run_id` names a run row made already (start_run: a page started the import and shows it).
    Never raises for a directory or data problem: the run says FAILED and why. The import is
    its own door: it opens its units of work on `session`, which must not be inside one."""
    if in_unit_of_work(session):
        raise RuntimeError("sync_directory commits batch by batch: call it outside a unit of work.")
    book = Session(bind=session.get_bind(), expire_on_commit=False)
    try:
        with unit_of_work(book):
            run = book.get(DirectorySyncRun, run_id) if run_id is not None else None
            if run is None:
                run = start_run(book, source, actor, options)
        job = Import(session, source, box, actor, options, save_options, progress)

        # SQLite has one writer, and a dry run's (rolled back) transaction holds it to the end:
        # its progress is then stored with the result only.
        defer = options.dry_run and session.get_bind().dialect.name == "sqlite"

        def report(status: SyncRunStatus | None = None, message: str | None = None) -> None:
            with unit_of_work(book) if status is not None or not defer else nullcontext():
                tally = job.tally
                for name in ("created", "updated", "unchanged", "deactivated", "failed", "processed"):
                    setattr(run, name, getattr(tally, name))
                run.changes, run.errors = list(tally.changes) or None, list(tally.errors) or None
                if status is not None:
                    run.status, run.finished_at, run.message = status, utcnow(), message
            if progress is not None:
                progress(run)

        return _run(source, options, job, run, report)
    finally:
        book.close()


def _run(source: DirectorySource, options: SyncOptions, job: Import, run: DirectorySyncRun,
         report: Callable[..., None]) -> DirectorySyncRun:
    try:
        target = job.target()
        with adapter.connect(connection_settings(source, job.box)) as conn:
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
            # A dry run: every batch joins this one unit of work, rolled back at its end.
            with rolled_back(job.session) if options.dry_run else nullcontext():
                entries = adapter.entries(conn, source.base_dn, job.search_filter,
                                          requested_attributes(job.mapping), source.page_size)
                for batch in batches(entries, source.page_size):
                    job.write_batch(target, batch)
                    report()
                if isinstance(target, PersonTarget):
                    job.resolve_managers(target)
                if not job.incremental:
                    job.deactivate_vanished(target, seen)
                if not options.dry_run:
                    job.keep_position()
    except (adapter.DirectoryError, Refused) as exc:
        report(SyncRunStatus.FAILED, str(exc))
        return run
    except Exception:
        report(SyncRunStatus.FAILED, "The import stopped on an unexpected error; batches written "
                                     "before it are kept and a rerun completes the rest.")
        raise
    report(SyncRunStatus.SUCCEEDED, "Dry run: nothing was written." if options.dry_run else None)
    return run
