"""Portal accounts: the credentials a customer or contact uses on the customer portal."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, TimestampMixin, db


class PortalAccount(TimestampMixin, Model):
    """Portal credentials of exactly one customer or one contact (a customer record itself
    stores no credentials). Passwords and reset tokens are stored only as hashes. `version`
    counts its changes: a change names the version it was based on (services.versions)."""

    __tablename__ = "portal_account"
    __table_args__ = (
        CheckConstraint(
            "(customer_id IS NULL) <> (contact_id IS NULL)", name="one_owner"
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), unique=True
    )
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), unique=True
    )
    username: Mapped[str] = mapped_column(String(120), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    security_group_id: Mapped[int | None] = mapped_column(ForeignKey("security_group.id"))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    reset_token_hash: Mapped[str | None] = mapped_column(String(64))
    reset_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Raised by every sign-out: part of the session cookie's fingerprint (services.portal_sessions),
    # so signing out ends every session of the account, a copied cookie too.
    session_epoch: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # Raised by every UPDATE: a reset, enable or disable names the version the page showed.
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")

    __mapper_args__ = {"version_id_col": version}

    customer = relationship("Customer", backref=db.backref("portal_account", uselist=False))
    contact = relationship("Contact", backref=db.backref("portal_account", uselist=False))
    security_group = relationship("SecurityGroup")
