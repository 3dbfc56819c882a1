"""Directory sources (maintainers only): their settings, Test connection, dry run and import
with a progress bar, and each run's report. The import itself is services.directory."""

from __future__ import annotations

import threading

from flask import abort, current_app, flash, jsonify, redirect, request, url_for
from flask_admin import expose
from sqlalchemy import select
from wtforms import SelectField, TextAreaField

from admin_views.base import MaintainerModelView, actor, save_options
from admin_views.connection_tests import answer, refused_over_limit
from admin_views.fields import CustomerAjaxLoader, EnumSelectField, NewPasswordField
from admin_views.ids import parse_id
from admin_views.refusals import panel_write
from extensions import db
from models import DirectorySource, DirectorySyncRun, Operator
from models.enums import CustomerKind, DirectoryTarget, SyncRunStatus
from services.directory.mapping import DEFAULT_FILTER, rules_to_text
from services.directory.pipeline import SyncOptions, start_run, sync_directory
from services.directory.sources import check_connection, mapping_text, save_source
from services.errors import ValidationFailed
from services.outbound_policy import reach_of
from services.transactions import unit_of_work

# The source's attribute → the form field that edits it (services.directory.sources names the former).
FORM_FIELDS = {"attribute_map": "attribute_mapping", "company_rules": "company_rules_text",
               "target_company_id": "target_company"}


def _box():
    return current_app.extensions["secret_box"]


def run_in_background(app, source_id: int, actor_id: int | None, options: SyncOptions, run_id: int) -> None:
    """An import started from the page runs beside the request (its own door: it commits batch
    by batch, services.directory.pipeline); the page polls its progress, which the run commits
    as it goes (any app process can show it)."""
    def work():
        with app.app_context():
            try:
                source = db.session.get(DirectorySource, source_id)
                runner = db.session.get(Operator, actor_id) if actor_id else None
                sync_directory(db.session, source, app.extensions["secret_box"], runner, options,
                               save_options(), run_id=run_id)
            finally:
                db.session.remove()

    threading.Thread(target=work, name=f"directory-import-{source_id}", daemon=True).start()


class DirectorySourceView(MaintainerModelView):
    column_list = ["name", "server_urls", "base_dn", "target", "is_active"]
    column_labels = {"server_urls": "Server URLs", "base_dn": "Base DN", "is_active": "Active",
                     "use_starttls": "StartTLS", "verify_certificate": "Verify certificate",
                     "ca_file": "CA file", "bind_dn": "Bind DN", "target": "Import people as",
                     "target_company": "Company (for contacts)", "office_maps_to": "Office goes to",
                     "max_deactivate_percent": "Hold above (%)", "last_usn": "Last imported uSNChanged"}
    column_formatters = {"target": lambda v, c, m, n: m.target.label}
    # Listed field by field: the encrypted bind password must never reach a page.
    column_details_list = ["name", "server_urls", "use_starttls", "verify_certificate", "ca_file", "bind_dn",
                           "base_dn", "search_filter", "page_size", "target", "target_company",
                           "office_maps_to", "max_deactivate_percent", "last_usn", "is_active"]
    form_columns = ["name", "server_urls", "use_starttls", "verify_certificate", "ca_file", "bind_dn",
                    "bind_password", "base_dn", "search_filter", "page_size", "attribute_mapping",
                    "target", "target_company", "company_rules_text", "office_maps_to",
                    "max_deactivate_percent", "is_active"]
    form_extra_fields = {
        "bind_password": NewPasswordField(
            "Bind password", description="Stored encrypted. Leave empty to keep the stored one."),
        "attribute_mapping": TextAreaField("Attribute mapping", description=(
            "field = LDAP attribute, one per line (Active Directory's defaults).")),
        "company_rules_text": TextAreaField("Company rules", description=(
            "For contacts: company|department|ou = value -> company id, one per line; the first "
            "matching rule wins. Empty: every contact goes to the company chosen above.")),
    }
    form_overrides = {"target": EnumSelectField, "office_maps_to": SelectField}
    form_args = {
        "target": {"enum": DirectoryTarget, "blank": False, "label": "Import people as"},
        "office_maps_to": {"choices": [("site", "Site"), ("location", "Location ID")],
                           "label": "physicalDeliveryOfficeName goes to"},
        "server_urls": {"label": "Server URLs", "description": "ldap://… (StartTLS) or ldaps://…; "
                                                               "several separated by spaces (failover)."},
        "use_starttls": {"label": "StartTLS on ldap:// URLs"},
        "verify_certificate": {"label": "Verify the server's certificate"},
        "ca_file": {"label": "CA file",
                    "description": "PEM file of the CA that signed the server's certificate."},
        "bind_dn": {"label": "Bind DN"},
        "base_dn": {"label": "Base DN"},
        "search_filter": {"label": "Search filter",
                          "description": "Default: user accounts, enabled and disabled."},
        "page_size": {"label": "Page size", "description": "Entries per page of the paged search."},
        "max_deactivate_percent": {"label": "Hold a run that would deactivate more than (%)"},
        "last_usn": {"label": "Last imported uSNChanged"},
        "target_company": {"label": "Company (for contacts)"},
    }
    form_widget_args = {"attribute_mapping": {"rows": 15}, "company_rules_text": {"rows": 4}}
    form_ajax_refs = {"target_company": CustomerAjaxLoader("target_company", db, kind=CustomerKind.COMPANY)}
    details_template = "admin/directory_source_details.html"

    def create_form(self, obj=None):
        form = super().create_form(obj)
        if request.method == "GET":
            form.search_filter.data = DEFAULT_FILTER
            form.page_size.data = 500
            form.max_deactivate_percent.data = 10
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
        return answer(report.ok, report.message, report.outcome, count=report.count, sample=report.sample)

    @expose("/start/<int:source_id>", methods=("POST",))
    def start_view(self, source_id: int):
        source = self._source(source_id)
        running = db.session.scalar(select(DirectorySyncRun).where(
            DirectorySyncRun.source_id == source.id, DirectorySyncRun.status == SyncRunStatus.RUNNING))
        if running is not None:
            flash("An import of this source is already running.", "error")
            return redirect(url_for(".details_view", id=source.id))
        options = SyncOptions(dry_run=request.form.get("mode") == "dry-run",
                              confirm_deactivation=bool(request.form.get("confirm_deactivation")),
                              full=not request.form.get("changes_only"))
        with panel_write() as outcome:
            run = start_run(db.session, source, actor(), options)  # committed: shown (and polled) at once
        if outcome.ok:
            app = current_app._get_current_object()  # type: ignore[attr-defined]  # the proxy's app
            run_in_background(app, source.id, actor().id, options, run.id)
            flash("Dry run started: nothing will be written." if options.dry_run else "Import started.",
                  "info")
        return redirect(url_for(".details_view", id=source.id))

    @expose("/runs/<int:run_id>.json")
    def run_view(self, run_id: int):
        run = db.session.get(DirectorySyncRun, run_id)
        if run is None:
            abort(404)
        return jsonify(id=run.id, status=run.status.value, dry_run=run.dry_run, total=run.total,
                       processed=run.processed, created=run.created, updated=run.updated,
                       unchanged=run.unchanged, deactivated=run.deactivated, failed=run.failed,
                       message=run.message)

    def render(self, template, **kwargs):
        if template == self.details_template:
            model = kwargs["model"]
            kwargs["runs"] = db.session.scalars(select(DirectorySyncRun).where(
                DirectorySyncRun.source_id == model.id).order_by(DirectorySyncRun.id.desc()).limit(10)).all()
        return super().render(template, **kwargs)
