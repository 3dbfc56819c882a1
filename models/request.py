"""Requests (C-Desk requests / Cherwell incidents) raised for a customer."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, TimestampMixin, db, enum_column
from models.contact import Contact
from models.enums import RequestStatus

request_contact = Table(
    "request_contact",
    db.metadata,
    Column("request_id", ForeignKey("request.id", ondelete="CASCADE"), primary_key=True),
    Column("contact_id", ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True),
)


class Request(TimestampMixin, Model):
    """A request for a customer. Its recipients are the customer's main contacts plus the
    contacts assigned to it (or the person customer's own e-mail). A customer with requests
    cannot be deleted (RESTRICT): it is deactivated instead. `version` counts its changes: an
    edit names the version it was based on (services.versions)."""

    __tablename__ = "request"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are never reused (audit trail, API)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[RequestStatus] = mapped_column(
        enum_column(RequestStatus, "request_status"), default=RequestStatus.NEW, nullable=False
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("operator.id", ondelete="SET NULL")
    )
    # Raised by every UPDATE (SQLAlchemy's version counter): the edit form says which version it
    # was based on, and services.versions refuses a stale one.
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")

    __mapper_args__ = {"version_id_col": version}

    customer = relationship("Customer", backref=db.backref("requests", passive_deletes="all"))
    contacts: Mapped[list[Contact]] = relationship(secondary=request_contact)
    created_by = relationship("Operator")

    def __str__(self) -> str:
        return self.subject
