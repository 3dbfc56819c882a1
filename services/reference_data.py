"""Reference rows every installation needs: the default statuses and the global settings."""

from __future__ import annotations

from sqlalchemy import select, update

from i18n import _
from models import CustomerStatus, GlobalSettings, Operator
from services.audit import save_audited
from services.errors import ErrorBag
from services.transactions import DbSession, flush

DEFAULT_STATUSES = (("Active", True, True), ("Inactive", False, False))


def ensure_reference_data(session: DbSession) -> None:
    """Create the Active (default) and Inactive statuses and the global settings row when
    missing; existing rows, as a maintainer left them, are kept."""
    if session.scalar(select(CustomerStatus.id).limit(1)) is None:
        for name, is_default, is_active in DEFAULT_STATUSES:
            session.add(CustomerStatus(name=name, is_default=is_default, is_active=is_active))
    if session.get(GlobalSettings, 1) is None:
        session.add(GlobalSettings(id=1))
    flush(session)


def save_status(session: DbSession, status: CustomerStatus, actor: Operator | None) -> None:
    """Save a status; marking it the default takes the mark from the others, and one status
    always stays the default (new customers need one). Raises ValidationFailed."""
    bag = ErrorBag()
    with session.no_autoflush:
        others_default = session.scalar(select(CustomerStatus.id).where(
            CustomerStatus.is_default.is_(True), CustomerStatus.id.is_distinct_from(status.id)))
    if status.is_default:
        if not status.is_active:
            bag.add("is_default", _("New customers cannot start in a status that does not count as active."))
    elif others_default is None:
        bag.add("is_default", _("One status must stay the default for new customers: make another status the "
                                "default instead."))
    bag.raise_if_any()
    if status.is_default and others_default is not None:
        session.execute(update(CustomerStatus).values(is_default=False)
                        .where(CustomerStatus.id.is_distinct_from(status.id)))
    save_audited(session, actor, status)
