"""Operators (staff logins), their teams and API tokens."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, TimestampMixin, db, enum_column, utcnow
from models.enums import OperatorRole
from models.lookups import Team

operator_team = Table(
    "operator_team",
    db.metadata,
    Column("operator_id", ForeignKey("operator.id", ondelete="CASCADE"), primary_key=True),
    Column("team_id", ForeignKey("team.id", ondelete="CASCADE"), primary_key=True),
)


class Operator(UserMixin, TimestampMixin, Model):
    """A staff login. `email` is the login name, stored lower-case and unique;
    the password is kept only as an argon2 hash."""

    __tablename__ = "operator"
    __table_args__ = (
        CheckConstraint("manager_id IS NULL OR manager_id <> id", name="not_own_manager"),
        {"sqlite_autoincrement": True},  # ids are never reused (audit trail)
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, nullable=False)
    first_name: Mapped[str] = mapped_column(String(80), nullable=False)
    last_name: Mapped[str] = mapped_column(String(80), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[OperatorRole] = mapped_column(
        enum_column(OperatorRole, "operator_role"), default=OperatorRole.OPERATOR, nullable=False
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("operator.id", ondelete="SET NULL"))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The operator's own choice on the profile page; None: the browser's language (i18n.py)
    # and the desk's time zone (DISPLAY_TIME_ZONE).
    language: Mapped[str | None] = mapped_column(String(5))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    # Part of every session cookie of this operator (see get_id): raising it ends all of them on
    # the server — signing out, a password change, deactivation and reactivation do
    # (services.operators.end_sessions).
    session_generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1", nullable=False)
    # Counts a maintainer's edits of the account (services.operators.save_operator), not every
    # UPDATE: signing in and ending sessions write the row too, and must neither make an open
    # edit form stale nor fail on it (SQLAlchemy's version_id_col would do both).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1", nullable=False)

    manager: Mapped[Operator | None] = relationship(remote_side=[id])
    teams: Mapped[list[Team]] = relationship(secondary=operator_team, order_by=Team.name)
    api_tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="operator", cascade="all, delete-orphan"
    )

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def is_maintainer(self) -> bool:
        return self.role == OperatorRole.MAINTAINER

    def get_id(self) -> str:
        """What Flask-Login keeps in the session cookie: the id and the session generation
        (Flask-Login's "alternative token"). The user loader accepts a cookie only while its
        generation is the operator's current one, so a copied cookie dies with the sessions."""
        return f"{self.id}:{self.session_generation}"

    def __str__(self) -> str:
        return self.full_name


class ApiToken(Model):
    """An operator's API token; only its SHA-256 hash is stored, the token is shown once."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("operator.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    operator: Mapped[Operator] = relationship(back_populates="api_tokens")
