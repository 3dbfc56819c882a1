"""Directory imports on the queue: the import of a queued run, the lease check that finds runs
whose worker died, and the schedules. The rules live in services.directory (runs, pipeline,
schedules); these are the doors a worker opens to them."""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import or_, select

from extensions import db
from jobs.queue import enqueue_after_commit
from jobs.registry import job, periodic
from models import DirectorySource
from services.customers import SaveOptions
from services.directory.pipeline import run_queued
from services.directory.runs import RunActive, interrupt_lapsed, waiting_too_long
from services.directory.schedules import queue_due_run
from services.errors import DomainError
from services.transactions import unit_of_work

log = logging.getLogger(__name__)
IMPORT = "directory.import"


def _lease() -> int:
    return int(current_app.config["JOB_LEASE_SECONDS"])


@job(IMPORT)
def import_directory_run(run_id: int) -> None:
    """Claim the queued run and do it (nothing when it was cancelled or taken meanwhile)."""
    run_queued(db.session, run_id, current_app.extensions["secret_box"],
               SaveOptions(phone_region=current_app.config["PHONE_DEFAULT_REGION"]), lease_seconds=_lease())


@periodic("directory.lease_check")
def interrupt_dead_runs() -> None:
    """Each minute: runs whose worker stopped beating become interrupted (resumable); queued runs
    no worker took for a while are delivered again (their message may have gone with a worker)."""
    with unit_of_work(db.session):
        interrupt_lapsed(db.session, lease_seconds=_lease())
        for run_id in waiting_too_long(db.session, seconds=max(5 * _lease(), 300)):
            log.warning("directory run %s: no worker took it; queued again", run_id)
            enqueue_after_commit(db.session, IMPORT, run_id)


@periodic("directory.schedules")
def queue_scheduled_runs(now=None) -> list[int]:
    """Each minute: queue the scheduled runs that are due, one unit of work per source (a busy
    source is skipped, logged, and stays due). Returns the ids of the runs queued."""
    queued = []
    ids = db.session.scalars(select(DirectorySource.id).where(
        DirectorySource.is_active.is_(True),
        or_(DirectorySource.full_sync_at.is_not(None), DirectorySource.changes_every_minutes.is_not(None))
    ).order_by(DirectorySource.id)).all()
    db.session.rollback()  # each source read afresh in its own unit of work
    for source_id in ids:
        try:
            with unit_of_work(db.session):
                source = db.session.get(DirectorySource, source_id)
                run = queue_due_run(db.session, source, now=now, lease_seconds=_lease()) if source else None
                if run is not None:
                    enqueue_after_commit(db.session, IMPORT, run.id)
        except RunActive:
            log.info("Scheduled run of directory source %s skipped: a run of it is queued or running",
                     source_id)
            continue
        except DomainError:
            log.exception("Scheduled run of directory source %s refused", source_id)
            continue
        if run is not None:
            queued.append(run.id)
    return queued
