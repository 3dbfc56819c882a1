"""Lookup tables a maintainer manages: statuses, SLA levels, sites and buildings,
departments, customer workgroups, operator teams and portal security groups."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Model


class NamedLookup:
    """A row with a unique human name; shown by that name in selects and lists."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True, nullable=False)

    def __str__(self) -> str:
        return self.name


class CustomerStatus(NamedLookup, Model):
    """A customer's status. Exactly the row marked `is_default` is given to new customers;
    `is_active` False marks statuses such as Inactive that take a customer out of daily work."""

    __tablename__ = "customer_status"
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)


class SlaLevel(NamedLookup, Model):
    """Service Level Agreement subscription level."""

    __tablename__ = "sla_level"


class Site(NamedLookup, Model):
    """A site (location) with its buildings."""

    __tablename__ = "site"
    # Sites come from physicalDeliveryOfficeName too (a directory import), which AD allows 128 long.
    name: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    buildings: Mapped[list[Building]] = relationship(
        back_populates="site", order_by="Building.name", cascade="all, delete-orphan"
    )


class Building(Model):
    """A building of one site; a customer's building must belong to the customer's site,
    which the database checks through the composite key (id, site_id)."""

    __tablename__ = "building"
    __table_args__ = (
        UniqueConstraint("site_id", "name"),
        UniqueConstraint("id", "site_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    site: Mapped[Site] = relationship(back_populates="buildings")

    def __str__(self) -> str:
        return f"{self.name} ({self.site.name})" if self.site else self.name


class Department(NamedLookup, Model):
    """An organisational department of the customers' organisation."""

    __tablename__ = "department"


class Workgroup(NamedLookup, Model):
    """A customer workgroup: customers that share information with each other."""

    __tablename__ = "workgroup"
    description: Mapped[str | None] = mapped_column(String(255))


class Team(NamedLookup, Model):
    """An operator team; ownership rights may extend a customer's access to its members."""

    __tablename__ = "team"


class SecurityGroup(NamedLookup, Model):
    """A portal security group deciding what a portal account may do. An account without a group
    may create requests and sees what its place gives it (services.discussion.Author.of_portal)."""

    __tablename__ = "security_group"
    may_create_requests: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true(),
                                                      nullable=False)
    # A plain contact sees the requests assigned to it or raised by it; with this, all of its company's.
    may_see_all_requests: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(),
                                                       nullable=False)
