"""The runs of directory imports, whichever door starts them (the page, the command line, the
schedule): made queued, claimed by the worker that does them (services.run_leases), cancelled
on request, found dead when their worker stops beating, and resumed.

One source has at most one run queued or running: the database says so (a partial unique
index, models.directory.ACTIVE_RUN) and `queue_run` turns its refusal into RunActive, with the
same words on every door. A run whose lease lapsed is interrupted with the counts it committed
(they are committed with each batch they count); Resume queues a run that continues it: the
directory is read again from its start (a paged search cannot be picked up on another
connection), and since the import matches on objectGUID, what the interrupted run wrote is
found in place and counted as that run counted it, not written or counted again
(services.directory.pipeline, `Import.resume_since`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from i18n import _
from models import DirectorySource, DirectorySyncRun, Operator
from models.base import utcnow
from models.enums import SyncRunStatus
from services.access import require_maintainer
from services.errors import FORM, N_, ValidationFailed
from services.run_leases import DEFAULT_LEASE_SECONDS, end_lapsed, lapsed
from services.transactions import DbSession, unit_of_work

log = logging.getLogger(__name__)

# English (compared by code and tests); shown translated, _(message).
ALREADY_RUNNING = N_("An import of this source is already running.")
NOT_RESUMABLE = N_("Only the latest run of a source, if it was interrupted, cancelled or failed part-way, "
                   "can be resumed.")
INTERRUPTED = N_("Interrupted: the worker running it stopped answering (stopped, or its machine lost). "
                 "What it committed is kept (the counts above); Resume continues from there.")
INTERRUPTED_DRY = N_("Interrupted: the worker running it stopped answering (stopped, or its machine lost). "
                     "A dry run writes nothing; start it again.")


class RunActive(ValidationFailed):
    """The source has a run queued or running already (one at a time, whoever started it)."""

    def __init__(self) -> None:
        super().__init__({FORM: [_(ALREADY_RUNNING)]})


def active_run(session: DbSession, source_id: int) -> DirectorySyncRun | None:
    return session.scalar(select(DirectorySyncRun).where(
        DirectorySyncRun.source_id == source_id,
        DirectorySyncRun.status.in_((SyncRunStatus.QUEUED, SyncRunStatus.RUNNING))))


def queue_run(session: DbSession, source: DirectorySource, actor: Operator | None, *, dry_run: bool = False,
              full: bool = True, confirm_deactivation: bool = False, scheduled: bool = False,
              resumes: DirectorySyncRun | None = None,
              lease_seconds: int = DEFAULT_LEASE_SECONDS) -> DirectorySyncRun:
    """A queued run of `source`, flushed: the door commits it and then hands it to a worker
    (jobs.directory) or runs it itself (the command line). `actor` None: the command line or the
    schedule (`scheduled`). A run of this source whose worker stopped answering is marked
    interrupted first, so a dead run never blocks the next. Raises RunActive when the source
    has a run queued or running, PermissionDenied when `actor` is no maintainer."""
    if actor is not None:
        require_maintainer(actor, _("run directory imports"))
    interrupt_lapsed(session, lease_seconds=lease_seconds, source_id=source.id)
    run = DirectorySyncRun(source_id=source.id, dry_run=dry_run, status=SyncRunStatus.QUEUED,
                           started_at=utcnow(), started_by_id=actor.id if actor is not None else None,
                           incremental=not full and source.last_usn is not None, scheduled=scheduled,
                           confirm_deactivation=confirm_deactivation,
                           resumes_id=resumes.id if resumes is not None else None)
    try:
        with unit_of_work(session, savepoint=True):
            session.add(run)
    except ValidationFailed:
        # The partial unique index refused it: another door queued a run of this source first
        # (committed, or it would still be waiting for it), so it is visible now.
        if active_run(session, source.id) is not None:
            raise RunActive() from None
        raise
    return run


def resumable(session: DbSession, run: DirectorySyncRun) -> bool:
    """Whether Resume is offered: the source's latest run, an import (a dry run is simply started
    again), which ended before its end — interrupted, cancelled, or failed after writing."""
    if run.dry_run or run.status not in (SyncRunStatus.INTERRUPTED, SyncRunStatus.CANCELLED,
                                         SyncRunStatus.FAILED):
        return False
    if run.status == SyncRunStatus.FAILED and not run.processed:
        return False  # failed before writing (held, no directory): start it again instead
    latest = session.scalar(select(func.max(DirectorySyncRun.id))
                            .where(DirectorySyncRun.source_id == run.source_id))
    return latest == run.id


def resume_run(session: DbSession, run: DirectorySyncRun, actor: Operator | None, *,
               lease_seconds: int = DEFAULT_LEASE_SECONDS) -> DirectorySyncRun:
    """A queued run continuing `run` (same options; see the module docstring). Raises
    ValidationFailed when `run` cannot be resumed, RunActive when the source is busy."""
    if actor is not None:
        require_maintainer(actor, _("run directory imports"))
    if not resumable(session, run):
        raise ValidationFailed({FORM: [_(NOT_RESUMABLE)]})
    source = session.get(DirectorySource, run.source_id)
    assert source is not None  # a run is deleted with its source
    queued = queue_run(session, source, actor, dry_run=False, full=not run.incremental,
                       confirm_deactivation=run.confirm_deactivation,
                       scheduled=run.scheduled and actor is None, resumes=run, lease_seconds=lease_seconds)
    queued.incremental = run.incremental  # what the run it continues read, whatever last_usn says now
    return queued


def chain_start(session: DbSession, run: DirectorySyncRun) -> datetime:
    """When the first run of a chain of resumed runs was queued: everything of this source
    imported since then was written by the chain."""
    seen = {run.id}
    while run.resumes_id is not None and run.resumes_id not in seen:
        previous = session.get(DirectorySyncRun, run.resumes_id)
        if previous is None:
            break
        seen.add(previous.id)
        run = previous
    return run.started_at


def cancel_run(session: DbSession, run: DirectorySyncRun, actor: Operator | None, *,
               lease_seconds: int = DEFAULT_LEASE_SECONDS) -> str:
    """Cancel `run`: a queued run ends at once, and so does a running one whose worker stopped
    answering; a live one is asked to stop and does at its next beat (a batch boundary: what it
    committed stays). Returns what happened, in words."""
    if actor is not None:
        require_maintainer(actor, _("cancel directory imports"))
    if end_lapsed(session, DirectorySyncRun, run.id, running=SyncRunStatus.RUNNING,
                  lease_seconds=lease_seconds, status=SyncRunStatus.CANCELLED, finished_at=utcnow(),
                  message=_("Cancelled; its worker had stopped answering. What it committed is kept (the "
                            "counts above); Resume continues from there.")):
        return _("The run was cancelled: its worker had stopped answering.")
    ended = session.execute(
        update(DirectorySyncRun).where(DirectorySyncRun.id == run.id,
                                       DirectorySyncRun.status == SyncRunStatus.QUEUED)
        .values(status=SyncRunStatus.CANCELLED, finished_at=utcnow(),
                message=_("Cancelled before a worker started it."))
        .execution_options(synchronize_session=False))
    if ended.rowcount:  # type: ignore[attr-defined]
        return _("The run was cancelled before it started.")
    asked = session.execute(
        update(DirectorySyncRun).where(DirectorySyncRun.id == run.id,
                                       DirectorySyncRun.status == SyncRunStatus.RUNNING)
        .values(cancel_requested=True).execution_options(synchronize_session=False))
    if asked.rowcount:  # type: ignore[attr-defined]
        return _("Cancel requested: the run stops after the batch it is writing; what it wrote is kept.")
    return _("This run has ended already.")


def interrupt_lapsed(session: DbSession, *, lease_seconds: int = DEFAULT_LEASE_SECONDS,
                     now: datetime | None = None, source_id: int | None = None) -> int:
    """Mark running runs whose worker has not beaten within the lease (killed, its machine lost;
    also runs from before the leases, which never beat) interrupted, keeping the counts they
    committed; their worker loses the run (a late beat of theirs raises LeaseLost). Returns how
    many. Flushes only: the door commits (the periodic lease check, a Start)."""
    condition = lapsed(DirectorySyncRun, running=SyncRunStatus.RUNNING, lease_seconds=lease_seconds, now=now)
    if source_id is not None:
        condition = condition & (DirectorySyncRun.source_id == source_id)
    dead = session.execute(select(DirectorySyncRun.id, DirectorySyncRun.dry_run, DirectorySyncRun.worker)
                           .where(condition)).all()
    for run_id, dry_run, worker in dead:
        done = session.execute(
            update(DirectorySyncRun).where(DirectorySyncRun.id == run_id, condition)
            .values(status=SyncRunStatus.INTERRUPTED, worker=None, finished_at=now or utcnow(),
                    message=_(INTERRUPTED_DRY if dry_run else INTERRUPTED))
            .execution_options(synchronize_session=False))
        if done.rowcount:  # type: ignore[attr-defined]
            log.warning("Directory run %s interrupted: its worker %s stopped beating", run_id, worker)
    return len(dead)


def waiting_too_long(session: DbSession, *, seconds: int, now: datetime | None = None) -> list[int]:
    """Queued runs no worker took for `seconds`: their queue message may be lost (the web process
    died between its commit and the enqueue, or a worker was killed between taking the message and
    claiming the run), which would block the source — and its schedule — for ever. Their ids, to be
    put on the queue again (claiming is conditional: a second delivery does nothing); the heartbeat
    column of a queued run keeps when it was last delivered, so once per period."""
    moment = now or utcnow()
    limit = moment - timedelta(seconds=seconds)
    last_sent = func.coalesce(DirectorySyncRun.heartbeat_at, DirectorySyncRun.started_at)
    found = list(session.scalars(select(DirectorySyncRun.id).where(
        DirectorySyncRun.status == SyncRunStatus.QUEUED, last_sent < limit)))
    if found:
        session.execute(update(DirectorySyncRun).where(DirectorySyncRun.id.in_(found),
                                                       DirectorySyncRun.status == SyncRunStatus.QUEUED)
                        .values(heartbeat_at=moment).execution_options(synchronize_session=False))
    return found


def started_by(run: DirectorySyncRun) -> str:
    """Who started a run, as the page says it."""
    if run.started_by is not None:
        return str(run.started_by)
    return "schedule" if run.scheduled else "command line"
