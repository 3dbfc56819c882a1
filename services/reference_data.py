"""Reference rows every installation needs: the default statuses and the global settings."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import CustomerStatus, GlobalSettings

DEFAULT_STATUSES = (("Active", True, True), ("Inactive", False, False))


def ensure_reference_data(session: Session) -> None:
    """Create the Active (default) and Inactive statuses and the global settings row when
    missing; existing rows, as a maintainer left them, are kept."""
    if session.scalar(select(CustomerStatus.id).limit(1)) is None:
        for name, is_default, is_active in DEFAULT_STATUSES:
            session.add(CustomerStatus(name=name, is_default=is_default, is_active=is_active))
    if session.get(GlobalSettings, 1) is None:
        session.add(GlobalSettings(id=1))
    session.commit()
