"""Merging customers in the panel: pick the other record, choose the winning value per field,
decide the conflicts, merge, and undo from the result page. The rules are services.merge; the
records come through the one loader (services.access.load_customer) and every write runs in
admin_views.refusals.panel_write."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from sqlalchemy import select

from admin_views.base import actor
from admin_views.ids import parse_id
from admin_views.refusals import panel_write
from admin_views.row_access import customer_scope
from extensions import db
from models import AuditEvent, Customer
from services.access import Right, load_customer
from services.errors import DomainError, MergedAway
from services.merge import merge_customers, merge_plan, undo_merge
from services.search import customer_search_conditions

LABELS = {"department_id": "Department", "manager_id": "Manager", "sla_level_id": "SLA level",
          "site_id": "Site", "building_id": "Building", "status_id": "Status", "location_code": "Location ID",
          "registration_number": "Company ID (IČO)", "vat_id": "VAT ID", "email": "E-mail",
          "secondary_email": "Secondary e-mail"}
ALREADY_MERGED = "This customer was already merged into another one; merge that one instead."


def shown(customer: Customer, name: str) -> str:
    """A field's value as people read it (names of related records, labels of choices). Only a
    foreign key is read through its relation (`site_id` → `site`); `vat_id` is a plain column."""
    column = Customer.__table__.columns.get(name)
    relation = name.removesuffix("_id") if column is not None and column.foreign_keys else None
    value = getattr(customer, relation) if relation else getattr(customer, name)
    if value is None or value == "":
        return "—"
    for attribute in ("label", "display_name", "name"):
        if getattr(value, attribute, None):
            return getattr(value, attribute)
    return str(value)


def merge_party(reference: object, right: Right = Right.EDIT) -> Customer:
    """A customer of a merge, read through the loader (the edit right: a merge edits both). A
    merged-away record is not followed to its survivor as other pages do — the merge would
    silently become another one — but refused with a message."""
    try:
        return load_customer(db.session, actor(), reference, right)
    except MergedAway:
        raise DomainError(ALREADY_MERGED) from None


class MergeMixin:
    """The merge pages of CustomerView (its `render`, its `.details_view`)."""

    render: Callable[..., str]

    @action("merge", "Merge the two selected")
    def action_merge(self, ids):
        chosen = [i for i in map(parse_id, ids) if i is not None]
        if len(chosen) != 2:
            flash("Select exactly two customers to merge.", "error")
            return redirect(url_for(".index_view"))
        return redirect(url_for(".merge_view", survivor=chosen[0], other=chosen[1]))

    @expose("/merge/", methods=("GET", "POST"))
    def merge_view(self):
        survivor = merge_party(request.values.get("survivor"))
        other_id = request.values.get("other")
        if not other_id:
            query = request.args.get("q", "")
            found = db.session.scalars(select(Customer).where(
                customer_scope(Right.EDIT), Customer.kind == survivor.kind, Customer.id != survivor.id,
                *customer_search_conditions(query)).order_by(Customer.sort_name).limit(20)).all() \
                if query else []
            return self.render("admin/customer_merge_pick.html", survivor=survivor, found=found, q=query)
        other = merge_party(other_id)
        box = current_app.extensions["secret_box"]
        # Who may merge what (two kinds, the same record, no edit right): the refusal page.
        plan = merge_plan(db.session, actor(), survivor, other, box)
        if request.method == "POST":
            choices = {c.name: request.form.get(f"field_{c.name}", c.proposed) for c in plan.fields}
            decisions = {name: request.form.get(f"decide_{name}", "") for name in plan.conflicts}
            seen = (parse_id(request.form.get("survivor_version")),
                    parse_id(request.form.get("other_version")))
            with panel_write() as outcome:
                event = merge_customers(db.session, actor(), survivor, other, box, choices=choices,
                                        decisions=decisions, seen_versions=seen)
            if outcome.ok:
                flash(f"{other.display_name} was merged into {survivor.display_name}.", "success")
                return redirect(url_for(".merge_done_view", event_id=event.id))
            plan = merge_plan(db.session, actor(), survivor, other, box)  # as they are after the refusal
        return self.render("admin/customer_merge.html", plan=plan, shown=shown, labels=LABELS,
                           picked=request.form if request.method == "POST" else {})

    @expose("/merge/done/<int:event_id>")
    def merge_done_view(self, event_id: int):
        event = db.session.get(AuditEvent, event_id)
        if event is None or event.action != "merge":
            abort(404)
        survivor = merge_party(event.entity_id, Right.VIEW)
        undo = (event.changes or {}).get("undo", {})
        return self.render("admin/customer_merge_done.html", event=event, survivor=survivor, undo=undo,
                           may_undo=actor().is_maintainer and not undo.get("undone"))

    @expose("/merge/undo/<int:event_id>", methods=("POST",))
    def merge_undo_view(self, event_id: int):
        event = db.session.get(AuditEvent, event_id)
        if event is None or event.action != "merge":
            abort(404)
        with panel_write() as outcome:
            other = undo_merge(db.session, actor(), event)
        if not outcome.ok:
            return redirect(url_for(".merge_done_view", event_id=event_id))
        flash(f"The merge was undone: {other.display_name} is back.", "success")
        return redirect(url_for(".details_view", id=other.id))

