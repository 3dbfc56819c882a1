"""The Customer aggregate: a company or a person, with responsible operators and workgroups."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import DirectoryIdentityMixin, Model, TimestampMixin, db, enum_column
from models.enums import CustomerKind, EmployeeType, PhoneType
from models.lookups import Building, CustomerStatus, Department, Site, SlaLevel, Workgroup
from models.names import name_words, person_name
from models.operator import Operator
from models.search_index import (
    NEW_NAME_WORDS,
    CustomerSearchToken,
    fold,
    inputs_changed,
    name_tokens,
    phone_tokens,
    sync_tokens,
    words,
)

if TYPE_CHECKING:
    from models.contact import Contact
    from models.settings import CustomerSettings

customer_operator = Table(
    "customer_operator",
    db.metadata,
    Column("customer_id", ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "operator_id", ForeignKey("operator.id", ondelete="CASCADE"), primary_key=True, index=True
    ),
)

customer_workgroup = Table(
    "customer_workgroup",
    db.metadata,
    Column("customer_id", ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True),
    Column("workgroup_id", ForeignKey("workgroup.id", ondelete="CASCADE"), primary_key=True),
)


LIVE = text("merged_into_id IS NULL")  # not merged away: what every list shows


class Customer(DirectoryIdentityMixin, TimestampMixin, Model):
    """A customer of the service desk.

    Guarantees, in the database as well as in `services.customers`: a company has a company
    name, a person a first and last name; the building belongs to the chosen site; nobody is
    their own manager; registration number, VAT ID and directory GUID are unique when given.
    `display_name` and the search tokens are derived on every flush, never typed. `version`
    increases with every update (optimistic locking: a stale update raises StaleDataError).
    """

    __tablename__ = "customer"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'company' AND company_name IS NOT NULL) OR "
            "(kind = 'person' AND first_name IS NOT NULL AND last_name IS NOT NULL)",
            name="required_names",
        ),
        CheckConstraint("manager_id IS NULL OR manager_id <> id", name="not_own_manager"),
        CheckConstraint("building_id IS NULL OR site_id IS NOT NULL", name="building_needs_site"),
        ForeignKeyConstraint(
            ["building_id", "site_id"],
            ["building.id", "building.site_id"],
            name="fk_customer_building_of_site",
        ),
        # Every list, picker and search shows live customers only, in name order: their pages are
        # read from this index alone (a second, full one left SQLite a choice it made wrongly).
        Index("ix_customer_live_sort_name_id", "sort_name", "id", sqlite_where=LIVE, postgresql_where=LIVE),
        {"sqlite_autoincrement": True},  # SQLite would reuse a deleted id: audit, links and API ids must not
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[CustomerKind] = mapped_column(
        enum_column(CustomerKind, "customer_kind"), nullable=False, index=True
    )
    display_name: Mapped[str] = mapped_column(String(255), nullable=False)
    sort_name: Mapped[str] = mapped_column(String(255), nullable=False)

    company_name: Mapped[str | None] = mapped_column(String(200))
    registration_number: Mapped[str | None] = mapped_column(String(40), unique=True)
    vat_id: Mapped[str | None] = mapped_column(String(40), unique=True)

    first_name: Mapped[str | None] = mapped_column(String(80))
    middle_name: Mapped[str | None] = mapped_column(String(40))
    last_name: Mapped[str | None] = mapped_column(String(80))
    employee_type: Mapped[EmployeeType | None] = mapped_column(
        enum_column(EmployeeType, "employee_type")
    )
    # As long as Active Directory allows (title, physicalDeliveryOfficeName: 128), so an imported
    # value is stored whole, never refused or cut.
    title: Mapped[str | None] = mapped_column(String(128))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer.id", ondelete="SET NULL"), index=True
    )

    status_id: Mapped[int] = mapped_column(ForeignKey("customer_status.id"), nullable=False, index=True)
    sla_level_id: Mapped[int | None] = mapped_column(ForeignKey("sla_level.id"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("site.id"), index=True)
    building_id: Mapped[int | None] = mapped_column(Integer)
    location_code: Mapped[str | None] = mapped_column(String(128))

    primary_phone: Mapped[str | None] = mapped_column(String(20))
    primary_phone_type: Mapped[PhoneType | None] = mapped_column(
        enum_column(PhoneType, "primary_phone_type")
    )
    secondary_phone: Mapped[str | None] = mapped_column(String(20))
    secondary_phone_type: Mapped[PhoneType | None] = mapped_column(
        enum_column(PhoneType, "secondary_phone_type")
    )
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    secondary_email: Mapped[str | None] = mapped_column(String(254), index=True)
    notes: Mapped[str | None] = mapped_column(Text)
    # A tombstone: set on the record merged away into another (services.merge), so old links,
    # API ids and the audit history resolve to the survivor. Tombstones leave lists and searches.
    # No foreign key: SQLite cannot add one to an existing table without copying it (which
    # would lose the lower(email) indexes); services.merge keeps the pointer right.
    merged_into_id: Mapped[int | None] = mapped_column(Integer, index=True)
    merged_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The key C-Monitor agents register computers with: only its hash, to find the customer by;
    # the key itself is shown once when made and stored nowhere (services.computers).
    registration_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    photo: Mapped[str | None] = mapped_column(String(255))


    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("operator.id", ondelete="SET NULL"), index=True
    )
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("operator.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}

    status: Mapped[CustomerStatus] = relationship()
    sla_level: Mapped[SlaLevel | None] = relationship()
    site: Mapped[Site | None] = relationship()
    building: Mapped[Building | None] = relationship(
        primaryjoin="Customer.building_id == Building.id",
        foreign_keys=[building_id],
    )
    department: Mapped[Department | None] = relationship()
    manager: Mapped[Customer | None] = relationship(remote_side=[id], back_populates="reports",
                                                    foreign_keys=[manager_id])
    reports: Mapped[list[Customer]] = relationship(back_populates="manager", foreign_keys=[manager_id])
    operators: Mapped[list[Operator]] = relationship(
        secondary=customer_operator, order_by=[Operator.last_name, Operator.first_name]
    )
    workgroups: Mapped[list[Workgroup]] = relationship(
        secondary=customer_workgroup, order_by=Workgroup.name
    )
    contacts: Mapped[list[Contact]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        order_by="(Contact.is_main.desc(), Contact.sort_name)",
    )
    created_by: Mapped[Operator | None] = relationship(foreign_keys=[created_by_id])
    updated_by: Mapped[Operator | None] = relationship(foreign_keys=[updated_by_id])
    settings: Mapped[CustomerSettings | None] = relationship(
        back_populates="customer", uselist=False, cascade="all, delete-orphan", passive_deletes=True
    )
    search_tokens: Mapped[list[CustomerSearchToken]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def is_company(self) -> bool:
        return self.kind == CustomerKind.COMPANY

    def compute_display_name(self) -> str:
        if self.kind == CustomerKind.COMPANY:
            return (self.company_name or "").strip()
        middle = (self.middle_name or "").strip().rstrip(".")
        first = " ".join(p for p in [(self.first_name or "").strip(), middle and f"{middle}."] if p)
        return f"{(self.last_name or '').strip()}, {first}".strip(", ")

    def name_words(self) -> list[str]:
        """The words of the name as duplicate matching compares them (models.names)."""
        if self.kind == CustomerKind.COMPANY:
            return name_words(self.company_name, company=True)
        return name_words(person_name(self.first_name, self.middle_name, self.last_name), company=False)

    def refresh_derived(self) -> None:
        if not inputs_changed(self, DERIVED_FROM):
            return
        self.display_name = self.compute_display_name()
        self.sort_name = fold(self.display_name)[:255]
        tokens = words(
            self.company_name,
            self.first_name,
            self.middle_name,
            self.last_name,
            self.email,
            self.secondary_email,
            self.registration_number,
            self.vat_id,
        )
        tokens |= phone_tokens(self.primary_phone) | phone_tokens(self.secondary_phone)
        own_name = self.name_words()
        tokens |= name_tokens(own_name)
        self.__dict__[NEW_NAME_WORDS] = own_name
        # A merged-away customer keeps its tokens (an undone merge lists it again) unlisted.
        listed_as = self.sort_name if self.merged_into_id is None else None
        sync_tokens(self.search_tokens, tokens, CustomerSearchToken, listed_as)

    def __str__(self) -> str:
        return self.display_name or self.compute_display_name()


# What display_name, sort_name and the search tokens are made of (and whether they are listed).
DERIVED_FROM = ("kind", "company_name", "first_name", "middle_name", "last_name", "email", "secondary_email",
                "registration_number", "vat_id", "primary_phone", "secondary_phone", "merged_into_id")


# Duplicate search compares e-mails case-insensitively (services.duplicates): expression indexes
# answer lower(email) = … without a scan, on SQLite and PostgreSQL alike.
Index("ix_customer_email_lower", func.lower(Customer.email))
Index("ix_customer_secondary_email_lower", func.lower(Customer.secondary_email))
