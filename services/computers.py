"""Computers under a customer: registration keys, registration by the C-Monitor agent, and the
settings snapshot a computer keeps until someone pushes the current settings on purpose."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Computer, Customer, Operator
from models.base import utcnow
from services.access import Right, require
from services.audit import record
from services.contact_info import clean_text
from services.customer_settings import effective_settings
from services.errors import ErrorBag, PermissionDenied
from services.secrets import SecretBox
from services.transactions import committing

SECRET_KEYS = ("password", "access_password")  # values encrypted inside a stored snapshot


def _hash(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


def registration_key(session: Session, actor: Operator | None, customer: Customer, box: SecretBox) -> str:
    """The customer's registration key (made on first use). Maintainers and those who may edit
    the customer (assigned operators, its creator, …) see it; others get PermissionDenied."""
    if actor is not None and not actor.is_maintainer:
        require(session, actor, customer.id, Right.EDIT)
    if customer.registration_key_encrypted is None:
        return rotate_registration_key(session, actor, customer, box)
    return box.decrypt(customer.registration_key_encrypted) or ""


def rotate_registration_key(session: Session, actor: Operator | None, customer: Customer,
                            box: SecretBox) -> str:
    """A new key; the old one stops working at once. Audited (the key itself is not recorded)."""
    if actor is not None and not actor.is_maintainer:
        require(session, actor, customer.id, Right.EDIT)
    key = secrets.token_urlsafe(24)
    customer.registration_key_hash = _hash(key)
    customer.registration_key_encrypted = box.encrypt(key)
    with committing(session):
        record(session, actor, "rotate_registration_key", customer,
               {"registration_key": ["changed", "changed"]})
    return key


def _seal(value: Any, box: SecretBox, open_: bool) -> Any:
    """Encrypt (or decrypt) the secrets inside a settings document."""
    if isinstance(value, dict):
        return {k: (box.decrypt(v) if open_ else box.encrypt(v)) if k in SECRET_KEYS and v is not None
                else _seal(v, box, open_) for k, v in value.items()}
    if isinstance(value, list):
        return [_seal(v, box, open_) for v in value]
    return value


def current_settings(session: Session, customer: Customer, box: SecretBox) -> dict:
    return effective_settings(session, customer, box)


def settings_of_computer(computer: Computer, box: SecretBox) -> dict:
    """What the computer was given (secrets decrypted, for the agent itself)."""
    return _seal(computer.settings_snapshot or {}, box, open_=True)


def settings_differ(session: Session, computer: Computer, box: SecretBox) -> bool:
    return settings_of_computer(computer, box) != current_settings(session, computer.customer, box)


def register_computer(session: Session, key: str | None, hostname: str | None, box: SecretBox, *,
                      operating_system: str | None = None,
                      agent_version: str | None = None) -> tuple[Computer, bool]:
    """Register (or find again) a computer of the customer whose key this is. A new computer gets
    a snapshot of the customer's effective settings; a known hostname returns the same computer
    with the settings it has. Returns (computer, newly registered). Raises PermissionDenied for
    an unknown or rotated key, ValidationFailed for a missing hostname."""
    customer = session.scalar(select(Customer).where(Customer.registration_key_hash == _hash(key or "-")))
    if customer is None or not key:
        raise PermissionDenied("Unknown or rotated registration key.")
    bag = ErrorBag()
    hostname = bag.check("hostname", clean_text, hostname)
    if not hostname:
        bag.add("hostname", "The computer's host name is required.")
    operating_system = bag.check("operating_system", clean_text, operating_system)
    agent_version = bag.check("agent_version", clean_text, agent_version)
    bag.raise_if_any()
    name = hostname.lower()[:255]
    computer = session.scalar(select(Computer).where(Computer.customer_id == customer.id,
                                                     Computer.hostname == name))
    now = utcnow()
    if computer is None:
        snapshot = _seal(current_settings(session, customer, box), box, open_=False)
        computer = Computer(customer=customer, hostname=name, registered_at=now, settings_received_at=now,
                            settings_snapshot=snapshot)
        session.add(computer)
        action = "register"
    else:
        action = "reregister"
    computer.operating_system = (operating_system or computer.operating_system or "")[:120] or None
    computer.agent_version = (agent_version or computer.agent_version or "")[:40] or None
    computer.last_seen_at = now
    with committing(session):
        session.flush()
        record(session, None, action, computer, {"hostname": [None, name]}, actor_label="C-Monitor agent")
    return computer, action == "register"


def push_settings(session: Session, actor: Operator | None, computer: Computer, box: SecretBox) -> None:
    """Give the computer the customer's current settings, on purpose (edit right), audited."""
    if actor is not None and not actor.is_maintainer:
        require(session, actor, computer.customer_id, Right.EDIT)
    if actor is None:
        raise PermissionDenied("Pushing settings needs an operator.")
    computer.settings_snapshot = _seal(current_settings(session, computer.customer, box), box, open_=False)
    computer.settings_received_at = utcnow()
    with committing(session):
        record(session, actor, "push_settings", computer, {"settings": ["changed", "changed"]})
