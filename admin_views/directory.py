"""Directory sources (maintainers only): their settings and schedules, Test connection, dry run
and import, cancel and resume, with each run's progress (polled) and report. A run started here
is queued and done by a worker (jobs.directory); the rules are services.directory's."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, current_app, flash, jsonify, redirect, request, url_for
from flask_admin import expose
from sqlalchemy import select
from wtforms import SelectField, TextAreaField

from admin_views.base import MaintainerModelView, actor
from admin_views.connection_tests import answer, refused_over_limit
from admin_views.fields import CustomerAjaxLoader, EnumSelectField, NewPasswordField
from admin_views.ids import parse_id
from admin_views.refusals import panel_write
from extensions import db
from i18n import _, _l, when
from jobs import enqueue_after_commit
from jobs.directory import IMPORT
from models import DirectorySource, DirectorySyncRun
from models.base import utcnow
from models.directory import CLEAR_LOCAL, KEEP_LOCAL
from models.enums import CustomerKind, DirectoryTarget, SyncRunStatus
from services.directory.mapping import DEFAULT_FILTER, rules_to_text
from services.directory.runs import cancel_run, queue_run, resumable, resume_run, started_by
from services.directory.schedules import server_zone
from services.directory.sources import check_connection, mapping_text, password_warning, save_source
from services.directory.targets import report_entity, report_lines
from services.errors import ValidationFailed
from services.outbound_policy import reach_of
from services.transactions import unit_of_work

# The source's attribute → the form field that edits it (services.directory.sources names the former).
FORM_FIELDS = {"attribute_map": "attribute_mapping", "company_rules": "company_rules_text",
               "target_company_id": "target_company"}


def _box():
    return current_app.extensions["secret_box"]


def _lease() -> int:
    return int(current_app.config["JOB_LEASE_SECONDS"])


# What an empty directory value does to a field that has a value (DirectorySource.empty_values).
EMPTY_VALUE_CHOICES = [(KEEP_LOCAL, _l("Keep the value in Customer Desk")),
                       (CLEAR_LOCAL, _l("Clear the field"))]

# A run's state in plain words (the page and its polling).
STATES = {
    SyncRunStatus.QUEUED: _l("Queued: waiting for a worker"),
    SyncRunStatus.RUNNING: _l("Running"),
    SyncRunStatus.SUCCEEDED: _l("Finished"),
    SyncRunStatus.FAILED: _l("Failed"),
    SyncRunStatus.CANCELLED: _l("Cancelled"),
    SyncRunStatus.INTERRUPTED: _l("Interrupted: its worker stopped"),
}


def run_state(run: DirectorySyncRun) -> str:
    """What the page says of a run's state. Read only: a run whose worker stopped answering is
    said so here and marked interrupted by the lease check (or the next Start) — a GET writes
    nothing."""
    words = str(STATES[run.status])
    if run.status == SyncRunStatus.RUNNING:
        if run.total is None:
            words += _(", reading the directory")
        if run.cancel_requested:
            words += _(", stopping after this batch (cancel requested)")
        quiet_since = run.heartbeat_at
        if quiet_since is None or quiet_since < utcnow() - timedelta(seconds=_lease()):
            words += (_(" — its worker has not answered since %(when)s", when=when(quiet_since))
                      if quiet_since else _(" — its worker never answered"))
            words += _("; it will be marked interrupted")
    return words


def schedule_text(source: DirectorySource) -> str:
    parts = []
    if source.full_sync_at:
        parts.append(_("full sync every night at %(at)s (server time, %(zone)s), next %(next)s",
                       at=source.full_sync_at, zone=server_zone(), next=_next(source.full_sync_due_at)))
    if source.changes_every_minutes:
        parts.append(_("changes every %(minutes)s minutes, next %(next)s",
                       minutes=source.changes_every_minutes, next=_next(source.changes_due_at)))
    if parts and not source.is_active:
        return _("paused (the source is not active): %(schedule)s", schedule="; ".join(parts))
    return "; ".join(parts) or _("none (runs start from this page or the command line)")


def _next(moment) -> str:
    """When a scheduled run is due, to the minute in the reader's zone (the one format)."""
    return when(moment) if moment is not None else _("within a minute")


class DirectorySourceView(MaintainerModelView):
    column_list = ["name", "server_urls", "base_dn", "target", "is_active"]
    column_labels = {"server_urls": _l("Server URLs"), "base_dn": _l("Base DN"), "is_active": _l("Active"),
                     "use_starttls": _l("StartTLS"), "verify_certificate": _l("Verify certificate"),
                     "ca_file": _l("CA file"), "bind_dn": _l("Bind DN"), "target": _l("Import people as"),
                     "target_company": _l("Company (for contacts)"), "office_maps_to": _l("Office goes to"),
                     "empty_values": _l("When the directory has no value"),
                     "max_deactivate_percent": _l("Hold above (%)"),
                     "last_usn": _l("Last imported uSNChanged"),
                     "full_sync_at": _l("Nightly full sync at"),
                     "changes_every_minutes": _l("Changes every (minutes)"),
                     "exclude_system_accounts": _l("Leave out built-in and service accounts"),
                     "exclude_ous": _l("Leave out OUs"), "exclude_accounts": _l("Leave out account names")}
    column_formatters = {"target": lambda v, c, m, n: _(m.target.label),
                         "empty_values": lambda v, c, m, n: dict(EMPTY_VALUE_CHOICES).get(m.empty_values)}
    # Listed field by field: the encrypted bind password must never reach a page.
    column_details_list = ["name", "server_urls", "use_starttls", "verify_certificate", "ca_file", "bind_dn",
                           "base_dn", "search_filter", "page_size", "exclude_system_accounts", "exclude_ous",
                           "exclude_accounts", "target", "target_company",
                           "office_maps_to", "empty_values", "max_deactivate_percent", "last_usn",
                           "full_sync_at", "changes_every_minutes", "is_active"]
    form_columns = ["name", "server_urls", "use_starttls", "verify_certificate", "ca_file", "bind_dn",
                    "bind_password", "base_dn", "search_filter", "exclude_system_accounts", "exclude_ous",
                    "exclude_accounts", "page_size", "attribute_mapping",
                    "target", "target_company", "company_rules_text", "office_maps_to", "empty_values",
                    "max_deactivate_percent", "full_sync_at", "changes_every_minutes", "is_active"]
    form_extra_fields = {
        "bind_password": NewPasswordField(
            _l("Bind password"), description=_l("Stored encrypted. Leave empty to keep the stored one.")),
        "attribute_mapping": TextAreaField(_l("Attribute mapping"), description=_l(
            "field = LDAP attribute, one per line (Active Directory's defaults).")),
        "company_rules_text": TextAreaField(_l("Company rules"), description=_l(
            "For contacts: company|department|ou = value -> company id, one per line; the first "
            "matching rule wins. Empty: every contact goes to the company chosen above.")),
    }
    form_overrides = {"target": EnumSelectField, "office_maps_to": SelectField, "empty_values": SelectField}
    form_args = {
        "target": {"enum": DirectoryTarget, "blank": False, "label": _l("Import people as")},
        "office_maps_to": {"choices": [("site", _l("Site")), ("location", _l("Location ID"))],
                           "label": _l("physicalDeliveryOfficeName goes to")},
        "empty_values": {"choices": EMPTY_VALUE_CHOICES, "default": KEEP_LOCAL,
                         "label": _l("When the directory has no value for a field"), "description": _l(
                             "Keep: a title, phone, middle name or manager typed in Customer Desk stays when "
                             "the account has none in the directory (on the first import that links a record "
                             "and on every later one). Clear: the field is emptied, so the record shows "
                             "exactly what the directory holds.")},
        "server_urls": {"label": _l("Server URLs"), "description": _l(
            "ldap://… (StartTLS) or ldaps://…; several separated by spaces (failover).")},
        "use_starttls": {"label": _l("StartTLS on ldap:// URLs")},
        "verify_certificate": {"label": _l("Verify the server's certificate")},
        "ca_file": {"label": _l("CA file"),
                    "description": _l("PEM file of the CA that signed the server's certificate.")},
        "bind_dn": {"label": _l("Bind DN")},
        "base_dn": {"label": _l("Base DN")},
        "search_filter": {"label": _l("Search filter"),
                          "description": _l("Default: user accounts, enabled and disabled.")},
        "page_size": {"label": _l("Page size"), "description": _l("Entries per page of the paged search.")},
        "max_deactivate_percent": {"label": _l("Hold a run that would deactivate more than (%)")},
        "exclude_system_accounts": {"label": _l("Leave out built-in and service accounts"), "description": _l(
            "AD's built-in accounts (Administrator, Guest, krbtgt: isCriticalSystemObject), computer and "
            "managed service accounts, accounts with a servicePrincipalName and names ending in $. Left "
            "out: neither imported nor failed; one imported before is deactivated.")},
        "exclude_ous": {"label": _l("Leave out OUs"), "description": _l(
            "One per line: an OU or part of a DN, e.g. OU=Service Accounts; its accounts (and those of "
            "OUs below it) are left out.")},
        "exclude_accounts": {"label": _l("Leave out account names"), "description": _l(
            "One sAMAccountName per line, * and ? as wildcards, e.g. svc-*.")},
        "last_usn": {"label": _l("Last imported uSNChanged")},
        "target_company": {"label": _l("Company (for contacts)")},
        "full_sync_at": {"label": _l("Nightly full sync at (HH:MM)")},
        "changes_every_minutes": {"label": _l("Import changes every (minutes)"), "description": _l(
            "A changes-only run (uSNChanged) every so many minutes, from 5 to 1440. Empty: none.")},
    }
    form_widget_args = {"attribute_mapping": {"rows": 15}, "company_rules_text": {"rows": 4},
                        "exclude_ous": {"rows": 2}, "exclude_accounts": {"rows": 2}}
    form_ajax_refs = {"target_company": CustomerAjaxLoader("target_company", db, kind=CustomerKind.COMPANY)}
    details_template = "admin/directory_source_details.html"

    def _schedule_help(self, form):
        form.full_sync_at.description = _("The server's local time: %(zone)s. A full sync (it also "
                                          "finds who left) every night at this time. Empty: none.",
                                          zone=server_zone())
        return form

    def edit_form(self, obj=None):
        return self._schedule_help(super().edit_form(obj))

    def create_form(self, obj=None):
        form = self._schedule_help(super().create_form(obj))
        if request.method == "GET":
            form.search_filter.data = DEFAULT_FILTER
            form.page_size.data = 500
            form.max_deactivate_percent.data = 10
            form.exclude_system_accounts.data = True
            form.attribute_mapping.data = mapping_text(DirectorySource(attribute_map={}))
        return form

    def on_form_prefill(self, form, id):
        source = db.session.get(DirectorySource, int(id))
        form.attribute_mapping.data = mapping_text(source)
        form.company_rules_text.data = rules_to_text(source.company_rules)

    def save_model(self, form, model, is_created):
        # Joins the unit of work of the base view's save when it has one; commits on its own
        # otherwise. A refusal reaches the base view's translation to the form, its messages
        # under the fields this form calls by other names than the source's attributes.
        try:
            with unit_of_work(db.session):
                save_source(db.session, actor(), model, _box(), bind_password=form.bind_password.data,
                            mapping=form.attribute_mapping.data, rules=form.company_rules_text.data)
        except ValidationFailed as exc:
            raise ValidationFailed({FORM_FIELDS.get(k, k): v for k, v in exc.errors.items()}) from None

    def after_model_change(self, form, model, is_created):
        warning = password_warning(model, _box())  # saved, yet the password would go in clear text
        if warning:
            flash(warning, "warning")

    # --- Test connection, runs, progress -------------------------------------------------------
    def _source(self, source_id) -> DirectorySource:
        source = db.session.get(DirectorySource, parse_id(source_id) or 0)
        if source is None:
            abort(404)
        return source

    @expose("/test/<int:source_id>", methods=("POST",))
    def test_view(self, source_id: int):
        """Test connection: where it may connect, services.outbound_policy; how often (per
        operator, with the wizard's tests), admin_views.connection_tests."""
        source = self._source(source_id)
        refused = refused_over_limit(actor())
        if refused is not None:
            return refused
        report = check_connection(source, _box(), account=(request.form.get("account") or "").strip() or None,
                                  reach=reach_of(actor()))
        return answer(report.ok, report.message, report.outcome, count=report.count, sample=report.sample,
                      warning=report.warning)

    @expose("/start/<int:source_id>", methods=("POST",))
    def start_view(self, source_id: int):
        """Queue a dry run or an import; a worker does it (jobs.directory) once this commits."""
        source = self._source(source_id)
        dry_run = request.form.get("mode") == "dry-run"
        with panel_write() as outcome:
            run = queue_run(db.session, source, actor(), dry_run=dry_run,
                            full=not request.form.get("changes_only"),
                            confirm_deactivation=bool(request.form.get("confirm_deactivation")),
                            lease_seconds=_lease())
            enqueue_after_commit(db.session, IMPORT, run.id)
        if outcome.ok:
            flash(_("Dry run queued: nothing will be written. A worker starts it in a moment; this page "
                    "shows its progress.") if dry_run else
                  _("Import queued. A worker starts it in a moment; this page shows its progress."), "info")
        return redirect(url_for(".details_view", id=source.id))

    def _run(self, run_id: int) -> DirectorySyncRun:
        run = db.session.get(DirectorySyncRun, run_id)
        if run is None:
            abort(404)
        return run

    @expose("/cancel/<int:run_id>", methods=("POST",))
    def cancel_view(self, run_id: int):
        run = self._run(run_id)
        with panel_write() as outcome:
            said = cancel_run(db.session, run, actor(), lease_seconds=_lease())
        if outcome.ok:
            flash(said, "info")
        return redirect(url_for(".details_view", id=run.source_id))

    @expose("/resume/<int:run_id>", methods=("POST",))
    def resume_view(self, run_id: int):
        run = self._run(run_id)
        with panel_write() as outcome:
            queued = resume_run(db.session, run, actor(), lease_seconds=_lease())
            enqueue_after_commit(db.session, IMPORT, queued.id)
        if outcome.ok:
            flash(_("Resume queued: it continues run #%(id)s from what that run committed.", id=run.id),
                  "info")
        return redirect(url_for(".details_view", id=run.source_id))

    @expose("/runs/<int:run_id>.json")
    def run_view(self, run_id: int):
        run = self._run(run_id)
        return jsonify(id=run.id, status=run.status.value, state=run_state(run), dry_run=run.dry_run,
                       total=run.total, processed=run.processed, created=run.created, updated=run.updated,
                       unchanged=run.unchanged, deactivated=run.deactivated, failed=run.failed,
                       left_out=run.left_out,
                       cancel_requested=run.cancel_requested, started_by=_started_by(run),
                       message=run.message)

    def render(self, template, **kwargs):
        if template == self.details_template:
            model = kwargs["model"]
            runs = db.session.scalars(select(DirectorySyncRun).where(
                DirectorySyncRun.source_id == model.id).order_by(DirectorySyncRun.id.desc()).limit(10)).all()
            entity_type = report_entity(model.target)
            kwargs.update(runs=runs, run_state=run_state, started_by=_started_by,
                          report_lines=lambda fields: report_lines(entity_type, fields or []),
                          schedule=schedule_text(model),
                          resumable_id=runs[0].id if runs and resumable(db.session, runs[0]) else None,
                          busy=bool(runs) and runs[0].status.is_active)
        return super().render(template, **kwargs)


def _started_by(run: DirectorySyncRun) -> str:
    """Who started a run, in the reader's words (an operator by name, the schedule, the command line)."""
    said = started_by(run)
    return {"schedule": _("schedule"), "command line": _("command line")}.get(said, said) \
        if run.started_by is None else said
