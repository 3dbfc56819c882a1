"""Import customers from CSV or XLSX: upload → mapping and match rules → preview → import → result.

Any signed-in active operator may import (the domain layer limits updates to the customers
they may edit). The uploaded file and the state of its import are a row of the database
(models.BulkImport, services.bulk_import_runs) under a random token, open only to the operator
who uploaded it, so every web process shows it and any worker runs it; the file is let go
once it has been imported, and uploads untouched for a day are swept by a periodic job. What
a file may cost to read is bounded (services.upload_limits); the mapping chosen for a set of
headers is remembered in the database (services.import_mappings).

The preview and the import are background jobs (jobs.bulk_import), never work of the request:
the mapping page queues the preview and the preview page follows it until it is ready; Run
import queues the import and the result page follows its progress (static/bulk_import.js), with
Cancel while it waits or runs and Resume when its worker stopped or it failed. Every step is a
POST and a conditional change of the run's status, so a double click or a second tab queues
one preview, one import, one resume. A GET never writes.
"""

from __future__ import annotations

import re

from flask import Response, abort, current_app, jsonify, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user

from admin_views.base import actor, deny_or_login
from extensions import db
from i18n import _, _l
from jobs import enqueue_after_commit
from jobs.bulk_import import IMPORT, PREVIEW
from models.bulk_import import BulkImport, BulkImportStatus
from services import bulk_import_runs as runs
from services.bulk_import import MatchRule, OnMatch
from services.bulk_import_files import (
    ENCODINGS,
    MAX_BYTES,
    MAX_COLUMNS,
    MAX_ROWS,
    TARGET_FIELDS,
    ImportFileError,
    check_mapping,
    mapped_headers,
    read_table,
    rejected_csv,
    suggest_mapping,
)
from services.import_mappings import remember_mapping, remembered_mapping
from services.transactions import unit_of_work

Status = BulkImportStatus
SHOWN_ROWS = 200  # rows listed per group on a page; the counts cover all
DEFAULT_BATCH_SIZE = 200  # rows per unit of work (config BULK_IMPORT_BATCH_SIZE)
# What the pages and the status answer say of each status, in plain words.
STATUS_WORDS = {
    Status.UPLOADED: _l("Uploaded: choose the columns and match rules."),
    Status.PREVIEW_QUEUED: _l("The preview waits for a background worker."),
    Status.PREVIEWING: _l("Preparing the preview…"),
    Status.PREVIEWED: _l("The preview is ready."),
    Status.QUEUED: _l("Waiting: the import starts as soon as a background worker is free."),
    Status.RUNNING: _l("Importing…"),
    Status.DONE: _l("Import finished."),
    Status.FAILED: _l("The import stopped on an error."),
    Status.CANCELLED: _l("The import was cancelled."),
    Status.INTERRUPTED: _l("The import was interrupted."),
}


def _rules_from(form) -> list[str]:
    chosen = []
    for rule in MatchRule:
        if rule.value in form.getlist("rule"):
            try:
                order = int(form.get(f"order-{rule.value}", "9"))
            except ValueError:
                order = 9
            chosen.append((order, list(MatchRule).index(rule), rule.value))
    return [value for *_, value in sorted(chosen)]


def _batch_size() -> int:
    return int(current_app.config.get("BULK_IMPORT_BATCH_SIZE") or DEFAULT_BATCH_SIZE)


class BulkImportView(BaseView):
    """Import customers and their contacts from a CSV or XLSX file, with a preview."""

    def is_accessible(self) -> bool:
        return current_user.is_authenticated and current_user.is_active

    def inaccessible_callback(self, name, **kwargs):
        return deny_or_login()

    def _run(self, token: str) -> BulkImport:
        """The operator's own import, or the 404 page (another operator's token is no different
        from none)."""
        return runs.own_import(db.session, actor(), token)

    def _page(self, template: str, status: int = 200, **kwargs):
        limits = {"megabytes": MAX_BYTES // 2**20, "rows": MAX_ROWS, "columns": MAX_COLUMNS}
        return self.render(template, encodings=ENCODINGS, targets=TARGET_FIELDS, rules=list(MatchRule),
                           on_match_choices=list(OnMatch), shown=SHOWN_ROWS, limits=limits,
                           words=STATUS_WORDS, statuses=Status, **kwargs), status

    def _next_page(self, run: BulkImport):
        """Where a run in its status is shown."""
        if run.status in runs.PREVIEWABLE:
            return redirect(url_for(".mapping_view", token=run.token))
        if run.status in (Status.PREVIEW_QUEUED, Status.PREVIEWING):
            return redirect(url_for(".preview_view", token=run.token))
        return redirect(url_for(".result_view", token=run.token))

    @expose("/", methods=("GET", "POST"))
    def index(self):
        if request.method == "GET":
            return self._page("admin/bulk_import_upload.html", encoding="auto")
        encoding = request.form.get("encoding", "auto")
        file = request.files.get("file")
        if file is None or not file.filename:
            return self._page("admin/bulk_import_upload.html", 400, encoding=encoding,
                              error=_("Choose a file to upload (CSV or XLSX)."))
        data = file.stream.read(MAX_BYTES + 1)
        try:
            table = read_table(data, encoding)
        except ImportFileError as exc:
            return self._page("admin/bulk_import_upload.html", 400, encoding=encoding, error=str(exc))
        if not table.rows:
            return self._page("admin/bulk_import_upload.html", 400, encoding=encoding,
                              error=_("The file has a header row but no data rows."))
        with unit_of_work(db.session):
            run = runs.new_upload(db.session, actor(), file_name=file.filename, encoding=encoding, data=data,
                                  table=table)
            token = run.token
        return redirect(url_for(".mapping_view", token=token))

    @expose("/mapping/<token>", methods=("GET", "POST"))
    def mapping_view(self, token: str):
        run = self._run(token)
        if run.status not in runs.PREVIEWABLE:
            return self._next_page(run)
        headers = mapped_headers(run.headers)
        mapping = run.mapping or suggest_mapping(headers, remembered_mapping(db.session, headers))
        rules = run.rules if run.rules is not None else [MatchRule.REGISTRATION_NUMBER.value,
                                                         MatchRule.EMAIL.value]
        on_match = run.on_match or OnMatch.UPDATE_EMPTY.value
        error = run.message if run.status == Status.UPLOADED else None  # why the last preview stopped
        if request.method == "POST":
            mapping = {h: request.form.get(f"map-{i}", "") for i, h in enumerate(headers)}
            rules = _rules_from(request.form)
            on_match = request.form.get("on_match", "")
            try:
                if on_match not in {o.value for o in OnMatch}:
                    raise ImportFileError(_("Choose what to do when a row matches an existing customer."))
                clean = check_mapping(mapping)
            except ImportFileError as exc:
                error = str(exc)
            else:
                with unit_of_work(db.session):
                    remember_mapping(db.session, headers, clean)
                    if runs.queue_preview(db.session, run, mapping=clean, rules=rules, on_match=on_match,
                                          batch_size=_batch_size()):
                        enqueue_after_commit(db.session, PREVIEW, run.id)
                return redirect(url_for(".preview_view", token=token))
        samples = {h: run.samples.get(h, []) for h in headers}
        refused = error is not None and request.method == "POST"
        return self._page("admin/bulk_import_mapping.html", 400 if refused else 200, token=token, run=run,
                          headers=headers, mapping=mapping, samples=samples, chosen_rules=rules,
                          on_match=on_match, error=error)

    @expose("/preview/<token>")
    def preview_view(self, token: str):
        run = self._run(token)
        if run.status == Status.PREVIEWED:
            return self._page("admin/bulk_import_preview.html", token=token, run=run,
                              report=run.preview_report)
        if run.status in (Status.PREVIEW_QUEUED, Status.PREVIEWING):
            return self._page("admin/bulk_import_preview.html", token=token, run=run, report=None)
        return self._next_page(run)

    @expose("/run/<token>", methods=("POST",))
    def run_view(self, token: str):
        """Run import: one import is queued however many times it is pressed."""
        run = self._run(token)
        with unit_of_work(db.session):
            if runs.queue_import(db.session, run):
                enqueue_after_commit(db.session, IMPORT, run.id)
        return redirect(url_for(".result_view", token=token))

    @expose("/resume/<token>", methods=("POST",))
    def resume_view(self, token: str):
        """Resume an interrupted or failed import from its first row not imported (once)."""
        run = self._run(token)
        with unit_of_work(db.session):
            if runs.resume_import(db.session, run):
                enqueue_after_commit(db.session, IMPORT, run.id)
        return redirect(url_for(".result_view", token=token))

    @expose("/cancel/<token>", methods=("POST",))
    def cancel_view(self, token: str):
        """Cancel: at once when no worker runs it, else at the running import's next batch."""
        run = self._run(token)
        with unit_of_work(db.session):
            runs.cancel_import(db.session, run, lease_seconds=int(current_app.config["JOB_LEASE_SECONDS"]))
        return redirect(url_for(".result_view", token=token))

    @expose("/result/<token>")
    def result_view(self, token: str):
        run = self._run(token)
        if run.status in (*runs.PREVIEWABLE, Status.PREVIEW_QUEUED, Status.PREVIEWING):
            return self._next_page(run)
        report = runs.report_of(db.session, run) if run.status in runs.ENDED else None
        return self._page("admin/bulk_import_result.html", token=token, run=run, report=report,
                          resumable=run.status in runs.RESUMABLE,
                          cancellable=run.status in runs.CANCELLABLE
                          and not (run.cancel_requested and run.status == Status.RUNNING))

    @expose("/status/<token>.json")
    def status_view(self, token: str):
        """What the pages poll: the status (and in words), rows done of all, the counts so far;
        `done` is true once nothing runs it any more."""
        run = self._run(token)
        return jsonify(status=run.status.value, words=str(STATUS_WORDS[run.status]),
                       done=run.status in runs.ENDED,
                       progress={"done": run.done, "total": run.total},
                       counts=run.counts or dict.fromkeys(runs.GROUPS, 0), message=run.message or "",
                       cancelling=bool(run.cancel_requested and run.status == Status.RUNNING))

    @expose("/rejected/<token>.csv")
    def rejected_view(self, token: str):
        run = self._run(token)
        report = runs.report_of(db.session, run) or run.preview_report
        if not report:
            abort(404)
        headers = run.headers  # every column of the file, the unmapped too
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", run.file_name.rsplit(".", 1)[0]).strip("-") or "import"
        return Response(rejected_csv(headers, report["rejected"]), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{stem}-rejected.csv"'})
