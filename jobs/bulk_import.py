"""The jobs of the CSV/XLSX import: its preview (a dry run), the import, and the periodic checks.

Each job is a door with its own database session: it takes its run by a conditional UPDATE
(a second delivery of the same message, or a cancelled run, finds nothing to do), reads the
file from the run's row, and writes the run's state through services.bulk_import_runs. The
preview's writes go to `dry_run_session` and are rolled back; its progress and report are
written on the real database. The import commits batch by batch, and in each batch's unit of
work beats its lease and stores the rows committed: a killed worker leaves a run whose `done`
is exactly what the database holds, found by `check_bulk_import_leases` and resumed from there.
"""

from __future__ import annotations

import logging
import time

from flask import current_app
from huey import crontab
from sqlalchemy import select

from extensions import db
from jobs import enqueue, job, periodic
from models import Operator
from models.bulk_import import BulkImport, BulkImportStatus
from services import bulk_import_runs as runs
from services.bulk_import import run_import
from services.bulk_import_files import ImportTable, read_table
from services.customers import SaveOptions
from services.dry_runs import dry_run_session
from services.errors import DomainError
from services.run_leases import CancelRequested, LeaseLost, worker_name
from services.transactions import DbSession, unit_of_work
from services.upload_limits import ImportFileError

log = logging.getLogger(__name__)
PREVIEW, IMPORT = "bulk_import.preview", "bulk_import.run"
PROGRESS_SECONDS = 1.0  # how often a preview writes how far it is (and renews its lease)


def _options() -> SaveOptions:
    return SaveOptions(phone_region=current_app.config["PHONE_DEFAULT_REGION"])


def _table(session: DbSession, run_id: int) -> ImportTable:
    """The run's file, read again (ImportFileError when it cannot be)."""
    data = session.scalar(select(BulkImport.data).where(BulkImport.id == run_id))
    if not data:
        raise ImportFileError(runs.FILE_GONE)
    return read_table(data, session.get(BulkImport, run_id).encoding)  # type: ignore[union-attr]


def _separate_writer(dry, session: DbSession) -> bool:
    """Can the run's progress be written while the dry run holds its transaction? Not when both
    are one SQLite database: its only write lock is the dry run's until it ends."""
    dry_bind, real_bind = dry.get_bind(), session.get_bind()
    return dry_bind.dialect.name != "sqlite" or str(dry_bind.engine.url) != str(real_bind.engine.url)


@job(PREVIEW)
def preview_bulk_import(run_id: int) -> None:
    """The preview of a queued run: the import as a dry run, its report kept on the run."""
    session, me = db.session, worker_name()
    with unit_of_work(session):
        if not runs.start_preview(session, run_id, me):
            return
        run = session.get(BulkImport, run_id)
        assert run is not None
        owner_id, mapping, rules, on_match, batch_size = run.owner_id, run.mapping, run.rules, \
            run.on_match, run.batch_size
    try:
        table = _table(session, run_id)
    except ImportFileError:
        with unit_of_work(session):
            runs.stop_preview(session, run_id, runs.FILE_GONE, me)
        return
    session.commit()  # nothing of the real database is held while the dry run works

    try:
        with dry_run_session(session) as dry:
            last = [time.monotonic()]
            writes = _separate_writer(dry, session)

            def progress(done: int, total: int) -> None:
                if writes and time.monotonic() - last[0] >= PROGRESS_SECONDS:
                    last[0] = time.monotonic()
                    with unit_of_work(session):
                        runs.preview_progress(session, run_id, done, me)

            report = run_import(dry, dry.get(Operator, owner_id), table.rows, mapping or {}, rules or [],
                                on_match or "", _options(), dry_run=True, batch_size=batch_size,
                                progress=progress)
    except LeaseLost:  # the lease check gave the preview up; the page says so already
        return
    except DomainError as exc:  # e.g. no room for the dry run's copy of the database
        with unit_of_work(session):
            runs.stop_preview(session, run_id, str(exc), me)
        return
    except Exception:
        log.exception("The preview of bulk import %s stopped on an error", run_id)
        with unit_of_work(session):
            runs.stop_preview(session, run_id, runs.PREVIEW_FAILED, me)
        return
    with unit_of_work(session):
        runs.finish_preview(session, run_id, report, me)


@job(IMPORT)
def run_bulk_import(run_id: int) -> None:
    """The import of a queued run, from its first row not committed to the end, or until it is
    cancelled (its next batch), or its lease is taken from it."""
    session, me = db.session, worker_name()
    with unit_of_work(session):
        if not runs.start_import(session, run_id, me):
            return
    try:
        table = _table(session, run_id)
        run = session.get(BulkImport, run_id)
        assert run is not None
        owner = session.get(Operator, run.owner_id)
        if owner is None or not owner.is_active:
            with unit_of_work(session):
                runs.fail_import(session, run_id, runs.OWNER_INACTIVE, me)
            return
        recorder = runs.BatchRecorder(session, run, me)
        mapping, rules, on_match, start, batch_size = run.mapping, run.rules, run.on_match, run.done, \
            run.batch_size
        session.commit()
        run_import(session, owner, table.rows, mapping or {}, rules or [], on_match or "", _options(),
                   dry_run=False, batch_size=batch_size, start=start, after_batch=recorder)
    except ImportFileError as exc:
        with unit_of_work(session):
            runs.fail_import(session, run_id, str(exc), me)
        return
    except CancelRequested:
        with unit_of_work(session):
            runs.end_import(session, run_id, BulkImportStatus.CANCELLED, me)
        return
    except LeaseLost:  # the lease check took the run (shown as interrupted): write nothing more
        log.warning("bulk import %s: the lease was lost; stopping", run_id)
        return
    except Exception:
        log.exception("bulk import %s stopped on an error", run_id)
        session.rollback()
        with unit_of_work(session):
            runs.end_import(session, run_id, BulkImportStatus.FAILED, me)
        return
    with unit_of_work(session):
        runs.end_import(session, run_id, BulkImportStatus.DONE, me)


@periodic("bulk_import.check_leases")
def check_bulk_import_leases() -> None:
    """Every minute: runs whose worker stopped are shown as interrupted (resumable); queued runs
    no worker took for a while are delivered again (their message may have gone with a worker)."""
    session = db.session
    lease = int(current_app.config["JOB_LEASE_SECONDS"])
    with unit_of_work(session):
        interrupted = runs.mark_interrupted(session, lease_seconds=lease)
        again = runs.waiting_too_long(session, seconds=max(5 * lease, 300))
    for run_id in interrupted:
        log.warning("bulk import %s: its worker stopped; marked interrupted", run_id)
    for run_id, status in again:
        enqueue(PREVIEW if status == BulkImportStatus.PREVIEW_QUEUED else IMPORT, run_id)


@periodic("bulk_import.sweep", crontab(minute="*/15"))
def sweep_bulk_imports() -> None:
    """Forget uploads untouched for a day (the old files of instance/bulk_import/ are not read)."""
    with unit_of_work(db.session):
        runs.sweep(db.session)
