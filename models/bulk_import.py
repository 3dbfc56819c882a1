"""CSV/XLSX imports of customers: the uploaded file and the state of its preview and import."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import LeasedRunMixin, Model, TimestampMixin, enum_column


class BulkImportStatus(StrEnum):
    """Where an upload is: mapping, preview, import. `queued`/`running` (and the preview's two)
    are held by a background job under a lease; `interrupted` is a run whose worker stopped
    (its lease lapsed) and `failed` one that stopped on an error — both keep the file and
    resume from the first uncommitted row; `done` and `cancelled` are final (the file is gone)."""

    UPLOADED = "uploaded"
    PREVIEW_QUEUED = "preview_queued"
    PREVIEWING = "previewing"
    PREVIEWED = "previewed"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class BulkImport(LeasedRunMixin, TimestampMixin, Model):
    """One uploaded file and its import, found by a random `token` (the URL's id, never the
    file's name) and open only to its `owner`.

    `data` is the file itself (at most services.upload_limits.MAX_BYTES), kept until the import
    is done or cancelled; `headers` and `samples` (the first values of each column) are read at
    upload so the mapping page never parses the file again. `mapping`, `rules` and `on_match`
    are the choices of the mapping page. `done` of `total` rows: while previewing the rows the
    dry run has read, from `queued` on the rows committed — written in the unit of work of each
    batch, so it always equals what the database holds and a resume starts at row `done`.
    `counts` sums the committed batches' outcomes (their rows are in BulkImportBatch until the
    run ends, then in `result_report`). Swept 24 hours after its last change
    (jobs.bulk_import)."""

    __tablename__ = "bulk_import"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("operator.id", ondelete="CASCADE"), nullable=False,
                                          index=True)
    file_name: Mapped[str] = mapped_column(String(120), nullable=False)
    encoding: Mapped[str] = mapped_column(String(20), nullable=False)  # chosen: auto, utf-8, cp1250
    read_as: Mapped[str] = mapped_column(String(20), nullable=False)  # what it was read as (xlsx too)
    data: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)  # loaded only by the jobs
    headers: Mapped[list] = mapped_column(JSON, nullable=False)
    samples: Mapped[dict] = mapped_column(JSON, nullable=False)
    mapping: Mapped[dict | None] = mapped_column(JSON)
    rules: Mapped[list | None] = mapped_column(JSON)
    on_match: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[BulkImportStatus] = mapped_column(
        enum_column(BulkImportStatus, "bulk_import_status"), default=BulkImportStatus.UPLOADED,
        nullable=False, index=True)
    batch_size: Mapped[int] = mapped_column(Integer, nullable=False, default=200)
    done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    counts: Mapped[dict | None] = mapped_column(JSON)
    preview_report: Mapped[dict | None] = mapped_column(JSON)
    result_report: Mapped[dict | None] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    owner = relationship("Operator")


class BulkImportBatch(Model):
    """The rows of one committed batch of an import, by outcome (created, updated, … as
    services.bulk_import.ImportReport lists them), written in that batch's unit of work: what a
    killed worker committed is reported whole, and a resumed run's report adds up the parts."""

    __tablename__ = "bulk_import_batch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bulk_import_id: Mapped[int] = mapped_column(ForeignKey("bulk_import.id", ondelete="CASCADE"),
                                                nullable=False, index=True)
    done: Mapped[int] = mapped_column(Integer, nullable=False)  # rows committed with this batch
    results: Mapped[dict] = mapped_column(JSON, nullable=False)
