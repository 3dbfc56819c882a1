"""Directory (AD/LDAP) sources and the runs of their imports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import LeasedRunMixin, Model, TimestampMixin, enum_column, utcnow
from models.enums import DirectoryTarget, SyncRunStatus

# A source has at most one run queued or running, whichever door started it (page, command line,
# schedule): the database says so (a partial unique index), services.directory.runs says it in words.
ACTIVE_RUN = "status IN ('queued', 'running')"
MIN_CHANGES_MINUTES, MAX_CHANGES_MINUTES = 5, 1440
# What an empty directory value does to a field that has one (DirectorySource.empty_values).
KEEP_LOCAL, CLEAR_LOCAL = "keep", "clear"
EMPTY_VALUES = (KEEP_LOCAL, CLEAR_LOCAL)


class DirectorySource(TimestampMixin, Model):
    """An AD/LDAP connection with its attribute mapping and where imported people go.
    The bind password is stored only encrypted."""

    __tablename__ = "directory_source"
    __table_args__ = (
        CheckConstraint(f"changes_every_minutes IS NULL OR changes_every_minutes BETWEEN "
                        f"{MIN_CHANGES_MINUTES} AND {MAX_CHANGES_MINUTES}", name="changes_every_minutes"),
        CheckConstraint("full_sync_at IS NULL OR full_sync_at LIKE '__:__'", name="full_sync_at"),
        CheckConstraint(f"empty_values IN {EMPTY_VALUES}", name="empty_values"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True, nullable=False)
    server_urls: Mapped[str] = mapped_column(Text, nullable=False)
    use_starttls: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    verify_certificate: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    ca_file: Mapped[str | None] = mapped_column(String(1024))
    bind_dn: Mapped[str | None] = mapped_column(String(1024))
    bind_password_encrypted: Mapped[str | None] = mapped_column(Text)
    base_dn: Mapped[str] = mapped_column(String(1024), nullable=False)
    search_filter: Mapped[str] = mapped_column(
        Text, nullable=False, default="(&(objectClass=user)(objectCategory=person))"
    )
    page_size: Mapped[int] = mapped_column(Integer, default=500, nullable=False)
    attribute_map: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    target: Mapped[DirectoryTarget] = mapped_column(
        enum_column(DirectoryTarget, "directory_target"),
        default=DirectoryTarget.PERSONS,
        nullable=False,
    )
    target_company_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer.id", ondelete="SET NULL")
    )
    company_rules: Mapped[list | None] = mapped_column(JSON)
    office_maps_to: Mapped[str] = mapped_column(String(20), default="site", nullable=False)
    # An attribute the directory has no value for: "keep" leaves the field's value in Customer Desk
    # as it is (what an operator typed stays, on the first link and on every later run); "clear"
    # empties it, so the record mirrors the directory (services.directory.pipeline).
    empty_values: Mapped[str] = mapped_column(String(5), default=KEEP_LOCAL, nullable=False,
                                              server_default=KEEP_LOCAL)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    # A run that would deactivate more than this share of the source's records holds for confirmation.
    max_deactivate_percent: Mapped[int] = mapped_column(Integer, default=10, nullable=False,
                                                        server_default="10")
    # Which accounts are left out (services.directory.mapping.Exclusion): AD's built-in, computer and
    # service accounts; accounts in these OUs (DN parts, one per line); account names matching these
    # patterns (svc-*, one per line). Left out: neither imported nor failed, counted apart.
    exclude_system_accounts: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False,
                                                          server_default=true())
    exclude_ous: Mapped[str | None] = mapped_column(Text)
    exclude_accounts: Mapped[str | None] = mapped_column(Text)
    # Where the latest successful run left the directory's changes: the DC's highestCommittedUSN,
    # read before the run read anything (a server without one, OpenLDAP: the highest uSNChanged
    # it read). Shown to maintainers; a changes-only run on AD starts from `usn_by_dc` instead.
    last_usn: Mapped[int | None] = mapped_column(BigInteger)
    # AD's change counters are per domain controller: {the DC's invocationId: its
    # highestCommittedUSN when the last successful run there began}. A changes-only run that lands
    # on a DC missing here (failover, a new DC, one restored from a backup) reads every entry.
    usn_by_dc: Mapped[dict | None] = mapped_column(JSON)
    # Schedules (services.directory.schedules): a nightly full sync at HH:MM of the server's local
    # time, and a changes-only run every N minutes; when each is next due (UTC, kept by the
    # scheduler; empty: worked out at its next tick).
    full_sync_at: Mapped[str | None] = mapped_column(String(5))
    changes_every_minutes: Mapped[int | None] = mapped_column(Integer)
    full_sync_due_at: Mapped[datetime | None] = mapped_column(DateTime)
    changes_due_at: Mapped[datetime | None] = mapped_column(DateTime)

    target_company = relationship("Customer", foreign_keys=[target_company_id])
    runs: Mapped[list[DirectorySyncRun]] = relationship(
        back_populates="source", cascade="all, delete-orphan", order_by="DirectorySyncRun.id.desc()"
    )

    def __str__(self) -> str:
        return self.name


class DirectorySyncRun(LeasedRunMixin, Model):
    """One import (or dry run) of a source, with its counts and per-entry errors. Made queued by
    the door that starts it, claimed and run by a worker (or the command line) holding a lease
    (services.run_leases). The counts are committed with each batch they count, so an
    interrupted run shows exactly what it wrote. At most one run of a source is queued or
    running (ACTIVE_RUN)."""

    __tablename__ = "directory_sync_run"
    __table_args__ = (
        Index("uq_directory_sync_run_active_source", "source_id", unique=True,
              sqlite_where=text(ACTIVE_RUN), postgresql_where=text(ACTIVE_RUN)),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(
        ForeignKey("directory_source.id", ondelete="CASCADE"), nullable=False, index=True
    )
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    status: Mapped[SyncRunStatus] = mapped_column(
        enum_column(SyncRunStatus, "sync_run_status"), default=SyncRunStatus.QUEUED, nullable=False
    )
    created: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    updated: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    unchanged: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    deactivated: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    failed: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # Entries the source's exclusion rule left out (built-in and service accounts, OUs, names).
    left_out: Mapped[int] = mapped_column(Integer, default=0, nullable=False, server_default="0")
    errors: Mapped[list | None] = mapped_column(JSON)
    # What an update changed: [{"name": …, "fields": […]}], the first entries of the run.
    changes: Mapped[list | None] = mapped_column(JSON)
    incremental: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False, server_default=false())
    processed: Mapped[int] = mapped_column(Integer, default=0, nullable=False, server_default="0")
    total: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("operator.id", ondelete="SET NULL"))
    # Who started it when no operator did: the schedule (True) or the command line (False).
    scheduled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False, server_default=false())
    confirm_deactivation: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False,
                                                       server_default=false())
    # The interrupted (or cancelled, failed) run this one continues.
    resumes_id: Mapped[int | None] = mapped_column(ForeignKey("directory_sync_run.id", ondelete="SET NULL"))

    source: Mapped[DirectorySource] = relationship(back_populates="runs")
    started_by = relationship("Operator", foreign_keys=[started_by_id])
