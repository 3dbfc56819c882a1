"""Mail the desk sends and receives, and the signed links it has honoured.

Outgoing: one row per recipient and event (a comment or status change), written in the same unit
of work as the event and sent afterwards by the worker (services.mail_send), so a save never waits
for or fails on a mail server. Incoming: one row per mail read from an intake mailbox, unique per
mailbox and Message-ID, committed before the mail is deleted from the mailbox — a job that dies
in between finds the row next time and deletes the mail without processing it again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, db, enum_column, utcnow
from models.enums import IntakeOutcome, MailState


class OutgoingMail(Model):
    __tablename__ = "outgoing_mail"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), nullable=False,
                                             index=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("request.id", ondelete="CASCADE"), index=True)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("request_comment.id", ondelete="SET NULL"))
    status_change_id: Mapped[int | None] = mapped_column(
        ForeignKey("request_status_change.id", ondelete="SET NULL"))
    recipient_name: Mapped[str] = mapped_column(String(255), nullable=False)
    recipient_email: Mapped[str] = mapped_column(String(254), nullable=False)
    why: Mapped[str] = mapped_column(String(120), nullable=False)  # "main contact", …
    subject: Mapped[str] = mapped_column(String(400), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    # <…@…> of this message; a reply's In-Reply-To / References name it (services.mail_intake).
    message_id: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    state: Mapped[MailState] = mapped_column(enum_column(MailState, "mail_state"), default=MailState.QUEUED,
                                             nullable=False, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))  # our words, never the server's secrets
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    sent_via: Mapped[str | None] = mapped_column(String(120))  # "primary smtp.example.com:587"
    resent_from_id: Mapped[int | None] = mapped_column(ForeignKey("outgoing_mail.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    customer = relationship("Customer", backref=db.backref("outgoing_mail", passive_deletes=True))
    request = relationship("Request", back_populates="outgoing_mail")


class IncomingMail(Model):
    __tablename__ = "incoming_mail"
    __table_args__ = (UniqueConstraint("mailbox", "message_key", name="uq_incoming_mail_once"),
                      {"sqlite_autoincrement": True})
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "builtin", or "customer:<id>" for a customer's own intake mailbox.
    mailbox: Mapped[str] = mapped_column(String(64), nullable=False)
    # The Message-ID; for a mail without one, "sha256:<digest of the raw message>".
    message_key: Mapped[str] = mapped_column(String(255), nullable=False)
    from_address: Mapped[str | None] = mapped_column(String(254))
    from_name: Mapped[str | None] = mapped_column(String(255))
    subject: Mapped[str | None] = mapped_column(String(400))
    body_text: Mapped[str | None] = mapped_column(Text)  # the safe text kept for an operator's decision
    size: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    outcome: Mapped[IntakeOutcome] = mapped_column(enum_column(IntakeOutcome, "intake_outcome"),
                                                   nullable=False, index=True)
    reason: Mapped[str | None] = mapped_column(String(500))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"),
                                                    index=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("request.id", ondelete="SET NULL"), index=True)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("request_comment.id", ondelete="SET NULL"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("operator.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    customer = relationship("Customer")
    request = relationship("Request")
    decided_by = relationship("Operator")

    def __str__(self) -> str:
        return f"Mail from {self.from_address or 'unknown'}: {self.subject or '(no subject)'}"[:255]


class UsedLink(Model):
    """A signed link's id once it has been used: a link does its one thing once (unique id; two
    clicks at once both insert, one wins)."""

    __tablename__ = "used_link"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("request.id", ondelete="CASCADE"))
    used_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
