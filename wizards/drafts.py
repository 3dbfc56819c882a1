"""Wizard drafts on the server: what each step holds, per operator, secrets encrypted.

Secrets are sealed values (services.secrets.seal), so key rotation finds and re-encrypts them.
A draft survives a logout, an expired session and a restart because it lives in the database
(models.WizardDraft), not in the session cookie. The writes here only flush: the wizard's views
call them in `panel_write`, whose unit of work commits — and only on a POST.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from models import Operator, WizardDraft
from services.secrets import SecretBox, seal, unseal
from services.transactions import DbSession, flush
from wizards.steps import ORDER, SECRET_FIELDS, Step


def start_draft(session: DbSession, operator: Operator) -> WizardDraft:
    draft = WizardDraft(operator_id=operator.id, step=Step.CUSTOMER.value, data={"steps": {}})
    session.add(draft)
    flush(session)
    return draft


def drafts_of(session: DbSession, operator: Operator) -> list[WizardDraft]:
    return list(session.scalars(select(WizardDraft).where(WizardDraft.operator_id == operator.id)
                                .order_by(WizardDraft.updated_at.desc())))


def get_draft(session: DbSession, operator: Operator, draft_id: int) -> WizardDraft | None:
    """The operator's own draft: another operator's drafts do not exist for them."""
    return session.scalar(select(WizardDraft).where(WizardDraft.id == draft_id,
                                                    WizardDraft.operator_id == operator.id))


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
    after a valid step, let the user reach `advance_to`."""
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
