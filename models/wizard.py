"""Wizard drafts: a classic creation in progress, kept on the server per operator."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, TimestampMixin


class WizardDraft(TimestampMixin, Model):
    """The steps typed so far (`data`, secrets inside encrypted) and the furthest step
    reached, so a logout, a timeout or a restart loses nothing.

    A draft is saved once: its Save claims it by setting `saved_at` with a conditional UPDATE in
    the unit of work that creates the customer (wizards.drafts.claim), so a second Save of the
    same draft (a double click, another tab) finds it claimed and creates nothing. The saved
    draft stays behind for a day as a pointer to the customer it made (`customer_id`, emptied
    if that customer is deleted), so the second Save lands where the first one did."""

    __tablename__ = "wizard_draft"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operator.id", ondelete="CASCADE"), nullable=False, index=True
    )
    step: Mapped[str] = mapped_column(String(40), nullable=False)
    data: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    saved_at: Mapped[datetime | None] = mapped_column(DateTime)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))

    operator = relationship("Operator")
