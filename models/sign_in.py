"""Failed sign-ins counted per account and address, shared by every process of the desk."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Model


class SignInThrottle(Model):
    """One typed account (the e-mail as typed, lower-case; unknown ones too, so the answers do
    not tell which accounts exist) and one address (an IPv6 /64 counts as one): the failures of
    the current window and, after a successful sign-in from there, until when the address is
    familiar to the account. Services.sign_in_throttle owns the rules; rows whose window has
    passed and that are not familiar any more are pruned."""

    __tablename__ = "sign_in_throttle"
    __table_args__ = (UniqueConstraint("account", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(254), nullable=False)
    address: Mapped[str] = mapped_column(String(64), nullable=False)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    window_started_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    familiar_until: Mapped[datetime | None] = mapped_column(DateTime)
