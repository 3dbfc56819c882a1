"""The Overview (the first tab: the record as a person reads it) and the pages of one customer
that are not tabs: the Change Status dialog, the photo (upload and files), the delete
confirmation; the Site → Building list of the customer form; and what CustomerView's own pages
(list, details) show of them. CustomerView's details page leads to the Overview: one page per
customer.

Each customer page is a CustomerPage (admin_views.customer_page) declaring its template and
rights; it reads the customer through the loader and writes inside panel_write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from flask import abort, current_app, flash, jsonify, redirect, request, send_file, url_for
from flask_admin import expose
from flask_admin.model.template import DeleteRowAction, EndpointLinkRowAction
from sqlalchemy import select

from admin_views.base import actor, save_options
from admin_views.customer_page import CustomerPage, PanelPage, TabSpec
from admin_views.ids import parse_id
from admin_views.refusals import panel_write
from admin_views.row_access import visible_label
from extensions import db
from i18n import _, _l, when
from models import Building, Customer, CustomerStatus
from models.enums import CustomerKind
from services.access import Right
from services.customers import change_status, deletion_summary
from services.duplicates import customer_probe, find_duplicates
from services.photos import photo_paths, remove_photo, store_photo
from services.wording import EMPTY, field_label, shown_value


def _overview(customer: Customer):
    return redirect(url_for("customer_overview.index", id=customer.id))


class Row(NamedTuple):
    """One line of the Overview: the field's label and its value as a person reads it."""

    field: str
    label: str
    value: str


# The Cherwell "Customer - Internal" form's sections for a person; a company's own.
PERSON_SECTIONS = (
    (_l("General"), ("first_name", "middle_name", "last_name", "employee_type", "sla_level", "site",
                     "building", "location_code")),
    (_l("Contact"), ("primary_phone", "secondary_phone", "email", "secondary_email")),
    (_l("Organization"), ("department", "title", "manager", "notes")),
)
COMPANY_SECTIONS = (
    (_l("General"), ("company_name", "registration_number", "vat_id", "sla_level", "site", "building",
                     "location_code")),
    (_l("Contact"), ("primary_phone", "secondary_phone", "email", "secondary_email", "contacts")),
    (_l("Notes"), ("notes",)),
)
RECORD_FIELDS = ("operators", "workgroups", "sam_account_name", "directory_synced_at", "created_at",
                 "updated_at")
# The users' words (services.wording), but for the two times of the record itself.
FIELD_LABELS = {"created_at": _l("Created"), "updated_at": _l("Last changed")}


def _label(field: str) -> str:
    return str(FIELD_LABELS[field]) if field in FIELD_LABELS else field_label("customer", field)


def _who(operator) -> str:
    return f" ({operator.full_name})" if operator is not None else ""


def shown(customer: Customer, field: str) -> str:
    """A field of `customer` as the Overview shows it: phones formatted with their type, lookups
    and the manager by name, choices by label, times to the minute, lists comma-joined."""
    value: Any = getattr(customer, field)
    if field in ("primary_phone", "secondary_phone"):
        phone = shown_value("customer", field, value)
        kind = getattr(customer, f"{field}_type")
        return f"{phone} ({kind.label})" if value and kind is not None else phone
    if field == "manager":
        return visible_label(value) or EMPTY
    if field in ("operators", "workgroups"):
        names = [getattr(v, "full_name", None) or v.name for v in value]
        return ", ".join(names) or EMPTY
    if field == "contacts":
        return "; ".join(_("%(name)s (%(role)s, %(email)s)", name=c.display_name, role=c.role_label,
                           email=c.email or _("no e-mail")) for c in value) or EMPTY
    if field in ("created_at", "updated_at"):
        by = customer.created_by if field == "created_at" else customer.updated_by
        return (when(value) + _who(by)) if value else EMPTY
    if field == "directory_synced_at":
        return when(value) or EMPTY
    if value is not None and hasattr(value, "name") and not isinstance(value, str):
        return value.name or EMPTY  # a lookup: status, SLA level, site, building, department
    return shown_value("customer", field, value)


def overview_sections(customer: Customer) -> list[tuple[str, list[Row]]]:
    """The Overview's sections: only the fields of the customer's kind (a person's in the Cherwell
    sections General / Contact / Organization), then who looks after the record and when it was
    made and changed. Directory fields only for a customer imported from a directory."""
    sections = PERSON_SECTIONS if customer.kind == CustomerKind.PERSON else COMPANY_SECTIONS
    shown_sections = [(str(title), [Row(f, _label(f), shown(customer, f)) for f in fields])
                      for title, fields in sections]
    record = [f for f in RECORD_FIELDS if not f.startswith(("sam_", "directory_")) or customer.directory_guid]
    shown_sections.append((_("Record"), [Row(f, _label(f), shown(customer, f)) for f in record]))
    return shown_sections


class OverviewPage(CustomerPage):
    """The first tab: the customer as a person reads it (services.wording's words), the photo
    form and the possible duplicates to merge. CustomerView's details page leads here."""

    template = "admin/customer_details.html"
    form = None  # reads only; the header's dialogs post to their own pages
    right = Right.VIEW
    post_right = None
    tabs = (TabSpec("overview", _l("Overview")),)
    leads_the_tab_bar = True

    def get(self, customer: Customer):
        # An existing duplicate pair: offer to merge it (services.merge).
        probe = customer_probe(customer, save_options().phone_region)
        duplicates = [c for c in find_duplicates(db.session, actor(), probe, exclude_customer_id=customer.id)
                      if c.visible and c.record == "customer"]
        return self.render_page(customer, sections=overview_sections(customer),
                                possible_duplicates=duplicates)


class StatusPage(CustomerPage):
    """The Change Status dialog's form (on the details page)."""

    template = None  # answers with a redirect to the page the dialog was opened on
    form = None  # the dialog's select "status" and the hidden version_seen
    right = None
    post_right = Right.EDIT

    def post(self, customer: Customer):
        status = db.session.get(CustomerStatus, parse_id(request.form.get("status")) or 0)
        if status is None:
            flash(_("Choose one of the statuses."), "error")
            return _back(customer)
        with panel_write() as outcome:
            change_status(db.session, customer, actor(), status, save_options(),
                          seen_version=parse_id(request.form.get("version_seen")))
        if outcome.ok:
            flash(_("Status changed to %(name)s.", name=status.name), "success")
        return _back(customer)


def _back(customer: Customer):
    """Back to the tab a header dialog was opened on (a path of this site only), else the Overview."""
    back = request.form.get("back") or ""
    if back.startswith("/admin/customers/") and not back.startswith("//") and "\\" not in back:
        return redirect(back)
    return _overview(customer)


class PhotoPage(CustomerPage):
    """Upload (or remove) the customer's photo from the details page."""

    template = None  # answers with a redirect to the Overview
    form = None  # the file input "photo", or the button "remove"; the hidden version_seen
    right = None
    post_right = Right.EDIT

    def post(self, customer: Customer):
        storage = Path(current_app.config["PHOTO_DIR"])
        removing = bool(request.form.get("remove"))
        seen = parse_id(request.form.get("version_seen"))  # the customer's, as the Overview showed it
        with panel_write() as outcome:
            if removing:
                remove_photo(db.session, customer, actor(), storage, seen_version=seen)
            else:
                upload = request.files.get("photo")
                store_photo(db.session, customer, actor(), upload.read() if upload else b"", storage,
                            seen_version=seen)
        if outcome.ok:
            flash(_("The photo was removed.") if removing else _("The photo was saved."), "success")
        return _overview(customer)


class PhotoFilePage(CustomerPage):
    """A customer's photo or thumbnail, for those who may view the customer."""

    template = None  # sends the image file
    form = None
    right = Right.VIEW
    post_right = None
    route = "/<int:customer_id>/<size>"

    def get(self, customer: Customer):
        size = (request.view_args or {}).get("size")
        if not customer.photo or size not in ("full", "thumb"):
            abort(404)
        full, thumb = photo_paths(Path(current_app.config["PHOTO_DIR"]), customer.photo)
        path = full if size == "full" else thumb
        if not path.exists():
            abort(404)
        return send_file(path, max_age=0)


class DeleteConfirmPage(CustomerPage):
    """What goes with a customer when it is deleted, what keeps it; the button posts to
    CustomerView's delete."""

    template = "admin/customer_delete.html"
    form = None  # the button posts to customers.delete_view
    right = Right.DELETE
    post_right = None

    def get(self, customer: Customer):
        summary = deletion_summary(db.session, customer)
        return self.render_page(customer, summary=summary,
                                blocked=bool(summary["requests"] or summary["computers"]))


class BuildingsLookup(PanelPage):
    """The buildings of one site, for the customer form's Building list (Site → Building)."""

    @expose("/")
    def index(self):
        site_id = parse_id(request.args.get("site"))
        rows = db.session.scalars(select(Building).where(Building.site_id == site_id)
                                  .order_by(Building.name)).all() if site_id else []
        return jsonify([{"id": b.id, "text": str(b)} for b in rows])


class CustomerPagesMixin:
    """CustomerView's links to the customer pages: History and Delete… on each list row (the
    delete confirmation instead of Flask-Admin's bare delete), and its details page leading to
    the customer's Overview (one page per customer)."""

    get_one: Any

    def get_list_row_actions(self):
        actions = [a for a in super().get_list_row_actions()  # type: ignore[misc]
                   if not isinstance(a, DeleteRowAction)]
        actions.append(EndpointLinkRowAction("fa fa-history", "customer_history.index", _l("History")))
        if self.can_delete:  # type: ignore[attr-defined]
            actions.append(EndpointLinkRowAction("fa fa-trash", "customer_delete_confirm.index",
                                                 _l("Delete…")))
        return actions

    @expose("/details/")
    def details_view(self):
        # Read through the one loader first (404 / 403, a merged-away id to its survivor), so the
        # redirect tells nobody more than the page itself would.
        reference = request.args.get("id")
        if reference is None:
            return redirect(url_for(".index_view"))
        return _overview(self.get_one(reference))
