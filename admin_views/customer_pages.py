"""The pages of one customer that are not tabs: the Change Status dialog, the photo (upload and
files), the delete confirmation; the Site → Building list of the customer form; and what
CustomerView's own pages (list, details) show of them.

Each customer page is a CustomerPage (admin_views.customer_page) declaring its template and
rights; it reads the customer through the loader and writes inside panel_write.
"""

from __future__ import annotations

from pathlib import Path

from flask import abort, current_app, flash, jsonify, redirect, request, send_file, url_for
from flask_admin import expose
from flask_admin.model.template import DeleteRowAction, EndpointLinkRowAction
from sqlalchemy import select

from admin_views.base import actor, save_options
from admin_views.customer_page import CustomerPage, PanelPage
from admin_views.ids import parse_id
from admin_views.refusals import panel_write
from extensions import db
from models import Building, Customer, CustomerStatus
from services.access import Right
from services.customers import change_status, deletion_summary
from services.duplicates import customer_probe, find_duplicates
from services.photos import photo_paths, remove_photo, store_photo


def _details(customer: Customer):
    return redirect(url_for("customers.details_view", id=customer.id))


class StatusPage(CustomerPage):
    """The Change Status dialog's form (on the details page)."""

    template = None  # answers with a redirect to the details page
    form = None  # the dialog's select "status" and the hidden version_seen
    right = None
    post_right = Right.EDIT

    def post(self, customer: Customer):
        status = db.session.get(CustomerStatus, parse_id(request.form.get("status")) or 0)
        if status is None:
            flash("Choose one of the statuses.", "error")
            return _details(customer)
        with panel_write() as outcome:
            change_status(db.session, customer, actor(), status, save_options(),
                          seen_version=parse_id(request.form.get("version_seen")))
        if outcome.ok:
            flash(f"Status changed to {status.name}.", "success")
        return _details(customer)


class PhotoPage(CustomerPage):
    """Upload (or remove) the customer's photo from the details page."""

    template = None  # answers with a redirect to the details page
    form = None  # the file input "photo", or the button "remove"; the hidden version_seen
    right = None
    post_right = Right.EDIT

    def post(self, customer: Customer):
        storage = Path(current_app.config["PHOTO_DIR"])
        removing = bool(request.form.get("remove"))
        seen = parse_id(request.form.get("version_seen"))  # the customer's, as the details page showed it
        with panel_write() as outcome:
            if removing:
                remove_photo(db.session, customer, actor(), storage, seen_version=seen)
            else:
                upload = request.files.get("photo")
                store_photo(db.session, customer, actor(), upload.read() if upload else b"", storage,
                            seen_version=seen)
        if outcome.ok:
            flash("The photo was removed." if removing else "The photo was saved.", "success")
        return _details(customer)


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
    delete confirmation instead of Flask-Admin's bare delete), and on the details page the
    statuses of the Change Status dialog and the possible duplicates to merge."""

    def get_list_row_actions(self):
        actions = [a for a in super().get_list_row_actions() if not isinstance(a, DeleteRowAction)]
        actions.append(EndpointLinkRowAction("fa fa-history", "customer_history.index", "History"))
        if self.can_delete:
            actions.append(EndpointLinkRowAction("fa fa-trash", "customer_delete_confirm.index", "Delete…"))
        return actions

    def render(self, template, **kwargs):
        if template == self.details_template:
            statuses = select(CustomerStatus).order_by(CustomerStatus.name)
            kwargs["statuses"] = db.session.scalars(statuses).all()
            model = kwargs["model"]
            # An existing duplicate pair: offer to merge it (services.merge).
            probe = customer_probe(model, save_options().phone_region)
            kwargs["possible_duplicates"] = [
                c for c in find_duplicates(db.session, actor(), probe, exclude_customer_id=model.id)
                if c.visible and c.record == "customer"]
        return super().render(template, **kwargs)
