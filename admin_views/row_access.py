"""Row-level access for model views, from the one policy in services.access.

Flask-Admin reads rows through several doors: the list and its count, `get_one` (edit,
details, delete), export, bulk actions and ajax loaders. Each one here applies the policy's
SQL condition inside its own query. A record the operator may not view is NotFound (404: its
existence is not revealed); one they may view but not change is PermissionDenied (403). The
app's refusal pages (admin_views.refusals) answer both.
"""

from __future__ import annotations

from typing import ClassVar

from flask import g, request
from sqlalchemy import select

from admin_views.base import actor
from admin_views.ids import parse_id
from extensions import db
from i18n import _
from services.access import Right, can, customer_condition
from services.errors import NotFound, PermissionDenied


def visible_label(related) -> str:
    """The name of a related customer (a manager) — or "(restricted)" when the operator may not
    view it: showing a customer through another one's page must not bypass the policy."""
    if related is None:
        return ""
    cache = g.setdefault("viewable_customers", {})
    if related.id not in cache:
        cache[related.id] = can(db.session, actor(), related.id, Right.VIEW)
    return related.display_name if cache[related.id] else _("(restricted)")


def customer_scope(right: Right):
    """Condition on Customer for the signed-in operator."""
    return customer_condition(db.session, actor(), right)


class RowAccessMixin:
    """Subclasses define `scope(right)`: a WHERE condition on their model."""

    # The right each record endpoint of the view needs; any other reads with the view right.
    endpoint_rights: ClassVar[dict[str, Right]] = {
        "details_view": Right.VIEW,
        "edit_view": Right.EDIT,
        "delete_view": Right.DELETE,
    }

    def scope(self, right: Right):
        raise NotImplementedError

    def required_right(self) -> Right:
        """The right the current endpoint declares (view when it declares none)."""
        return self.endpoint_rights.get((request.endpoint or "").rsplit(".", 1)[-1], Right.VIEW)

    def get_query(self):
        return super().get_query().filter(self.scope(Right.VIEW))

    def get_count_query(self):
        return super().get_count_query().filter(self.scope(Right.VIEW))

    def get_one(self, id):
        pk = parse_id(id)
        model = self.model
        row = None if pk is None else db.session.scalar(
            select(model).where(model.id == pk, self.scope(Right.VIEW)))
        if row is None:
            raise NotFound(_("No such record."))
        right = self.required_right()
        if right != Right.VIEW and db.session.scalar(
                select(model.id).where(model.id == pk, self.scope(right))) is None:
            raise PermissionDenied({Right.EDIT: _("You may view this record but not edit it."),
                                    Right.DELETE: _("You may view this record but not delete it.")}
                                   .get(right, _("You may not do this with this record.")))
        return row

    def delete_scope(self):
        return [self.scope(Right.DELETE)]
