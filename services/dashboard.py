"""Figures for the admin home page."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Contact, Customer, Operator, Request


def dashboard_counts(session: Session) -> dict[str, int]:
    """Counts of customers, contacts, requests and active operators, in one round trip."""
    row = session.execute(
        select(
            select(func.count()).select_from(Customer).scalar_subquery(),
            select(func.count()).select_from(Contact).scalar_subquery(),
            select(func.count()).select_from(Request).scalar_subquery(),
            select(func.count()).select_from(Operator).where(Operator.is_active.is_(True))
            .scalar_subquery(),
        )
    ).one()
    return dict(zip(("customers", "contacts", "requests", "operators"), row, strict=True))
