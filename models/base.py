"""Declarative base, the Flask-SQLAlchemy handle and small shared column helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Boolean, DateTime, ForeignKey, MetaData, String, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints: Alembic can drop and alter them by name, and services can tell which
# invariant a database error came from without reading the message text.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)

if TYPE_CHECKING:  # mypy cannot see through Flask-SQLAlchemy's generated db.Model
    Model = Base
else:
    Model = db.Model


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class TimestampMixin:
    """Creation and last-change times, in UTC without zone (both databases store them alike)."""

    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


class DirectoryIdentityMixin:
    """Who a customer or contact is in a directory (AD/LDAP): the stable objectGUID, the
    sAMAccountName and DN, the source that imported it and when. The importer matches on these;
    records without them were entered by hand and are never touched by an import."""

    directory_guid: Mapped[str | None] = mapped_column(String(36), unique=True)
    sam_account_name: Mapped[str | None] = mapped_column(String(256), index=True)
    directory_dn: Mapped[str | None] = mapped_column(String(1024), index=True)
    directory_synced_at: Mapped[datetime | None] = mapped_column(DateTime)
    directory_source_id: Mapped[int | None] = mapped_column(
        # use_alter: directory_source refers to a customer too (its target company).
        ForeignKey("directory_source.id", ondelete="SET NULL", use_alter=True), index=True
    )


def enum_column(enum_cls, name: str, **kwargs):
    """A portable enum: VARCHAR plus a named CHECK constraint, storing the member values."""
    from sqlalchemy import Enum

    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        length=max(len(m.value) for m in enum_cls),
        values_callable=lambda e: [m.value for m in e],
        **kwargs,
    )


def binary_string(length: int):
    """A VARCHAR compared byte by byte on PostgreSQL too, so prefix ranges use the index
    the same way on both databases whatever the cluster's locale."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class LeasedRunMixin:
    """A run done by a background job (services.run_leases): which worker holds it, when that
    worker last showed it is alive, and whether somebody asked it to stop."""

    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False,
                                                   server_default=false())
