"""Global settings a maintainer changes: ownership rights (more settings come with their issues)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from models import Operator
from services.access import Right, ownership_rights, require_maintainer
from services.audit import changes_of, check_version, record
from services.reference_data import ensure_reference_data
from services.transactions import committing

AUDIENCES = ("team_members", "managers")


def rights_grid(session: Session) -> dict[str, dict[str, bool]]:
    """{right: {audience: enabled}} for View / Edit / Delete × Team members / Managers."""
    rights = ownership_rights(session)
    return {r.value: {a: bool(getattr(rights, f"{r.value}_by_{a}")) for a in AUDIENCES} for r in Right}


def save_ownership_rights(
    session: Session, actor: Operator | None, grid: dict[str, dict[str, bool]],
    seen_version: int | None = None,
) -> None:
    """Store the ownership-rights grid (maintainers only), with an audit event."""
    require_maintainer(actor, "change ownership rights")
    ensure_reference_data(session)
    rights = ownership_rights(session)
    check_version(session, "globalsettings", rights, seen_version)
    for right in Right:
        for audience in AUDIENCES:
            setattr(rights, f"{right.value}_by_{audience}", bool(grid.get(right.value, {}).get(audience)))
    changes = changes_of(rights)
    with committing(session):
        session.flush()
        if changes:
            record(session, actor, "update", rights, changes, entity_type="globalsettings")
