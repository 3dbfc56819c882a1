"""A request's discussion: comments (and operators' internal notes), status changes and attachments.

Who wrote an entry is one of: an operator (author_operator_id), a portal account
(author_portal_account_id), or someone known only by the address an e-mail or a signed link came
from (author_email). author_name keeps the name as it was then, so the thread reads the same after
an operator or contact is renamed or deleted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, enum_column, utcnow
from models.enums import RequestStatus, Via


class AuthoredMixin:
    author_operator_id: Mapped[int | None] = mapped_column(ForeignKey("operator.id", ondelete="SET NULL"))
    author_portal_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("portal_account.id", ondelete="SET NULL"))
    author_name: Mapped[str] = mapped_column(String(255), nullable=False)
    author_email: Mapped[str | None] = mapped_column(String(254))
    via: Mapped[Via] = mapped_column(enum_column(Via, "via"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    @property
    def by_operator(self) -> bool:
        return self.via == Via.DESK


class RequestComment(AuthoredMixin, Model):
    """One entry of a request's thread. An internal note (is_internal) is seen by operators only
    and is never mailed."""

    __tablename__ = "request_comment"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("request.id", ondelete="CASCADE"), nullable=False,
                                            index=True)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    is_internal: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    request = relationship("Request", back_populates="comments")
    author_operator = relationship("Operator")
    author_portal_account = relationship("PortalAccount")


class RequestStatusChange(AuthoredMixin, Model):
    """A step of a request's status history; `comment_id` is the comment given with it (a reopen
    always has one)."""

    __tablename__ = "request_status_change"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("request.id", ondelete="CASCADE"), nullable=False,
                                            index=True)
    old_status: Mapped[RequestStatus | None] = mapped_column(enum_column(RequestStatus, "old_status"))
    new_status: Mapped[RequestStatus] = mapped_column(enum_column(RequestStatus, "new_status"),
                                                      nullable=False)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("request_comment.id", ondelete="SET NULL"))

    request = relationship("Request", back_populates="status_changes")
    comment = relationship("RequestComment")


class RequestAttachment(Model):
    """A file that came with a mail (or a portal comment), stored with its request."""

    __tablename__ = "request_attachment"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("request.id", ondelete="CASCADE"), nullable=False,
                                            index=True)
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("request_comment.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    content_type: Mapped[str] = mapped_column(String(127), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    request = relationship("Request", back_populates="attachments")
    comment = relationship("RequestComment", backref="attachments")
