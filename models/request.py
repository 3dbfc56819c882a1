"""Requests (C-Desk requests / Cherwell incidents) raised for a customer."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Column, DateTime, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, TimestampMixin, db, enum_column
from models.contact import Contact
from models.enums import RequestSource, RequestStatus

if TYPE_CHECKING:
    from models.discussion import RequestAttachment, RequestComment, RequestStatusChange
    from models.mail import OutgoingMail

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
    __table_args__ = (
        CheckConstraint("rating IS NULL OR (rating BETWEEN 1 AND 5)", name="rating_1_to_5"),
        {"sqlite_autoincrement": True},  # ids are never reused (audit trail, API, mail references)
    )
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
    source: Mapped[RequestSource] = mapped_column(
        enum_column(RequestSource, "request_source"), default=RequestSource.DESK,
        server_default=RequestSource.DESK.value, nullable=False)
    # The contact who raised it on the portal or by e-mail: they see it and get its copies.
    requester_contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact.id", ondelete="SET NULL"))
    # The customer's rating of the operator's work, given when accepting completion.
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_remark: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Raised by every UPDATE (SQLAlchemy's version counter): the edit form says which version it
    # was based on, and services.versions refuses a stale one.
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")

    __mapper_args__ = {"version_id_col": version}

    customer = relationship("Customer", backref=db.backref("requests", passive_deletes="all"))
    contacts: Mapped[list[Contact]] = relationship(secondary=request_contact)
    created_by = relationship("Operator")
    requester_contact = relationship("Contact", foreign_keys=[requester_contact_id])
    # The discussion (models.discussion) and the copies sent (models.mail), oldest first.
    comments: Mapped[list[RequestComment]] = relationship(
        back_populates="request", order_by="RequestComment.id", cascade="all, delete-orphan",
        passive_deletes=True)
    status_changes: Mapped[list[RequestStatusChange]] = relationship(
        back_populates="request", order_by="RequestStatusChange.id", cascade="all, delete-orphan",
        passive_deletes=True)
    attachments: Mapped[list[RequestAttachment]] = relationship(
        back_populates="request", order_by="RequestAttachment.id", cascade="all, delete-orphan",
        passive_deletes=True)
    outgoing_mail: Mapped[list[OutgoingMail]] = relationship(
        back_populates="request", order_by="OutgoingMail.id", passive_deletes=True)

    @property
    def reference(self) -> str:
        """What mail subjects carry ("[CD-123]") and a reply is matched by."""
        return f"CD-{self.id}"

    def __str__(self) -> str:
        return self.subject
