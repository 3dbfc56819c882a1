"""Remembered import mappings: the columns a user mapped for a set of file headers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Model, utcnow


class ImportMapping(Model):
    """The mapping last chosen for one set of headers, so the same export next month maps itself.

    `signature` is the SHA-256 of the sorted normalised header names (one row per set, unique);
    `mapping` holds only the mapped columns, normalised header → target field, so a row is never
    larger than the number of target fields. services.import_mappings keeps the most recently
    used ones only (a bounded table) and is the one place that writes it."""

    __tablename__ = "import_mapping"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    signature: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    mapping: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    used_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow, index=True)
