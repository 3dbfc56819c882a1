"""Computers registered by the C-Monitor agent under a customer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, db, utcnow


class Computer(Model):
    """A computer of a customer. `settings_snapshot` is the effective settings it received at
    registration (global defaults overridden by the customer's), its secrets sealed
    (services.secrets.seal). `agent_credential_hash` is the SHA-256 of the credential its agent
    fetches the settings with: the credential is shown once, in the registration's answer, and
    stored nowhere else (services.computers)."""

    __tablename__ = "computer"
    __table_args__ = (UniqueConstraint("customer_id", "hostname"), {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    hostname: Mapped[str] = mapped_column(String(255), nullable=False)
    operating_system: Mapped[str | None] = mapped_column(String(120))
    agent_version: Mapped[str | None] = mapped_column(String(40))
    registered_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The effective settings it received (secrets encrypted), and when: changed only on purpose
    # ("push current settings"), never by a later change of the customer's settings.
    settings_snapshot: Mapped[dict | None] = mapped_column(JSON)
    settings_received_at: Mapped[datetime | None] = mapped_column(DateTime)
    agent_credential_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)

    customer = relationship("Customer", backref=db.backref("computers", passive_deletes="all"))

    def __str__(self) -> str:
        return self.hostname
