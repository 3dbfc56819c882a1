"""The access policy: which customers an operator may view, edit or delete.

One rule, expressed as a SQL condition on `customer`, so every list, count, export, picker and
lookup applies it inside its own single query. An operator reaches a customer when they are
assigned to it or created it; the maintainer's ownership rights (GlobalSettings) extend each
right separately to members of the assigned operators' teams and to the assigned operators'
(direct) managers. Maintainers reach every customer.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true

from i18n import _
from models import Customer, GlobalSettings, Operator, customer_operator, operator_team
from services.errors import MergedAway, NotFound, PermissionDenied
from services.transactions import DbSession


class Right(StrEnum):
    VIEW = "view"
    EDIT = "edit"
    DELETE = "delete"


def ownership_rights(session: DbSession) -> GlobalSettings:
    """The global settings row holding the ownership rights (defaults when it is missing)."""
    return session.get(GlobalSettings, 1) or GlobalSettings(
        view_by_team_members=False, view_by_managers=False, edit_by_team_members=False,
        edit_by_managers=False, delete_by_team_members=False, delete_by_managers=False,
    )


def customer_condition(session: DbSession, actor: Operator | None, right: Right) -> ColumnElement[bool]:
    """WHERE condition on Customer: the rows `actor` has `right` on."""
    alive = Customer.merged_into_id.is_(None)  # a merged-away tombstone is nobody's to list or open
    return and_(alive, _reach_condition(session, actor, right))


def _reach_condition(session: DbSession, actor: Operator | None, right: Right) -> ColumnElement[bool]:
    """The ownership part of `customer_condition`, true of a merged-away tombstone too: whom the
    record (still) belongs to."""
    if actor is None or not actor.is_active:
        return false()
    if actor.is_maintainer:
        return true()
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
    return or_(*conditions)


def can(session: DbSession, actor: Operator | None, customer_id: int | None, right: Right) -> bool:
    """Whether `actor` has `right` on the customer (one query)."""
    if customer_id is None:
        return False
    return bool(session.scalar(select(exists().where(
        and_(Customer.id == customer_id, customer_condition(session, actor, right))))))


def require(session: DbSession, actor: Operator | None, customer_id: int | None, right: Right) -> None:
    """Raise PermissionDenied unless `actor` has `right` on the customer."""
    if not can(session, actor, customer_id, right):
        raise PermissionDenied({Right.VIEW: _("You may not view this customer."),
                                Right.EDIT: _("You may not edit this customer."),
                                Right.DELETE: _("You may not delete this customer.")}[right])


def require_maintainer(actor: Operator | None, what: str) -> None:
    """PermissionDenied unless `actor` is a maintainer; `what` (translated by the caller) ends
    the sentence "Only a maintainer may …"."""
    if actor is None or not actor.is_maintainer:
        raise PermissionDenied(_("Only a maintainer may %(what)s.", what=what))


MAX_ID = 2**31 - 1  # PostgreSQL INTEGER: a larger number names no row and must not reach SQL


def _survivor_id(session: DbSession, customer_id: int) -> int | None:
    """Follow merged_into_id to the customer still alive (chains of merges too)."""
    seen: set[int] = set()
    current: int | None = customer_id
    while current is not None and current not in seen:
        seen.add(current)
        merged_into = session.scalar(select(Customer.merged_into_id).where(Customer.id == current))
        if merged_into is None:
            return current
        current = merged_into
    return None


def load_customer(session: DbSession, actor: Operator | None, customer_id: object,
                  right: Right = Right.VIEW) -> Customer:
    """This customer for this actor with this right — the one loader of every door.

    Raises NotFound for an id that names nothing or a customer the actor may not view (its
    existence is not revealed), PermissionDenied when they may view it but lack `right`, and
    MergedAway for a merged-away id only when the actor may view the survivor and could view
    the merged-away record itself (by its own operators, creator, team or manager rights): to
    anybody else the old id is NotFound, so the redirect reveals neither the merge nor the
    survivor. `actor` None is the system itself (CLI, jobs), bound by no ownership."""
    pk = customer_id if isinstance(customer_id, int) else _parse_id(customer_id)
    if pk is None or not 0 < pk <= MAX_ID:
        raise NotFound(_("No such customer."))
    if actor is None:
        row = session.get(Customer, pk)
    else:
        row = session.scalar(select(Customer).where(Customer.id == pk,
                                                    customer_condition(session, actor, Right.VIEW)))
    if row is None or row.merged_into_id is not None:
        survivor = _survivor_id(session, pk)
        if survivor is not None and survivor != pk and (actor is None or (
                _reaches(session, actor, pk) and can(session, actor, survivor, Right.VIEW))):
            raise MergedAway(survivor)
        raise NotFound(_("No such customer."))
    if actor is not None and right != Right.VIEW and not can(session, actor, pk, right):
        if session.scalar(select(Customer.merged_into_id).where(Customer.id == pk)) is not None:
            # Merged away by a merge that committed since the record was read above (SQLite reads
            # each statement afresh): answered as if read now, not as a missing right.
            return load_customer(session, actor, pk, right)
        raise PermissionDenied(_("You may view this customer but not edit it.") if right == Right.EDIT
                               else _("You may view this customer but not delete it."))
    return row


def _reaches(session: DbSession, actor: Operator, customer_id: int) -> bool:
    """Whether `actor` could view the record as it stands, merged away or not."""
    return bool(session.scalar(select(exists().where(
        and_(Customer.id == customer_id, _reach_condition(session, actor, Right.VIEW))))))


def _parse_id(value: object) -> int | None:
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 12 else None
