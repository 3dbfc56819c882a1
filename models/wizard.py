"""Wizard drafts: a classic creation in progress, kept on the server per operator."""

from __future__ import annotations

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, TimestampMixin


class WizardDraft(TimestampMixin, Model):
    """The steps typed so far (`data`, secrets inside encrypted) and the furthest step
    reached, so a logout, a timeout or a restart loses nothing."""

    __tablename__ = "wizard_draft"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operator.id", ondelete="CASCADE"), nullable=False, index=True
    )
    step: Mapped[str] = mapped_column(String(40), nullable=False)
    data: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)

    operator = relationship("Operator")
