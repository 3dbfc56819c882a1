"""Technical settings: the global defaults and each customer's own, which computers inherit.

Secret values are stored only encrypted (`*_encrypted`, see `services.secrets`); they are never
rendered back into a form, written to a log or exported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model, TimestampMixin, enum_column
from models.enums import MailSecurity, NotificationRoute, UnknownSenders

if TYPE_CHECKING:
    from models.customer import Customer


class MailServersMixin:
    """A POP3 mailbox and two SMTP servers (primary and fallback)."""

    pop3_host: Mapped[str | None] = mapped_column(String(255))
    pop3_port: Mapped[int | None] = mapped_column(Integer)
    pop3_security: Mapped[MailSecurity | None] = mapped_column(
        enum_column(MailSecurity, "pop3_security")
    )
    pop3_username: Mapped[str | None] = mapped_column(String(255))
    pop3_password_encrypted: Mapped[str | None] = mapped_column(Text)
    pop3_address: Mapped[str | None] = mapped_column(String(254))

    smtp_primary_host: Mapped[str | None] = mapped_column(String(255))
    smtp_primary_port: Mapped[int | None] = mapped_column(Integer)
    smtp_primary_security: Mapped[MailSecurity | None] = mapped_column(
        enum_column(MailSecurity, "smtp_primary_security")
    )
    smtp_primary_username: Mapped[str | None] = mapped_column(String(255))
    smtp_primary_password_encrypted: Mapped[str | None] = mapped_column(Text)

    smtp_fallback_host: Mapped[str | None] = mapped_column(String(255))
    smtp_fallback_port: Mapped[int | None] = mapped_column(Integer)
    smtp_fallback_security: Mapped[MailSecurity | None] = mapped_column(
        enum_column(MailSecurity, "smtp_fallback_security")
    )
    smtp_fallback_username: Mapped[str | None] = mapped_column(String(255))
    smtp_fallback_password_encrypted: Mapped[str | None] = mapped_column(Text)


class CustomerSettings(MailServersMixin, TimestampMixin, Model):
    """One customer's settings: the wizard's steps 2–5 and the edit tabs of the same names.
    `use_builtin_mail_servers` True means the mail columns are ignored and the global
    built-in servers apply."""

    __tablename__ = "customer_settings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    cmonitor_password_encrypted: Mapped[str | None] = mapped_column(Text)
    use_builtin_mail_servers: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    # PEM certificate(s) of a CA the customer's own mail servers are trusted through (besides the
    # system store): a self-signed or in-house server. Public data, not a secret; checked to be
    # certificates only (services.customer_settings.clean_ca_certificate).
    mail_ca_certificate: Mapped[str | None] = mapped_column(Text)

    notification_route: Mapped[NotificationRoute] = mapped_column(
        enum_column(NotificationRoute, "notification_route"),
        default=NotificationRoute.CM_SERVER,
        nullable=False,
    )
    notification_smtp_host: Mapped[str | None] = mapped_column(String(255))
    notification_smtp_port: Mapped[int | None] = mapped_column(Integer)
    notification_smtp_security: Mapped[MailSecurity | None] = mapped_column(
        enum_column(MailSecurity, "notification_smtp_security")
    )
    notification_smtp_username: Mapped[str | None] = mapped_column(String(255))
    notification_smtp_password_encrypted: Mapped[str | None] = mapped_column(Text)
    notification_from_address: Mapped[str | None] = mapped_column(String(254))
    notification_to_address: Mapped[str | None] = mapped_column(String(254))

    requests_by_email_enabled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    request_intake_address: Mapped[str | None] = mapped_column(String(254))
    unauthenticated_discussion_enabled: Mapped[bool] = mapped_column(
        Boolean, default=False, nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}

    customer: Mapped[Customer] = relationship(back_populates="settings")


class GlobalSettings(MailServersMixin, TimestampMixin, Model):
    """The single row of global settings (id = 1): the built-in mail servers the wizard offers,
    quick-form rules, duplicate-detection threshold and ownership rights."""

    __tablename__ = "global_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint(
            "duplicate_name_threshold BETWEEN 50 AND 100", name="threshold_range"
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    quick_form_requires_email: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    duplicate_name_threshold: Mapped[int] = mapped_column(Integer, default=88, nullable=False)
    # Ownership rights: who besides the assigned operators and the creator may view / edit /
    # delete a customer (members of the assigned operators' teams, their managers).
    view_by_team_members: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    view_by_managers: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    edit_by_team_members: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    edit_by_managers: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    delete_by_team_members: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    delete_by_managers: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # Requests by e-mail from an address that is no customer's or contact's (services.mail_intake).
    unknown_senders: Mapped[UnknownSenders] = mapped_column(
        enum_column(UnknownSenders, "unknown_senders"), default=UnknownSenders.HOLD,
        server_default=UnknownSenders.HOLD.value, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}
