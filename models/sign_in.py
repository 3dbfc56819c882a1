"""Failed sign-ins, per account and address and per address, shared by every process of the desk."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Model


class SignInThrottle(Model):
    """One typed account (the e-mail as typed, lower-case; unknown ones too, so the answers do
    not tell which accounts exist) and one address (an IPv6 /64 counts as one): the failures of
    the current count, the time of the last of them (the count is forgotten a window after it)
    and, after a successful sign-in from there, until when the address is familiar to the
    account. Services.sign_in_throttle owns the rules; rows whose count is forgotten and that are
    not familiar any more are pruned.

    `last_failure_at` is stored in the column "window_started_at" (its name from when the window
    was counted from the first failure): a sliding window needs the last failure, and the
    attribute is renamed rather than the column, so no migration is needed."""

    __tablename__ = "sign_in_throttle"
    __table_args__ = (UniqueConstraint("account", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(254), nullable=False)
    address: Mapped[str] = mapped_column(String(64), nullable=False)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    last_failure_at: Mapped[datetime | None] = mapped_column("window_started_at", DateTime, index=True)
    familiar_until: Mapped[datetime | None] = mapped_column(DateTime)


class SignInAddressFailures(Model):
    """Failed sign-ins from one address (an IPv6 /64 counts as one) over every account, in the
    current fixed window (LOGIN_RATE_LIMIT, e.g. 10 per minute), and the time of the last of them
    (beyond the limit the address waits a delay after it): the count a spraying address meets
    however many accounts it tries, shared by every process of the desk. Correct sign-ins never
    count. Services.sign_in_throttle owns the rule; rows of past windows are pruned."""

    __tablename__ = "sign_in_address_failures"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    window_started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime)
