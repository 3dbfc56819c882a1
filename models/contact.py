"""Contacts: the people of a company customer who receive its communication."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, func, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import DirectoryIdentityMixin, Model, TimestampMixin, enum_column
from models.enums import PhoneType
from models.names import name_words, person_name
from models.search_index import (
    NEW_NAME_WORDS,
    ContactSearchToken,
    fold,
    inputs_changed,
    name_tokens,
    phone_tokens,
    sync_tokens,
    words,
)

if TYPE_CHECKING:
    from models.customer import Customer


class Contact(DirectoryIdentityMixin, TimestampMixin, Model):
    """A person at a company customer. A main contact (`is_main`) receives copies of the
    communication on all the customer's requests; a contact only on requests it is assigned to.
    Only company customers have contacts (checked by `services.contacts`)."""

    __tablename__ = "contact"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are never reused (audit trail)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customer.id", ondelete="CASCADE"), nullable=False, index=True
    )
    first_name: Mapped[str | None] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80), nullable=False)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False)
    sort_name: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    phone_type: Mapped[PhoneType | None] = mapped_column(enum_column(PhoneType, "phone_type"))
    title: Mapped[str | None] = mapped_column(String(128))  # AD's title: 128 (models.customer)
    is_main: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # False for a contact whose directory account was disabled or removed: kept, not deleted.
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False, server_default=true())
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}

    customer: Mapped[Customer] = relationship(back_populates="contacts")
    search_tokens: Mapped[list[ContactSearchToken]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def role_label(self) -> str:
        return "Main contact" if self.is_main else "Contact"

    def name_words(self) -> list[str]:
        """The words of the name as duplicate matching compares them (models.names)."""
        return name_words(person_name(self.first_name, self.last_name), company=False)

    def refresh_derived(self) -> None:
        if not inputs_changed(self, ("first_name", "last_name", "email", "title", "phone")):
            return
        self.display_name = " ".join(p for p in [self.first_name, self.last_name] if p).strip()
        self.sort_name = fold(f"{self.last_name} {self.first_name or ''}").strip()[:200]
        tokens = words(self.first_name, self.last_name, self.email, self.title)
        tokens |= phone_tokens(self.phone)
        own_name = self.name_words()
        tokens |= name_tokens(own_name)
        self.__dict__[NEW_NAME_WORDS] = own_name
        sync_tokens(self.search_tokens, tokens, ContactSearchToken, self.sort_name)

    def __str__(self) -> str:
        return self.display_name or " ".join(p for p in [self.first_name, self.last_name] if p)


Index("ix_contact_email_lower", func.lower(Contact.email))  # see models.customer
