"""A directory run's book: its options, the counts and report of an import (`Tally`) and the run's row as
its worker writes it (`RunBook`: the lease, the progress, the outcome), in a session of its own
on the real database (never a dry run's). services.directory.pipeline does the import.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlalchemy.orm import Session

from models import DirectorySyncRun
from models.base import utcnow
from models.enums import SyncRunStatus
from services.run_leases import CancelRequested, LeaseLost, beat
from services.transactions import DbSession, unit_of_work


@dataclass(frozen=True)
class SyncOptions:
    dry_run: bool = False
    confirm_deactivation: bool = False  # go ahead although more than the allowed share goes inactive
    full: bool = True  # False: only entries changed since the last import (uSNChanged)


REPORT_LIMIT = 500  # changed and failed entries kept in a run's report
COUNTS = ("created", "updated", "unchanged", "deactivated", "failed", "left_out", "processed")


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
        """A changed record in the report: per field {field, label, old, new}, the values as
        targets.shown stores them (names of related records, never a secret; None for empty) — or
        a label alone, for what a run did without a value to show. The page shows them in the
        users' words, as the history shows a change (targets.report_lines)."""
        if self.reports_changes:
            entry: dict = {"name": name,
                           "fields": [f if isinstance(f, dict) else {"label": f} for f in fields]}
            if account:
                entry["account"] = account
            self.changes.append(entry)


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
