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
from i18n import _, _l
from models import AuditEvent, Customer
from services.access import Right, load_customer
from services.errors import FORM, DomainError, MergedAway
from services.merge import merge_customers, merge_plan, propose_survivor, undo_merge, why_not_undone
from services.search import customer_search_conditions
from services.wording import field_label, shown_value

ALREADY_MERGED = _l("This customer was already merged into another one; merge that one instead.")


def _relation(name: str) -> str | None:
    """The relationship a foreign-key column is read through (`site_id` → `site`); None for a
    plain column (`vat_id` is a VAT ID, not a reference)."""
    column = Customer.__table__.columns.get(name)
    return name.removesuffix("_id") if column is not None and column.foreign_keys else None


def label(name: str) -> str:
    """A field's label in the users' words (services.wording), by its relation's name for a key."""
    return field_label("customer", _relation(name) or name)


def shown(customer: Customer, name: str) -> str:
    """A field's value as people read it (services.wording): a related record by its name, a
    choice by its label, a phone formatted; "—" for nothing. A manager that is one of the two
    records of the merge reads as nothing (the merge never keeps it: services.merge)."""
    relation = _relation(name)
    if relation is None:
        return shown_value("customer", name, getattr(customer, name))
    related = getattr(customer, relation)
    if related is None:
        return shown_value("customer", relation, None)
    return shown_value("customer", relation, str(getattr(related, "name", None) or related))


def merge_party(reference: object, right: Right = Right.EDIT) -> Customer:
    """A customer of a merge, read through the loader (the edit right: a merge edits both). A
    merged-away record is not followed to its survivor as other pages do — the merge would
    silently become another one — but refused with a message."""
    try:
        return load_customer(db.session, actor(), reference, right)
    except MergedAway:
        raise DomainError(str(ALREADY_MERGED)) from None


def ordered(first: Customer, second: Customer, keep: object) -> tuple[Customer, Customer]:
    """(survivor, other): the one the person chose to keep (`keep`, after a swap or on the form),
    else the one services.merge proposes — whichever page the merge was started from."""
    kept = parse_id(keep) if keep else None
    if kept == second.id:
        return second, first
    if kept == first.id:
        return first, second
    return propose_survivor(db.session, first, second)


class MergeMixin:
    """The merge pages of CustomerView (its `render`); they lead to the customer page (its Overview)."""

    render: Callable[..., str]

    @action("merge", _l("Merge the two selected"))
    def action_merge(self, ids):
        chosen = [i for i in map(parse_id, ids) if i is not None]
        if len(chosen) != 2:
            flash(_("Select exactly two customers to merge."), "error")
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
        # A POST merges the two as the page showed them (its hidden `keep`, its `survivor`).
        posted = request.form.get("survivor") if request.method == "POST" else None
        keep = request.values.get("keep") or posted
        survivor, other = ordered(survivor, other, keep)
        box = current_app.extensions["secret_box"]
        # Who may merge what (two kinds, the same record, no edit right): the refusal page.
        plan = merge_plan(db.session, actor(), survivor, other, box)
        if request.method == "POST":
            choices = {c.name: request.form.get(f"field_{c.name}", c.proposed) for c in plan.fields}
            decisions = {name: request.form.get(f"decide_{name}", "") for name in plan.conflicts}
            seen = (parse_id(request.form.get("survivor_version")),
                    parse_id(request.form.get("other_version")))
            with panel_write(flash_fields=False) as outcome:  # the page shows the messages itself
                event = merge_customers(db.session, actor(), survivor, other, box, choices=choices,
                                        decisions=decisions, seen_versions=seen)
            if outcome.ok:
                return redirect(url_for(".merge_done_view", event_id=event.id))
            plan = merge_plan(db.session, actor(), survivor, other, box)  # as they are after the refusal
        errors = outcome.errors if request.method == "POST" else {}
        rows = {f.name for f in plan.fields if f.survivor != f.other}
        # A message about a field shown on the page goes to its row; every other one on top.
        page_errors = [m for name, messages in errors.items() if name == FORM or name not in rows
                       for m in messages]
        return self.render("admin/customer_merge.html", plan=plan, shown=shown, label=label,
                           chosen=bool(keep), picked=request.form if request.method == "POST" else {},
                           field_errors={k: v for k, v in errors.items() if k in rows},
                           page_errors=page_errors)

    @expose("/merge/done/<int:event_id>")
    def merge_done_view(self, event_id: int):
        event = db.session.get(AuditEvent, event_id)
        if event is None or event.action != "merge":
            abort(404)
        try:
            survivor, now = load_customer(db.session, actor(), event.entity_id, Right.VIEW), None
        except MergedAway as exc:
            # Merged on into another record since: this page still tells what this merge did,
            # and where the record is now (the loader said the reader may see both).
            survivor = db.session.get(Customer, event.entity_id) or abort(404)
            now = load_customer(db.session, actor(), exc.survivor_id, Right.VIEW)
        undo = (event.changes or {}).get("undo")
        undo = undo if isinstance(undo, dict) else {}
        merged = db.session.get(Customer, undo.get("other")) if isinstance(undo.get("other"), int) else None
        # Older events did not say which values were cleared rather than taken.
        taken_names = undo.get("taken") if "taken" in undo else list(undo.get("fields") or {})
        taken = [label(name) for name in taken_names or ()]
        cleared = [label(name) for name in undo.get("cleared") or ()]
        blocker = why_not_undone(db.session, event)
        return self.render("admin/customer_merge_done.html", event=event, survivor=survivor, merged=merged,
                           now=now, undo=undo, taken=taken, cleared=cleared,
                           may_undo=actor().is_maintainer and blocker is None,
                           blocker=blocker if actor().is_maintainer and not undo.get("undone") else None)

    @expose("/merge/undo/<int:event_id>", methods=("POST",))
    def merge_undo_view(self, event_id: int):
        event = db.session.get(AuditEvent, event_id)
        if event is None or event.action != "merge":
            abort(404)
        with panel_write() as outcome:
            other = undo_merge(db.session, actor(), event)
        if not outcome.ok:
            return redirect(url_for(".merge_done_view", event_id=event_id))
        flash(_("The merge was undone: %(name)s (no. %(number)s) is back.", name=other.display_name,
                number=other.id), "success")
        return redirect(url_for("customer_overview.index", id=other.id))

