"""The access policy: which customers an operator may view, edit or delete.

One rule, expressed as a SQL condition on `customer`, so every list, count, export, picker and
lookup applies it inside its own single query. An operator reaches a customer when they are
assigned to it or created it; the maintainer's ownership rights (GlobalSettings) extend each
right separately to members of the assigned operators' teams and to the assigned operators'
(direct) managers. Maintainers reach every customer.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlalchemy.orm import Session

from models import Customer, GlobalSettings, Operator, customer_operator, operator_team
from services.errors import PermissionDenied


class Right(StrEnum):
    VIEW = "view"
    EDIT = "edit"
    DELETE = "delete"


def ownership_rights(session: Session) -> GlobalSettings:
    """The global settings row holding the ownership rights (defaults when it is missing)."""
    return session.get(GlobalSettings, 1) or GlobalSettings(
        view_by_team_members=False, view_by_managers=False, edit_by_team_members=False,
        edit_by_managers=False, delete_by_team_members=False, delete_by_managers=False,
    )


def customer_condition(session: Session, actor: Operator | None, right: Right) -> ColumnElement[bool]:
    """WHERE condition on Customer: the rows `actor` has `right` on."""
    if actor is None or not actor.is_active:
        return false()
    alive = Customer.merged_into_id.is_(None)  # a merged-away tombstone is nobody's to list or open
    if actor.is_maintainer:
        return alive
    rights = ownership_rights(session)
    assigned = customer_operator.c
    conditions = [
        Customer.created_by_id == actor.id,
        exists().where(assigned.customer_id == Customer.id, assigned.operator_id == actor.id),
    ]
    if getattr(rights, f"{right}_by_team_members"):
        my_teams = select(operator_team.c.team_id).where(operator_team.c.operator_id == actor.id)
        conditions.append(exists().where(
            assigned.customer_id == Customer.id,
            operator_team.c.operator_id == assigned.operator_id,
            operator_team.c.team_id.in_(my_teams),
        ))
    if getattr(rights, f"{right}_by_managers"):
        conditions.append(exists().where(
            assigned.customer_id == Customer.id,
            Operator.id == assigned.operator_id,
            Operator.manager_id == actor.id,
        ))
    return and_(alive, or_(*conditions))


def can(session: Session, actor: Operator | None, customer_id: int | None, right: Right) -> bool:
    """Whether `actor` has `right` on the customer (one query)."""
    if customer_id is None:
        return False
    return bool(session.scalar(select(exists().where(
        and_(Customer.id == customer_id, customer_condition(session, actor, right))))))


def require(session: Session, actor: Operator | None, customer_id: int | None, right: Right) -> None:
    """Raise PermissionDenied unless `actor` has `right` on the customer."""
    if not can(session, actor, customer_id, right):
        raise PermissionDenied(f"You may not {right} this customer.")


def require_maintainer(actor: Operator | None, what: str) -> None:
    if actor is None or not actor.is_maintainer:
        raise PermissionDenied(f"Only a maintainer may {what}.")
