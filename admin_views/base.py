"""The secured base views every admin view inherits, and the glue from domain errors to forms."""

from __future__ import annotations

from collections import OrderedDict

from flask import Response, abort, current_app, flash, g, redirect, request, url_for
from flask_admin import BaseView
from flask_admin.actions import action
from flask_admin.babel import lazy_gettext
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.validators import Unique
from flask_admin.model.base import FilterGroup
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload
from werkzeug.utils import secure_filename
from wtforms.fields import BooleanField, HiddenField
from wtforms.fields.core import UnboundField
from wtforms.validators import Length

from admin_views.ids import MAX_ID, parse_id
from admin_views.list_rows import ListRowsMixin
from admin_views.refusals import panel_write
from admin_views.search_mixin import SafeListArgsMixin
from extensions import db
from i18n import _, _l
from services.audit import record, save_audited
from services.counting import CappedCountQuery
from services.customers import SaveOptions
from services.spreadsheet_cells import neutralise_cell, xlsx_bytes
from services.transactions import delete

EXPORT_BATCH = 500  # rows an export reads from the database at a time


def exporting() -> bool:
    """Whether this request is a list's export (SecuredModelView._export_data): its rows stream,
    and a view may load with them what the export prints."""
    return bool(g.get("exporting_list"))


def save_options() -> SaveOptions:
    return SaveOptions(phone_region=current_app.config["PHONE_DEFAULT_REGION"])


def actor():
    """The signed-in operator as a plain model object, for the domain layer."""
    return current_user._get_current_object() if current_user.is_authenticated else None


def seen_version(form) -> int | None:
    """The record version the user's form was loaded at (hidden field `version_seen`)."""
    field = getattr(form, "version_seen", None)
    return parse_id(field.data) if field is not None else None


class VersionSeenField(HiddenField):
    """The version a record had when its form was loaded; never copied onto the record."""

    def populate_obj(self, obj, name):
        return None


class ConfirmDuplicateField(BooleanField):
    """"Create anyway" after a duplicate refusal; a question to the user, not a column."""

    def populate_obj(self, obj, name):
        return None


def _in_domain_words(validator):
    if isinstance(validator, Length) and validator.max and validator.max > 0:
        # The words of services.limits.too_long; WTForms fills in max and length when it refuses.
        return Length(min=validator.min, max=validator.max,
                      message=_l("At most %(max)d characters, please (%(length)d given)."))
    return validator


def deny_or_login():
    """Anonymous users go to the sign-in page; signed-in users without the right get 403."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    abort(403)


class SignedInView(BaseView):
    """A page every active operator may open (what it shows is scoped by its own queries)."""

    def is_accessible(self) -> bool:
        return current_user.is_authenticated and current_user.is_active

    def inaccessible_callback(self, name, **kwargs):
        return deny_or_login()


class OwnAccountView(SignedInView):
    """A page of the signed-in operator's own account (profile, API tokens): anyone active."""


class SecuredModelView(SafeListArgsMixin, ListRowsMixin, ModelView):
    """A model view for any signed-in, active operator.

    Saving goes through `save_model`/`remove_model`, which subclasses implement by calling the
    domain command; the create, edit and delete pages and the bulk delete run them inside
    admin_views.refusals.panel_write (one unit of work; a refusal on the form's fields or as
    a page message, nothing half-written).
    """

    page_size = 20
    can_view_details = True
    create_modal = False
    edit_modal = False

    # List column → model attribute it sorts by; Flask-Admin itself would rename the column
    # after the attribute (display_name sorted by the folded sort_name, case-insensitively).
    sort_by: dict = {}

    def is_accessible(self) -> bool:
        return current_user.is_authenticated and current_user.is_active

    def validate_form(self, form) -> bool:
        valid = super().validate_form(form)
        # Flask-Admin's ajax pickers drop an id their loader refuses (another kind, a record the
        # operator may not see) without a word; say so on the field instead.
        for name in self.form_ajax_refs or {}:
            field = getattr(form, name, None)
            posted = request.form.get(name) if request.method == "POST" else None
            if field is not None and posted not in (None, "", "__None") and field.data is None:
                field.errors = [*field.errors, _("Not one of the records you can choose here.")]
                valid = False
        return valid

    def scaffold_form(self):
        # Uniqueness is a domain rule with its own field message (services/); Flask-Admin's
        # Unique validator would check it a second time, with a vaguer "Already exists.".
        # Its Length validator (from the column, like the domain's) keeps the browser's maxlength
        # hint but speaks the domain's words (services.limits.too_long), so every door says the same.
        form_class = super().scaffold_form()
        for value in vars(form_class).values():
            if isinstance(value, UnboundField) and value.kwargs.get("validators"):
                value.kwargs["validators"] = [
                    _in_domain_words(v) for v in value.kwargs["validators"] if not isinstance(v, Unique)
                ]
        return form_class

    def get_sortable_columns(self):
        columns = super().get_sortable_columns()
        columns.update(self.sort_by)
        return columns

    def inaccessible_callback(self, name, **kwargs):
        return deny_or_login()

    def _get_filter_groups(self):
        # Flask-Admin reads filter options once at start-up; ours come from lookup tables a
        # maintainer edits, so they are read for each page (without mutating the shared cache).
        if not self._filters:
            return None
        groups: OrderedDict[str, FilterGroup] = OrderedDict()
        for index, flt in enumerate(self._filters):
            groups.setdefault(str(flt.name), FilterGroup(flt.name)).append({
                "index": index,
                "arg": self.get_filter_arg(index, flt),
                "operation": flt.operation(),
                "options": flt.get_options(self) or None,
                "type": flt.data_type,
            })
        return OrderedDict(group.non_lazy() for group in groups.values())

    def get_count_query(self):
        # Counted up to the cap (services.counting); search, filters and row access refine it.
        return CappedCountQuery([func.count("*")], db.session()).select_from(self.model)

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        # A page number past any possible row would overflow the database's OFFSET.
        if page is not None and not 0 <= page <= MAX_ID:
            page = 0
        args = (page, sort_column, sort_desc, search, filters)
        if exporting():
            # An export reads its rows as it writes them, EXPORT_BATCH at a time: a million
            # customers never sit in the worker's memory at once (bench/customers_list.py).
            count, query = super().get_list(*args, execute=False, page_size=page_size)
            return count, query.yield_per(EXPORT_BATCH)
        if not execute or not isinstance(self._primary_key, str):
            return super().get_list(*args, execute=execute, page_size=page_size)
        size = self.page_size if page_size is None else page_size
        listed = self.listed_page(search, (page or 0) * size, size) \
            if size and not filters and sort_column is None else None
        if listed is not None:
            count, ids = listed
        else:
            # The page's ids first, then their rows: the database skips and sorts ids (on an
            # index, without reading the rows where it can), not the wide rows with their joins —
            # a deep page of a million customers read 10,000 rows to show 20.
            count, page_query = super().get_list(*args, execute=False, page_size=page_size)
            key = getattr(self.model, self._primary_key)
            ids = db.session.scalars(page_query.statement.with_only_columns(key).correlate(None)).all()
        return count, self._rows_in_order(ids)

    def listed_page(self, search, offset: int, limit: int):
        """(count, ids) of a page of the list in its default order searched for `search`, from a
        faster source than the list's query (admin_views.search_mixin.TokenSearchMixin), or None."""
        return None

    def _rows_in_order(self, ids: list) -> list:
        if not ids:
            return []
        key = getattr(self.model, self._primary_key)
        query = self.get_query().filter(key.in_(ids))
        for relation in self._auto_joins:
            query = query.options(joinedload(relation))
        position = {record_id: index for index, record_id in enumerate(ids)}
        return sorted(query, key=lambda row: position[getattr(row, self._primary_key)])

    def _export_data(self):
        g.exporting_list = True
        try:
            return super()._export_data()
        finally:
            g.pop("exporting_list", None)

    def get_export_value(self, model, name):
        # Every list export (CSV and XLSX) writes its cells through the one rule against formula
        # injection (services.spreadsheet_cells).
        return neutralise_cell(super().get_export_value(model, name))

    def _export_tablib(self, export_type, return_url):
        if export_type != "xlsx":
            return super()._export_tablib(export_type, return_url)
        # Our own workbook writer: every cell neutralised (by xlsx_bytes) and a string cell.
        _, rows = self._export_data()
        data = xlsx_bytes(str(self.name), [label for _, label in self._export_columns],
                          ([super(SecuredModelView, self).get_export_value(row, column)
                            for column, _ in self._export_columns]
                           for row in rows))
        filename = secure_filename(self.get_export_name("xlsx"))
        return Response(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f"attachment;filename={filename}"})

    def delete_scope(self) -> list:
        """Extra WHERE conditions on the rows a bulk delete may touch (row-level views add theirs)."""
        return []

    @action("delete", lazy_gettext("Delete"),
            lazy_gettext("Are you sure you want to delete selected records?"))
    def action_delete(self, ids):
        # Flask-Admin's own version compares the integer key with the posted strings, which
        # PostgreSQL refuses, and deletes without the row-level check: each row goes through
        # remove_model (domain rules, audit) in ONE write, so one refused row refuses the batch.
        pks = {pk for pk in map(parse_id, ids) if pk is not None}
        existing = db.session.scalar(select(func.count()).select_from(self.model)
                                     .where(self.model.id.in_(pks)))
        rows = db.session.scalars(select(self.model).where(self.model.id.in_(pks),
                                                           *self.delete_scope())).all()
        if len(rows) < (existing or 0):
            abort(403)
        with panel_write() as outcome:
            for row in rows:
                self.remove_model(row)
        if outcome.ok and rows:
            for row in rows:
                self.after_model_delete(row)
            flash(_("Records deleted: %(count)s.", count=len(rows)), "success")

    # --- the domain hooks subclasses implement -------------------------------------------
    def save_model(self, form, model, is_created: bool) -> None:
        """Call the domain command that saves `model` (already filled from `form`); it flushes
        and raises, the write around it commits or shows the refusal."""
        raise NotImplementedError

    def remove_model(self, model) -> None:
        delete(db.session, model)

    # --- Flask-Admin's write path, routed through the hooks ------------------------------
    def _write(self, form, model, is_created: bool) -> bool:
        """The one write of the create and edit pages: fill the record from the form and save
        it in one unit of work. A refusal leaves the user's input on the form with the messages
        on their fields (admin_views.refusals); nothing is written."""
        with panel_write(form) as outcome:
            with db.session.no_autoflush:
                form.populate_obj(model)
            self.save_model(form, model, is_created)
        if outcome.ok:
            self.after_model_change(form, model, is_created)
        return outcome.ok

    def create_model(self, form):
        model = self.build_new_instance()
        return model if self._write(form, model, True) else False

    def update_model(self, form, model) -> bool:
        return self._write(form, model, False)

    def delete_model(self, model) -> bool:
        with panel_write() as outcome:
            self.remove_model(model)
        if outcome.ok:
            self.after_model_delete(model)
        return outcome.ok


class MaintainerModelView(SecuredModelView):
    """A model view only maintainers see in the menu and may open; others get 403."""

    def is_accessible(self) -> bool:
        return super().is_accessible() and current_user.is_maintainer

    def save_model(self, form, model, is_created: bool) -> None:
        save_audited(db.session, actor(), model)

    def remove_model(self, model) -> None:
        record(db.session, actor(), "delete", model)
        delete(db.session, model)
