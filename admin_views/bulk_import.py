"""Import customers from CSV or XLSX: upload → mapping and match rules → preview → import → result.

Any signed-in active operator may import (the domain layer limits updates to the customers
they may edit). The uploaded file and the state of its import live in the instance folder
under a random token (never the uploaded name), readable only by the operator who uploaded
it, and are swept after 24 hours; the file itself is deleted once it has been imported. What a
file may cost to read is bounded (services.upload_limits); the mapping chosen for a set of
headers is remembered in the database (services.import_mappings). The
preview runs in the request (a dry run: nothing written); the import runs in a thread beside
it, and the result page polls its progress (static/bulk_import.js).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from pathlib import Path

from flask import Response, abort, current_app, jsonify, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user

from admin_views.base import actor, deny_or_login, save_options
from extensions import db
from models import Operator
from services.bulk_import import MatchRule, OnMatch, run_import
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

log = logging.getLogger(__name__)
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
KEEP_SECONDS = 24 * 3600
SHOWN_ROWS = 200  # rows listed per group on a page; the counts cover all
SAMPLE_LENGTH = 80  # characters of a first value shown on the mapping page
SAMPLE_ROWS = 3  # first values shown per column


def import_dir() -> Path:
    return Path(current_app.config.get("BULK_IMPORT_DIR") or Path(current_app.instance_path) / "bulk_import")


def _write_json(path: Path, data: dict) -> None:
    # Written aside and renamed: the polling page never reads half a file.
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False)
    os.replace(temporary, path)


def _sweep(folder: Path) -> None:
    """Forget uploads and their states older than a day."""
    limit = time.time() - KEEP_SECONDS
    for path in folder.glob("*"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            pass


class Upload:
    """One uploaded file and its import's state, by token."""

    def __init__(self, folder: Path, token: str):
        self.folder, self.token = folder, token
        self.file = folder / f"{token}.upload"
        self.state_file = folder / f"{token}.json"

    def load(self) -> dict:
        try:
            return json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def save(self, state: dict) -> None:
        _write_json(self.state_file, state)

    def table(self, state: dict):
        return read_table(self.file.read_bytes(), state.get("encoding", "auto"))


def run_in_background(app, upload: Upload, actor_id: int) -> None:
    """The real import beside the request; its progress and report go to the upload's state."""
    def work():
        with app.app_context():
            state = upload.load()
            last = [0.0]

            def progress(done: int, total: int) -> None:
                if time.monotonic() - last[0] > 0.5 or done == total:
                    last[0] = time.monotonic()
                    state["progress"] = {"done": done, "total": total}
                    upload.save(state)

            try:
                runner = db.session.get(Operator, actor_id)
                table = upload.table(state)
                report = run_import(db.session, runner, table.rows, state["mapping"], state["rules"],
                                    state["on_match"], save_options(), dry_run=False, progress=progress)
                state.update(status="done", result=report.as_dict())
            except Exception:  # the page must say the import stopped, not spin for ever
                log.exception("bulk import %s failed", upload.token)
                state.update(status="failed", message="The import stopped on an unexpected error; rows "
                                                      "imported before it are kept. See the server log.")
            finally:
                db.session.remove()
                upload.save(state)
                upload.file.unlink(missing_ok=True)

    threading.Thread(target=work, name=f"bulk-import-{upload.token[:8]}", daemon=True).start()


def _shortened(value: str) -> str:
    return value if len(value) <= SAMPLE_LENGTH else value[:SAMPLE_LENGTH - 1] + "…"


def _samples(table) -> dict[str, list[str]]:
    """The first values of each column, as the mapping page shows them."""
    return {h: [_shortened(r.values.get(h, "")) for r in table.rows[:SAMPLE_ROWS]] for h in table.headers}


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


class BulkImportView(BaseView):
    """Import customers and their contacts from a CSV or XLSX file, with a preview."""

    def is_accessible(self) -> bool:
        return current_user.is_authenticated and current_user.is_active

    def inaccessible_callback(self, name, **kwargs):
        return deny_or_login()

    def _upload(self, token: str) -> tuple[Upload, dict]:
        """The operator's own upload, or 404 (another operator's token is no different from none)."""
        if not TOKEN.match(token):
            abort(404)
        upload = Upload(import_dir(), token)
        state = upload.load()
        if not state or state.get("owner") != actor().id:
            abort(404)
        return upload, state

    def _page(self, template: str, status: int = 200, **kwargs):
        limits = {"megabytes": MAX_BYTES // 2**20, "rows": MAX_ROWS, "columns": MAX_COLUMNS}
        return self.render(template, encodings=ENCODINGS, targets=TARGET_FIELDS, rules=list(MatchRule),
                           on_match_choices=list(OnMatch), shown=SHOWN_ROWS, limits=limits, **kwargs), status

    @expose("/", methods=("GET", "POST"))
    def index(self):
        if request.method == "GET":
            return self._page("admin/bulk_import_upload.html", encoding="auto")
        encoding = request.form.get("encoding", "auto")
        file = request.files.get("file")
        if file is None or not file.filename:
            return self._page("admin/bulk_import_upload.html", 400, encoding=encoding,
                              error="Choose a file to upload (CSV or XLSX).")
        data = file.stream.read(MAX_BYTES + 1)
        try:
            table = read_table(data, encoding)
        except ImportFileError as exc:
            return self._page("admin/bulk_import_upload.html", 400, encoding=encoding, error=str(exc))
        if not table.rows:
            return self._page("admin/bulk_import_upload.html", 400, encoding=encoding,
                              error="The file has a header row but no data rows.")
        folder = import_dir()
        folder.mkdir(parents=True, exist_ok=True)
        _sweep(folder)
        upload = Upload(folder, secrets.token_urlsafe(24))
        upload.file.write_bytes(data)
        # The columns and their first values are kept now: the mapping page shows them without
        # reading the file again (only the preview and the import read it, once each).
        upload.save({"owner": actor().id, "encoding": encoding, "read_as": table.encoding,
                     "name": Path(file.filename).name[:120], "rows": len(table.rows),
                     "headers": table.headers, "samples": _samples(table), "status": "uploaded"})
        return redirect(url_for(".mapping_view", token=upload.token))

    @expose("/mapping/<token>", methods=("GET", "POST"))
    def mapping_view(self, token: str):
        upload, state = self._upload(token)
        if state.get("status") not in ("uploaded", "previewed"):
            return redirect(url_for(".result_view", token=token))
        if not upload.file.exists() or "samples" not in state:
            return self._gone()
        headers = mapped_headers(state.get("headers", []))
        mapping = state.get("mapping") or suggest_mapping(headers, remembered_mapping(db.session, headers))
        rules = state.get("rules", [MatchRule.REGISTRATION_NUMBER.value, MatchRule.EMAIL.value])
        on_match = state.get("on_match", OnMatch.UPDATE_EMPTY.value)
        error = None
        if request.method == "POST":
            mapping = {h: request.form.get(f"map-{i}", "") for i, h in enumerate(headers)}
            rules = _rules_from(request.form)
            on_match = request.form.get("on_match", "")
            try:
                if on_match not in {o.value for o in OnMatch}:
                    raise ImportFileError("Choose what to do when a row matches an existing customer.")
                clean = check_mapping(mapping)
            except ImportFileError as exc:
                error = str(exc)
            else:
                try:
                    table = upload.table(state)
                except (ImportFileError, OSError):
                    return self._gone()
                with unit_of_work(db.session):
                    remember_mapping(db.session, headers, clean)
                report = run_import(db.session, actor(), table.rows, clean, rules, on_match, save_options(),
                                    dry_run=True)
                state.update(mapping=clean, rules=rules, on_match=on_match, status="previewed",
                             preview=report.as_dict())
                upload.save(state)
                return redirect(url_for(".preview_view", token=token))
        samples = {h: state["samples"].get(h, []) for h in headers}
        return self._page("admin/bulk_import_mapping.html", 400 if error else 200, token=token, state=state,
                          headers=headers, mapping=mapping, samples=samples, chosen_rules=rules,
                          on_match=on_match, error=error)

    def _gone(self):
        return self._page("admin/bulk_import_upload.html", 400, encoding="auto",
                          error="The uploaded file is no longer available; upload it again.")

    @expose("/preview/<token>")
    def preview_view(self, token: str):
        _, state = self._upload(token)
        if state.get("status") != "previewed":
            return redirect(url_for(".mapping_view", token=token))
        return self._page("admin/bulk_import_preview.html", token=token, state=state, report=state["preview"])

    @expose("/run/<token>", methods=("POST",))
    def run_view(self, token: str):
        upload, state = self._upload(token)
        if state.get("status") == "previewed":
            # The import's report replaces the preview's: one report kept, and the progress
            # written every half second does not rewrite the preview's rejected rows.
            state.pop("preview", None)
            state.update(status="running", progress={"done": 0, "total": state.get("rows", 0)})
            upload.save(state)
            app = current_app._get_current_object()  # type: ignore[attr-defined]  # the proxy's app
            run_in_background(app, upload, actor().id)
        return redirect(url_for(".result_view", token=token))

    @expose("/result/<token>")
    def result_view(self, token: str):
        _, state = self._upload(token)
        if state.get("status") in ("uploaded", "previewed"):
            return redirect(url_for(".mapping_view", token=token))
        return self._page("admin/bulk_import_result.html", token=token, state=state,
                          report=state.get("result"))

    @expose("/status/<token>.json")
    def status_view(self, token: str):
        _, state = self._upload(token)
        result = state.get("result") or {}
        return jsonify(status=state.get("status"), done=state.get("status") in ("done", "failed"),
                       progress=state.get("progress", {}), counts=result.get("counts", {}),
                       message=state.get("message", ""))

    @expose("/rejected/<token>.csv")
    def rejected_view(self, token: str):
        _, state = self._upload(token)
        report = state.get("result") or state.get("preview")
        if not report:
            abort(404)
        headers = state.get("headers", [])  # every column of the file, the unmapped too
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(state.get("name", "import")).stem).strip("-") or "import"
        return Response(rejected_csv(headers, report["rejected"]), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{stem}-rejected.csv"'})
