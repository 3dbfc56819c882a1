"""Row-level access for model views, from the one policy in services.access.

Flask-Admin reads rows through several doors: the list and its count, `get_one` (edit,
details, delete), export, bulk actions and ajax loaders. Each one here applies the policy's
SQL condition inside its own query. A record the operator may not view answers 404 (its
existence is not revealed); one they may view but not change answers 403.
"""

from __future__ import annotations

from flask import abort, g, request
from sqlalchemy import select

from admin_views.base import actor
from admin_views.ids import parse_id
from extensions import db
from services.access import Right, can, customer_condition

ENDPOINT_RIGHTS = {"edit_view": Right.EDIT, "delete_view": Right.DELETE,
                   "delete_confirm_view": Right.DELETE, "status_view": Right.EDIT,
                   "photo_view": Right.EDIT, "portal_view": Right.EDIT}


def visible_label(related) -> str:
    """The name of a related customer (a manager) — or "(restricted)" when the operator may not
    view it: showing a customer through another one's page must not bypass the policy."""
    if related is None:
        return ""
    cache = g.setdefault("viewable_customers", {})
    if related.id not in cache:
        cache[related.id] = can(db.session, actor(), related.id, Right.VIEW)
    return related.display_name if cache[related.id] else "(restricted)"


def customer_scope(right: Right):
    """Condition on Customer for the signed-in operator."""
    return customer_condition(db.session, actor(), right)


class RowAccessMixin:
    """Subclasses define `scope(right)`: a WHERE condition on their model."""

    def scope(self, right: Right):
        raise NotImplementedError

    def get_query(self):
        return super().get_query().filter(self.scope(Right.VIEW))

    def get_count_query(self):
        return super().get_count_query().filter(self.scope(Right.VIEW))

    def get_one(self, id):
        pk = parse_id(id)
        if pk is None:
            abort(404)
        model = self.model
        row = db.session.scalar(select(model).where(model.id == pk, self.scope(Right.VIEW)))
        if row is None:
            abort(404)
        right = ENDPOINT_RIGHTS.get((request.endpoint or "").rsplit(".", 1)[-1], Right.VIEW)
        if right != Right.VIEW and db.session.scalar(
            select(model.id).where(model.id == pk, self.scope(right))
        ) is None:
            abort(403)
        return row

    def delete_scope(self):
        return [self.scope(Right.DELETE)]
