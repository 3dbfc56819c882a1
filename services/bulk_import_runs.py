"""The life of a CSV/XLSX import (models.BulkImport), from upload to result, in the database.

upload → `uploaded` → (mapping chosen) `preview_queued` → `previewing` → `previewed` → (Run
import) `queued` → `running` → `done`; a running import may end `cancelled` (asked to stop),
`failed` (an error) or `interrupted` (its worker stopped: its lease lapsed). `failed` and
`interrupted` keep the file and are resumed (`queued` again) from the first row not committed.

Every step is one conditional UPDATE (`… WHERE status = <the step before>`): of two clicks, two
tabs or two workers doing the same step, one does it and the others learn that it is done
(False), so one import is queued and run once. A worker holds its run under a lease
(services.run_leases): it claims the queued run, and with each committed batch beats the lease
and stores `done` = rows committed and that batch's rows, in the batch's own unit of work.

Only the owner (the operator who uploaded the file) sees or changes an import: `own_import`
answers NotFound for anybody else, as for a token that does not exist. Flask-free; the doors
(admin_views.bulk_import, jobs.bulk_import) own the units of work.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import PurePosixPath

from sqlalchemy import delete, select, update

from i18n import _, _l
from models import Operator
from models.base import utcnow
from models.bulk_import import BulkImport, BulkImportBatch, BulkImportStatus
from services.bulk_import import ImportReport
from services.bulk_import_files import ImportTable
from services.errors import NotFound
from services.run_leases import DEFAULT_LEASE_SECONDS, beat, claim, end_lapsed, lapsed
from services.transactions import DbSession, flush
from services.upload_limits import MAX_BYTES, ImportFileError, count

Status = BulkImportStatus
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
KEEP = timedelta(hours=24)  # an upload untouched this long is swept (jobs.bulk_import)
GROUPS = ("created", "updated", "unchanged", "skipped", "duplicates", "rejected")
SAMPLE_LENGTH = 80  # characters of a first value shown on the mapping page
SAMPLE_ROWS = 3  # first values shown per column
PREVIEWABLE = (Status.UPLOADED, Status.PREVIEWED)
RESUMABLE = (Status.INTERRUPTED, Status.FAILED)
CANCELLABLE = (Status.QUEUED, Status.RUNNING, *RESUMABLE)
WAITING = (Status.PREVIEW_QUEUED, Status.QUEUED)  # on the queue, no worker has it yet
WORKING = (Status.PREVIEW_QUEUED, Status.PREVIEWING, Status.QUEUED, Status.RUNNING)  # a job will change it
ENDED = (Status.DONE, Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)  # nothing runs it any more

FILE_GONE = _l("The uploaded file is no longer available; upload it again.")
PREVIEW_FAILED = _l("The preview stopped on an unexpected error; nothing was imported. Press Preview to try "
                    "again; if it stops again, the server log says why.")
PREVIEW_INTERRUPTED = _l("The preview stopped before it ended: its background worker stopped. Nothing was "
                         "imported. Press Preview to run it again.")
OWNER_INACTIVE = _l("The import did not run: the operator who started it is no longer active.")


def _rows(n: int) -> str:
    return _("%(count)s row", count=count(n)) if n == 1 else _("%(count)s rows", count=count(n))


def interrupted_message(done: int, total: int) -> str:
    return _("The import was interrupted after %(done)s of %(total)s: its background worker stopped. "
             "%(imported)s Resume continues from row %(next)s.", done=count(done), total=_rows(total),
             imported=_imported(done), next=count(done + 1))


def failed_message(done: int, total: int) -> str:
    return _("The import stopped on an unexpected error after %(done)s of %(total)s. %(imported)s Resume "
             "continues from row %(next)s; if it stops again, the server log says why.", done=count(done),
             total=_rows(total), imported=_imported(done), next=count(done + 1))


def cancelled_message(done: int, total: int) -> str:
    if not done:
        return _("The import was cancelled before any row was imported.")
    return _("The import was cancelled after %(done)s of %(total)s. %(imported)s The rest were not.",
             done=count(done), total=_rows(total), imported=_imported(done))


def _imported(done: int) -> str:
    if not done:
        return _("No row was imported.")
    if done == 1:
        return _("That row is imported.")
    return _("Those %(count)s rows are imported.", count=count(done))


# -- upload and access --------------------------------------------------------------------------

def _shortened(value: str) -> str:
    return value if len(value) <= SAMPLE_LENGTH else value[:SAMPLE_LENGTH - 1] + "…"


def samples_of(table: ImportTable) -> dict[str, list[str]]:
    """The first values of each column, as the mapping page shows them."""
    return {h: [_shortened(r.values.get(h, "")) for r in table.rows[:SAMPLE_ROWS]] for h in table.headers}


def new_upload(session: DbSession, owner: Operator, *, file_name: str, encoding: str, data: bytes,
               table: ImportTable) -> BulkImport:
    """Keep an uploaded file that `table` was read from, for `owner`, under a new random token.
    Its columns and first values are kept apart, so the mapping page never reads the file
    again. Raises ImportFileError for a file over the upload limit."""
    if len(data) > MAX_BYTES:
        raise ImportFileError(_("The file is larger than %(limit)s MB; split it into smaller files.",
                                limit=MAX_BYTES // (1024 * 1024)))
    name = PurePosixPath((file_name or "").replace("\\", "/")).name[:120] or "import"
    run = BulkImport(token=secrets.token_urlsafe(24), owner_id=owner.id, file_name=name, encoding=encoding,
                     read_as=table.encoding, data=data, headers=table.headers, samples=samples_of(table),
                     total=len(table.rows), status=Status.UPLOADED, done=0)
    session.add(run)
    flush(session)
    return run


def own_import(session: DbSession, actor: Operator | None, token: str) -> BulkImport:
    """The import of `token` if `actor` uploaded it; NotFound otherwise (another operator's
    upload is no different from one that does not exist)."""
    if actor is None or not TOKEN.match(token or ""):
        raise NotFound(_("No such import."))
    run = session.scalar(select(BulkImport).where(BulkImport.token == token))
    if run is None or run.owner_id != actor.id:
        raise NotFound(_("No such import."))
    return run


def _step(session: DbSession, run_id: int, when: Iterable[Status], **values) -> bool:
    """Move the run on if it is still in one of the statuses `when`; False if it is not any more."""
    statement = update(BulkImport).where(BulkImport.id == run_id, BulkImport.status.in_(list(when)))
    result = session.execute(statement.values(**values).execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined]


def _mine(session: DbSession, run_id: int, held_in: Status, holder: str, **values) -> bool:
    """Change the run only while `holder` holds it in `held_in` (the lease check may have taken it)."""
    result = session.execute(update(BulkImport).where(BulkImport.id == run_id, BulkImport.status == held_in,
                                                      BulkImport.worker == holder)
                             .values(**values).execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined]


# -- preview ------------------------------------------------------------------------------------

def queue_preview(session: DbSession, run: BulkImport, *, mapping: dict[str, str], rules: list[str],
                  on_match: str, batch_size: int) -> bool:
    """Keep the mapping page's choices and put the preview on the queue (the door enqueues the
    job after commit). False when the run is past the mapping (a second click: already queued).
    `batch_size`: rows per unit of work of the preview and the import."""
    return _step(session, run.id, PREVIEWABLE, status=Status.PREVIEW_QUEUED, mapping=mapping, rules=rules,
                 on_match=on_match, done=0, message=None, preview_report=None, worker=None,
                 batch_size=max(1, batch_size))


def start_preview(session: DbSession, run_id: int, worker: str) -> bool:
    """The worker takes the queued preview; False if it is not queued (taken already)."""
    return claim(session, BulkImport, run_id, queued=Status.PREVIEW_QUEUED, running=Status.PREVIEWING,
                 worker=worker)


def preview_progress(session: DbSession, run_id: int, done: int, worker: str) -> None:
    """Rows the dry run has read so far; renews the lease (LeaseLost when it lapsed)."""
    beat(session, BulkImport, run_id, worker=worker)
    _mine(session, run_id, Status.PREVIEWING, worker, done=done)


def finish_preview(session: DbSession, run_id: int, report: ImportReport, worker: str) -> bool:
    return _mine(session, run_id, Status.PREVIEWING, worker, status=Status.PREVIEWED,
                 preview_report=report.as_dict(), done=report.total, worker=None)


def stop_preview(session: DbSession, run_id: int, message: str, worker: str) -> bool:
    """The preview could not be made: back to the mapping page, which says why."""
    return _mine(session, run_id, Status.PREVIEWING, worker, status=Status.UPLOADED, message=str(message),
                 done=0, worker=None)


# -- import -------------------------------------------------------------------------------------

def queue_import(session: DbSession, run: BulkImport) -> bool:
    """Run import: queue the previewed run (the door enqueues the job after commit). False when
    it is queued already (a double click, a second tab) or was never previewed. The import's
    report will replace the preview's: one report is kept."""
    return _step(session, run.id, (Status.PREVIEWED,), status=Status.QUEUED, done=0, counts=None,
                 preview_report=None, message=None, cancel_requested=False, worker=None)


def resume_import(session: DbSession, run: BulkImport) -> bool:
    """Queue an interrupted or failed run again; it continues from row `done` (the first not
    committed). False when it is not resumable (resumed already, or it ended otherwise)."""
    return _step(session, run.id, RESUMABLE, status=Status.QUEUED, message=None, cancel_requested=False,
                 worker=None, finished_at=None)


def cancel_import(session: DbSession, run: BulkImport, *,
                  lease_seconds: int = DEFAULT_LEASE_SECONDS) -> bool:
    """Cancel: a run no worker holds (queued, interrupted, failed — or running with a lapsed
    lease: its worker is gone and would never see the request) ends now, with what it committed;
    a running one is asked to stop at its next batch (its worker ends it). False when there is
    nothing to cancel."""
    if _step(session, run.id, (Status.QUEUED, *RESUMABLE), status=Status.CANCELLED, worker=None):
        _close(session, run.id, cancelled_message(run.done, run.total))
        return True
    if end_lapsed(session, BulkImport, run.id, running=Status.RUNNING, lease_seconds=lease_seconds,
                  status=Status.CANCELLED):
        _close(session, run.id, cancelled_message(run.done, run.total))
        return True
    return _step(session, run.id, (Status.RUNNING,), cancel_requested=True)


def start_import(session: DbSession, run_id: int, worker: str) -> bool:
    """The worker takes the queued run; False if it is not queued (cancelled, or taken already)."""
    if not claim(session, BulkImport, run_id, queued=Status.QUEUED, running=Status.RUNNING, worker=worker):
        return False
    session.execute(update(BulkImport).where(BulkImport.id == run_id, BulkImport.started_at.is_(None))
                    .values(started_at=utcnow()).execution_options(synchronize_session=False))
    return True


def record_batch(session: DbSession, run_id: int, *, done: int, counts: dict[str, int],
                 results: dict[str, list[dict]], worker: str) -> None:
    """Inside a batch's unit of work: renew the lease (LeaseLost, CancelRequested — the batch is
    then rolled back), store `done` = rows committed with this batch and the batch's rows."""
    beat(session, BulkImport, run_id, worker=worker)
    _mine(session, run_id, Status.RUNNING, worker, done=done, counts=counts)
    session.add(BulkImportBatch(bulk_import_id=run_id, done=done, results=results))
    flush(session)


def end_import(session: DbSession, run_id: int, status: Status, worker: str) -> bool:
    """The worker ends its run: done, cancelled (it was asked to stop) or failed. The message
    says how many rows are imported; a done or cancelled run gets its whole report and lets
    go of the file, a failed one keeps both to be resumed."""
    run = session.get(BulkImport, run_id, populate_existing=True)
    if run is None:
        return False
    message = {Status.DONE: None, Status.CANCELLED: cancelled_message(run.done, run.total),
               Status.FAILED: failed_message(run.done, run.total)}[status]
    if not _mine(session, run_id, Status.RUNNING, worker, status=status, message=message, worker=None,
                 finished_at=utcnow()):
        return False
    if status != Status.FAILED:
        _close(session, run_id, message)
    return True


def fail_import(session: DbSession, run_id: int, message: str, worker: str) -> bool:
    """The run cannot go on for a reason the user can read (e.g. the file is gone)."""
    return _mine(session, run_id, Status.RUNNING, worker, status=Status.FAILED, message=str(message),
                 worker=None, finished_at=utcnow())


def _close(session: DbSession, run_id: int, message: str | None) -> None:
    """A run that will not go on: its committed batches become its report; the file goes."""
    run = session.get(BulkImport, run_id, populate_existing=True)
    assert run is not None
    report = committed_report(session, run)
    session.execute(update(BulkImport).where(BulkImport.id == run_id)
                    .values(result_report=report, data=None, message=message,
                            finished_at=run.finished_at or utcnow())
                    .execution_options(synchronize_session=False))
    session.execute(delete(BulkImportBatch).where(BulkImportBatch.bulk_import_id == run_id))


def committed_report(session: DbSession, run: BulkImport) -> dict:
    """The report of the rows committed so far, over all parts of a resumed run, in file order."""
    report: dict = {"dry_run": False, "total": run.total, **{name: [] for name in GROUPS}}
    for results in session.scalars(select(BulkImportBatch.results)
                                   .where(BulkImportBatch.bulk_import_id == run.id)
                                   .order_by(BulkImportBatch.done, BulkImportBatch.id)):
        for name in GROUPS:
            report[name].extend(results.get(name, []))
    report["counts"] = {name: len(report[name]) for name in GROUPS}
    return report


def report_of(session: DbSession, run: BulkImport) -> dict | None:
    """The import's report: the whole one once it ended, else what its committed batches say
    (an interrupted or failed run, or one running); None before any batch committed."""
    if run.result_report is not None:
        return run.result_report
    if run.status in (Status.RUNNING, Status.QUEUED, *RESUMABLE) and run.done:
        return committed_report(session, run)
    return None


class BatchRecorder:
    """`after_batch` of services.bulk_import.run_import for a worker's run: the batch's rows
    (those added to the report since the last batch) and the counts of the whole run so far,
    the parts of earlier runs included."""

    def __init__(self, session: DbSession, run: BulkImport, worker: str):
        self.session, self.run_id, self.worker = session, run.id, worker
        self.before = dict(run.counts or {})
        self.seen = dict.fromkeys(GROUPS, 0)

    def __call__(self, done: int, report: ImportReport) -> None:
        results = {}
        for name in GROUPS:
            rows = getattr(report, name)
            results[name] = [asdict(row) for row in rows[self.seen[name]:]]
            self.seen[name] = len(rows)
        counts = {name: self.before.get(name, 0) + len(getattr(report, name)) for name in GROUPS}
        record_batch(self.session, self.run_id, done=done, counts=counts, results=results, worker=self.worker)


# -- the periodic checks --------------------------------------------------------------------------

def mark_interrupted(session: DbSession, *, lease_seconds: int, now: datetime | None = None) -> list[int]:
    """Runs whose worker stopped beating (killed, its machine lost): an import becomes
    `interrupted` with a message saying what is imported and where Resume goes on; a preview
    goes back to the mapping page with a message. The ids of the imports interrupted."""
    now = now or utcnow()
    dead = lapsed(BulkImport, running=Status.RUNNING, lease_seconds=lease_seconds, now=now)
    interrupted = []
    for run_id, done, total, cancelling in session.execute(
            select(BulkImport.id, BulkImport.done, BulkImport.total, BulkImport.cancel_requested)
            .where(dead)).all():
        # Somebody asked it to stop: it ends cancelled (not resumable), as its worker would have.
        status = Status.CANCELLED if cancelling else Status.INTERRUPTED
        result = session.execute(update(BulkImport).where(BulkImport.id == run_id, dead)
                                 .values(status=status, worker=None,
                                         message=interrupted_message(done, total))
                                 .execution_options(synchronize_session=False))
        if result.rowcount == 1 and cancelling:  # type: ignore[attr-defined]
            _close(session, run_id, cancelled_message(done, total))
        elif result.rowcount == 1:  # type: ignore[attr-defined]
            interrupted.append(run_id)
    stalled = lapsed(BulkImport, running=Status.PREVIEWING, lease_seconds=lease_seconds, now=now)
    session.execute(update(BulkImport).where(stalled)
                    .values(status=Status.UPLOADED, worker=None, done=0, message=str(PREVIEW_INTERRUPTED))
                    .execution_options(synchronize_session=False))
    return interrupted


def waiting_too_long(session: DbSession, *, seconds: int,
                     now: datetime | None = None) -> list[tuple[int, str]]:
    """Queued runs no worker took for `seconds`: their queue message may be lost (a worker
    killed between taking it and claiming the run). (id, status) to be put on the queue again
    — taking a run is conditional, so a second delivery does nothing; touched, so once per
    period."""
    limit = (now or utcnow()) - timedelta(seconds=seconds)
    found = [(run_id, status.value) for run_id, status in session.execute(
        select(BulkImport.id, BulkImport.status).where(BulkImport.status.in_(WAITING),
                                                       BulkImport.updated_at < limit)).all()]
    if found:
        session.execute(update(BulkImport).where(BulkImport.id.in_([i for i, _ in found]),
                                                 BulkImport.status.in_(WAITING))
                        .values(updated_at=utcnow()).execution_options(synchronize_session=False))
    return found


def sweep(session: DbSession, *, now: datetime | None = None) -> int:
    """Forget uploads untouched for 24 hours (their file, state and report), except those a
    job is about to run or running. The number forgotten."""
    limit = (now or utcnow()) - KEEP
    old = select(BulkImport.id).where(BulkImport.updated_at < limit, BulkImport.status.not_in(WORKING))
    ids = list(session.scalars(old))
    if not ids:
        return 0
    session.execute(delete(BulkImportBatch).where(BulkImportBatch.bulk_import_id.in_(ids)))
    session.execute(delete(BulkImport).where(BulkImport.id.in_(ids), BulkImport.status.not_in(WORKING))
                    .execution_options(synchronize_session=False))
    return len(ids)
