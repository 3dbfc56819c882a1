"""Small pieces the attacks on issue 18's merge, History and audit trail
(tests/test_attacks_issue18.py) share: the merge page's hidden fields, its form as a browser
would send it, what a page says, and an audit event stored as an older version (or a hostile
script) might have left it, past the masking of services.audit."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select

from extensions import db
from models import AuditEvent, Customer
from models.base import utcnow
from tests.served_app import page_text

MERGE = "/admin/customers/merge/"
ALERTS = re.compile(r'class="alert alert-[\w-]+[^"]*"[^>]*>(.*?)</div>', re.S)


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden {name} on the page"
    return match.group(1)


def text(response) -> str:
    """What a person reads on an answer (a test client's or a requests one)."""
    body = response.get_data(as_text=True) if hasattr(response, "get_data") else response.text
    return page_text(body)


def html_of(response) -> str:
    return response.get_data(as_text=True) if hasattr(response, "get_data") else response.text


def merge_url(survivor: int, other: int, keep: int | None = None) -> str:
    return f"{MERGE}?survivor={survivor}&other={other}" + (f"&keep={keep}" if keep else "")


def merge_form(html: str, **fields: str) -> dict[str, str]:
    """The merge page's form as the browser sends it: its hidden fields, the checked radio of
    every field (the proposal), then `fields` (field_x / decide_x → side)."""
    form = {name: hidden(html, name) for name in ("survivor", "other", "keep", "survivor_version",
                                                  "other_version")}
    for name in re.findall(r'name="(field_[a-z_]+)" value="survivor"', html):
        checked = re.search(rf'name="{name}" value="(survivor|other)"\s+id="[^"]+"\s+checked', html)
        form[name] = checked.group(1) if checked else "survivor"
    form.update(fields)
    return form


def aged(session, customer: Customer, days: int) -> Customer:
    customer.created_at = customer.created_at - timedelta(days=days)
    session.commit()
    return customer


def raw_event(entity_type: str, entity_id: int | None, changes: Any, *, action: str = "update",
              label: str | None = "Raw", actor_label: str = "script@example.com") -> int:
    """An audit event written straight into the table (no ORM: no masking listener), as an
    older version of the product or a careless script left it. Its id."""
    with db.engine.begin() as connection:
        table = db.metadata.tables["audit_event"]
        result = connection.execute(insert(table).values(
            at=utcnow(), actor_label=actor_label, action=action, entity_type=entity_type,
            entity_id=entity_id, entity_label=label, changes=changes))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def merge_events(session) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == "merge")
                                .order_by(AuditEvent.id)))
