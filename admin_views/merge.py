"""Merging customers in the panel: pick the other record, choose the winning value per field,
decide the conflicts, merge, and undo from the result page. The rules are services.merge."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from sqlalchemy import select

from admin_views.base import actor, flash_errors
from admin_views.ids import parse_id
from admin_views.row_access import customer_scope
from extensions import db
from models import AuditEvent, Customer
from services.access import Right
from services.errors import FORM, DomainError, PermissionDenied, ValidationFailed
from services.merge import merge_customers, merge_plan, survivor_of, undo_merge
from services.search import customer_search_conditions

LABELS = {"department_id": "Department", "manager_id": "Manager", "sla_level_id": "SLA level",
          "site_id": "Site", "building_id": "Building", "status_id": "Status", "location_code": "Location ID",
          "registration_number": "Company ID (IČO)", "vat_id": "VAT ID", "email": "E-mail",
          "secondary_email": "Secondary e-mail"}


def shown(customer: Customer, name: str) -> str:
    """A field's value as people read it (names of related records, labels of choices)."""
    value = getattr(customer, name.removesuffix("_id")) if name.endswith("_id") else getattr(customer, name)
    if value is None or value == "":
        return "—"
    for attribute in ("label", "display_name", "name"):
        if getattr(value, attribute, None):
            return getattr(value, attribute)
    return str(value)


class MergeMixin:
    def _handle_view(self, name, **kwargs):
        # A merged-away record's old links lead to the customer it was merged into.
        record_id = parse_id(request.args.get("id")) if request.method == "GET" else None
        if record_id is not None:
            customer = db.session.get(Customer, record_id)
            if customer is not None and customer.merged_into_id is not None:
                alive = survivor_of(db.session, customer)
                args = {**request.args.to_dict(), "id": alive.id}
                return redirect(url_for(request.endpoint, **args))
        return super()._handle_view(name, **kwargs)

    @action("merge", "Merge the two selected")
    def action_merge(self, ids):
        chosen = [i for i in map(parse_id, ids) if i is not None]
        if len(chosen) != 2:
            flash("Select exactly two customers to merge.", "error")
            return redirect(url_for(".index_view"))
        return redirect(url_for(".merge_view", survivor=chosen[0], other=chosen[1]))

    def _editable(self, customer_id):
        customer = db.session.scalar(select(Customer).where(Customer.id == (parse_id(customer_id) or 0),
                                                            customer_scope(Right.VIEW)))
        if customer is None:
            abort(404)
        return customer

    @expose("/merge/", methods=("GET", "POST"))
    def merge_view(self):
        survivor = self._editable(request.values.get("survivor"))
        other_id = request.values.get("other")
        if not other_id:
            query = request.args.get("q", "")
            found = db.session.scalars(select(Customer).where(
                customer_scope(Right.EDIT), Customer.kind == survivor.kind, Customer.id != survivor.id,
                *customer_search_conditions(query)).order_by(Customer.sort_name).limit(20)).all() \
                if query else []
            return self.render("admin/customer_merge_pick.html", survivor=survivor, found=found, q=query)
        other = self._editable(other_id)
        box = current_app.extensions["secret_box"]
        try:
            plan = merge_plan(db.session, actor(), survivor, other, box)
        except PermissionDenied:
            abort(403)
        except DomainError as exc:
            flash(str(exc), "error")
            return redirect(url_for(".details_view", id=survivor.id))
        if request.method == "POST":
            choices = {c.name: request.form.get(f"field_{c.name}", c.proposed) for c in plan.fields}
            decisions = {name: request.form.get(f"decide_{name}", "") for name in plan.conflicts}
            seen = (parse_id(request.form.get("survivor_version")),
                    parse_id(request.form.get("other_version")))
            try:
                event = merge_customers(db.session, actor(), survivor, other, box, choices=choices,
                                        decisions=decisions, seen_versions=seen)
            except PermissionDenied as exc:
                db.session.rollback()
                flash(str(exc), "error")
                abort(403)
            except ValidationFailed as exc:
                db.session.rollback()
                flash_errors({FORM: exc.errors.get(FORM, [])} if FORM in exc.errors else exc.errors)
                plan = merge_plan(db.session, actor(), survivor, other, box)
            else:
                flash(f"{other.display_name} was merged into {survivor.display_name}.", "success")
                return redirect(url_for(".merge_done_view", event_id=event.id))
        return self.render("admin/customer_merge.html", plan=plan, shown=shown, labels=LABELS,
                           picked=request.form if request.method == "POST" else {})

    @expose("/merge/done/<int:event_id>")
    def merge_done_view(self, event_id: int):
        event = db.session.get(AuditEvent, event_id)
        if event is None or event.action != "merge":
            abort(404)
        survivor = self._editable(event.entity_id)
        undo = (event.changes or {}).get("undo", {})
        return self.render("admin/customer_merge_done.html", event=event, survivor=survivor, undo=undo,
                           may_undo=actor().is_maintainer and not undo.get("undone"))

    @expose("/merge/undo/<int:event_id>", methods=("POST",))
    def merge_undo_view(self, event_id: int):
        event = db.session.get(AuditEvent, event_id)
        if event is None:
            abort(404)
        try:
            other = undo_merge(db.session, actor(), event)
        except PermissionDenied:
            abort(403)
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(url_for(".merge_done_view", event_id=event_id))
        flash(f"The merge was undone: {other.display_name} is back.", "success")
        return redirect(url_for(".details_view", id=other.id))
