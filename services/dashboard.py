"""Figures for the admin home page."""

from __future__ import annotations

from sqlalchemy import func, select

from models import Contact, Customer, Operator, Request
from services.access import Right, customer_condition
from services.transactions import DbSession


def dashboard_counts(session: DbSession, actor: Operator) -> dict[str, int]:
    """Counts of the customers `actor` may view, their contacts and requests, and of active
    operators — in one round trip."""
    visible = select(Customer.id).where(customer_condition(session, actor, Right.VIEW))
    row = session.execute(
        select(
            select(func.count()).select_from(Customer).where(Customer.id.in_(visible))
            .scalar_subquery(),
            select(func.count()).select_from(Contact).where(Contact.customer_id.in_(visible))
            .scalar_subquery(),
            select(func.count()).select_from(Request).where(Request.customer_id.in_(visible))
            .scalar_subquery(),
            select(func.count()).select_from(Operator).where(Operator.is_active.is_(True))
            .scalar_subquery(),
        )
    ).one()
    return dict(zip(("customers", "contacts", "requests", "operators"), row, strict=True))
