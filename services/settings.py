"""Global settings a maintainer changes: ownership rights and the quick-create rules."""

from __future__ import annotations

from i18n import _
from models import Operator
from services.access import Right, ownership_rights, require_maintainer
from services.audit import changes_of, record
from services.errors import ErrorBag
from services.reference_data import ensure_reference_data
from services.transactions import DbSession, flush
from services.versions import ON_CURRENT, SeenVersion, check_seen_version

AUDIENCES = ("team_members", "managers")


def rights_grid(session: DbSession) -> dict[str, dict[str, bool]]:
    """{right: {audience: enabled}} for View / Edit / Delete × Team members / Managers."""
    rights = ownership_rights(session)
    return {r.value: {a: bool(getattr(rights, f"{r.value}_by_{a}")) for a in AUDIENCES} for r in Right}


def save_ownership_rights(
    session: DbSession, actor: Operator | None, grid: dict[str, dict[str, bool]],
    seen_version: SeenVersion = ON_CURRENT,
) -> None:
    """Store the ownership-rights grid (maintainers only), with an audit event, based on the
    settings' `seen_version` (services.versions: VersionRequired, StaleRecord)."""
    require_maintainer(actor, _("change ownership rights"))
    ensure_reference_data(session)
    rights = ownership_rights(session)
    check_seen_version(session, "globalsettings", rights, seen_version)
    for right in Right:
        for audience in AUDIENCES:
            setattr(rights, f"{right.value}_by_{audience}", bool(grid.get(right.value, {}).get(audience)))
    changes = changes_of(rights)
    flush(session)
    if changes:
        record(session, actor, "update", rights, changes, entity_type="globalsettings")
    flush(session)


THRESHOLD_RANGE = (50, 100)


def save_quick_create_rules(session: DbSession, actor: Operator | None, *, requires_email: bool,
                            threshold: str | int | None, seen_version: SeenVersion = ON_CURRENT) -> None:
    """Whether the quick form requires an e-mail, and from what name similarity (50–100 %) a
    record counts as a possible duplicate. Maintainers only; audited; based on `seen_version`
    (services.versions: VersionRequired, StaleRecord)."""
    require_maintainer(actor, _("change the quick-create rules"))
    bag = ErrorBag()
    try:
        value = int(str(threshold).strip())
    except ValueError:
        value = -1
    if not THRESHOLD_RANGE[0] <= value <= THRESHOLD_RANGE[1]:
        bag.add("duplicate_name_threshold", _("Type a whole number from 50 to 100."))
    bag.raise_if_any()
    ensure_reference_data(session)
    rules = ownership_rights(session)  # the one GlobalSettings row
    check_seen_version(session, "globalsettings", rules, seen_version)
    rules.quick_form_requires_email = requires_email
    rules.duplicate_name_threshold = value
    changes = changes_of(rules)
    flush(session)
    if changes:
        record(session, actor, "update", rules, changes, entity_type="globalsettings")
    flush(session)
