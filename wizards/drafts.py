"""Wizard drafts on the server: what each step holds, per operator, secrets encrypted.

Secrets are sealed values (services.secrets.seal), so key rotation finds and re-encrypts them.
A draft is made by its first save — the first autosave of step 1 or its Next — never by opening
the wizard: "Add a customer" opens an empty step 1 with a `key` (a random token in the page), and
the saves of that page find their draft by it, so an autosave and a Next racing each other make
one draft, not two.

A draft survives a logout, an expired session and a restart because it lives in the database
(models.WizardDraft), not in the session cookie. The writes here only flush: the wizard's views
call them in `panel_write`, whose unit of work commits — and only on a POST.

A draft is saved once. Its Save first claims it (`claim`: a conditional UPDATE of `saved_at`
in the Save's own unit of work), and only the Save whose UPDATE changed the row goes on to
create the customer: a second Save of the same draft at the same moment waits for the first
one's row lock (PostgreSQL) or write lock (SQLite) and then finds it claimed. If the first Save
is refused, its rollback releases the claim and the draft stays as it was. A saved draft is not
offered any more; it points to its customer for a day (SAVED_KEPT), then it is deleted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from models import Operator, WizardDraft
from models.base import utcnow
from services.secrets import SecretBox, seal, unseal
from services.transactions import DbSession, flush, hold_transaction
from wizards.steps import ORDER, SECRET_FIELDS, Step

# How long a saved draft still answers a late second Save (another tab) with its customer.
SAVED_KEPT = timedelta(days=1)


def start_draft(session: DbSession, operator: Operator, key: str | None = None) -> WizardDraft:
    draft = WizardDraft(operator_id=operator.id, step=Step.CUSTOMER.value,
                        data={"steps": {}, **({"key": key} if key else {})})
    session.add(draft)
    flush(session)
    return draft


def draft_for_key(session: DbSession, operator: Operator, key: str) -> WizardDraft:
    """The operator's draft made by the page with `key` (saved or not), or a new one: the first
    save of a new wizard. Scans the operator's own drafts (a handful), under the write lock on
    SQLite so two first saves of one page at once find each other."""
    hold_transaction(session)
    for draft in session.scalars(select(WizardDraft).where(WizardDraft.operator_id == operator.id)):
        if isinstance(draft.data, dict) and draft.data.get("key") == key:
            return draft
    return start_draft(session, operator, key)


def drafts_of(session: DbSession, operator: Operator) -> list[WizardDraft]:
    """The operator's drafts still to be saved, the latest first."""
    return list(session.scalars(select(WizardDraft).where(WizardDraft.operator_id == operator.id,
                                                          WizardDraft.saved_at.is_(None))
                                .order_by(WizardDraft.updated_at.desc())))


def get_draft(session: DbSession, operator: Operator, draft_id: int) -> WizardDraft | None:
    """The operator's own draft, saved or not (`is_saved`): another operator's drafts do not
    exist for them."""
    return session.scalar(select(WizardDraft).where(WizardDraft.id == draft_id,
                                                    WizardDraft.operator_id == operator.id))


def is_saved(draft: WizardDraft) -> bool:
    return draft.saved_at is not None


def claim(session: DbSession, draft: WizardDraft) -> bool:
    """Take the draft for its Save: True for the one Save that may create its customer, False
    when another Save has it (committed, or — the UPDATE waits for it — about to commit). The
    draft's values are read again afterwards: under the claim nobody changes them any more.
    Saved drafts older than SAVED_KEPT are deleted on the way."""
    now = utcnow()
    hold_transaction(session)  # SQLite: the write lock first, so the UPDATE waits instead of failing
    result = session.execute(
        update(WizardDraft).where(WizardDraft.id == draft.id, WizardDraft.saved_at.is_(None))
        .values(saved_at=now).execution_options(synchronize_session=False))
    claimed = result.rowcount == 1  # type: ignore[attr-defined]
    session.execute(delete(WizardDraft).where(WizardDraft.saved_at < now - SAVED_KEPT,
                                              WizardDraft.id != draft.id)
                    .execution_options(synchronize_session=False))
    session.refresh(draft)
    return claimed


def mark_saved(session: DbSession, draft: WizardDraft, customer_id: int) -> None:
    """Remember which customer the claimed draft made (a later Save lands there)."""
    draft.customer_id = customer_id
    flush(session)


def draft_name(draft: WizardDraft) -> str:
    """The name typed on step 1 (company, or first and last name); "" before one is typed."""
    first = stored(draft, Step.CUSTOMER)
    if first.get("kind") == "person":
        return " ".join(str(first.get(k) or "").strip() for k in ("first_name", "last_name")).strip()
    return str(first.get("company_name") or "").strip()


def reached(draft: WizardDraft) -> Step:
    return Step(draft.step)


def can_open(draft: WizardDraft, step: Step) -> bool:
    """A step opens once every step before it has been passed: no skipping by URL."""
    return ORDER.index(step) <= ORDER.index(reached(draft))


def stored(draft: WizardDraft, step: Step) -> dict[str, Any]:
    """What a step holds, secrets still encrypted (marked)."""
    return dict(draft.data.get("steps", {}).get(step.value, {}))


def form_values(draft: WizardDraft, step: Step) -> dict[str, Any]:
    """Values to fill a step's form with: secrets never go back into a form."""
    return {k: v for k, v in stored(draft, step).items() if k not in SECRET_FIELDS}


def secret_is_set(draft: WizardDraft, step: Step, field: str) -> bool:
    return bool(stored(draft, step).get(field))


def plain_values(draft: WizardDraft, step: Step, box: SecretBox) -> dict[str, Any]:
    """A step's values with its secrets decrypted, for saving the customer."""
    values = stored(draft, step)
    for field in SECRET_FIELDS & values.keys():
        token = values[field]
        values[field] = unseal(box, token)
    return values


def store_step(session: DbSession, draft: WizardDraft, step: Step, values: dict[str, Any], box: SecretBox,
               *, advance_to: Step | None = None) -> None:
    """Keep what the user typed for `step` (an empty secret keeps the one stored before) and,
    after a valid step, let the user reach `advance_to`. An autosave calls it with the raw
    values and no `advance_to`: nothing is checked, nothing opens."""
    kept = stored(draft, step)
    entry: dict[str, Any] = {}
    for field, value in values.items():
        if field in SECRET_FIELDS:
            entry[field] = seal(box, value) if value else kept.get(field)
        else:
            entry[field] = value
    steps = dict(draft.data.get("steps", {}))
    steps[step.value] = entry
    draft.data = {**draft.data, "steps": steps}  # a new dict: JSON columns track assignment only
    if advance_to is not None and ORDER.index(advance_to) > ORDER.index(reached(draft)):
        draft.step = advance_to.value
    flush(session)


def discard(session: DbSession, draft: WizardDraft) -> None:
    session.delete(draft)
    flush(session)
