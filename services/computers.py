"""Computers under a customer: registration keys, registration by the C-Monitor agent, and the
settings snapshot a computer keeps until someone pushes the current settings on purpose.

A registration key is a credential: it is made only on purpose (`rotate_registration_key`),
shown once, and stored only as its SHA-256 hash (24 random bytes, so a plain hash cannot be
guessed back), like the operators' API tokens."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import select

from models import Computer, Customer, Operator
from models.base import utcnow
from services.access import Right, require
from services.audit import record
from services.contact_info import clean_text
from services.customer_settings import effective_settings
from services.errors import ErrorBag, PermissionDenied
from services.limits import max_length, too_long
from services.secrets import SecretBox
from services.transactions import DbSession, flush

SECRET_KEYS = ("password", "access_password")  # values encrypted inside a stored snapshot


class UnknownRegistrationKey(PermissionDenied):
    """The agent's key names no customer (unknown, or rotated since): the agent is not
    authenticated (the API's 401), rather than refused a right."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


def has_registration_key(customer: Customer) -> bool:
    """Whether the customer has a registration key. Only its hash is stored, so the key itself
    can be read nowhere: it is shown once, by `rotate_registration_key`. Reads, never writes."""
    return customer.registration_key_hash is not None


def rotate_registration_key(session: DbSession, actor: Operator | None, customer: Customer) -> str:
    """Make a new registration key and return it — the only time anybody sees it; only its hash
    is stored, and the old key stops working at once. An explicit action (a POST), never a side
    effect of reading. Maintainers and those who may edit the customer may (PermissionDenied
    otherwise). Audited (the key itself is not recorded); flushes, the door commits."""
    if actor is not None and not actor.is_maintainer:
        require(session, actor, customer.id, Right.EDIT)
    key = secrets.token_urlsafe(24)
    customer.registration_key_hash = _hash(key)
    record(session, actor, "rotate_registration_key", customer,
           {"registration_key": ["changed", "changed"]})
    flush(session)
    return key


def _seal(value: Any, box: SecretBox, open_: bool) -> Any:
    """Encrypt (or decrypt) the secrets inside a settings document."""
    if isinstance(value, dict):
        return {k: (box.decrypt(v) if open_ else box.encrypt(v)) if k in SECRET_KEYS and v is not None
                else _seal(v, box, open_) for k, v in value.items()}
    if isinstance(value, list):
        return [_seal(v, box, open_) for v in value]
    return value


def current_settings(session: DbSession, customer: Customer, box: SecretBox) -> dict:
    return effective_settings(session, customer, box)


def settings_of_computer(computer: Computer, box: SecretBox) -> dict:
    """What the computer was given (secrets decrypted, for the agent itself)."""
    return _seal(computer.settings_snapshot or {}, box, open_=True)


def settings_differ(session: DbSession, computer: Computer, box: SecretBox) -> bool:
    return settings_of_computer(computer, box) != current_settings(session, computer.customer, box)


def register_computer(session: DbSession, key: str | None, hostname: str | None, box: SecretBox, *,
                      operating_system: str | None = None,
                      agent_version: str | None = None) -> tuple[Computer, bool]:
    """Register (or find again) a computer of the customer whose key this is. A new computer gets
    a snapshot of the customer's effective settings; a known hostname returns the same computer
    with the settings it has. Returns (computer, newly registered). Raises
    UnknownRegistrationKey for an unknown or rotated key, ValidationFailed for a missing or
    too-long value (limits from the columns). Flushes; the door commits."""
    customer = session.scalar(select(Customer).where(Customer.registration_key_hash == _hash(key or "-")))
    if customer is None or not key:
        raise UnknownRegistrationKey("Unknown or rotated registration key.")
    bag = ErrorBag()
    hostname = bag.check("hostname", clean_text, hostname)
    if not hostname:
        bag.add("hostname", "The computer's host name is required.")
    operating_system = bag.check("operating_system", clean_text, operating_system)
    agent_version = bag.check("agent_version", clean_text, agent_version)
    for field, value in (("hostname", hostname), ("operating_system", operating_system),
                         ("agent_version", agent_version)):
        limit = max_length(getattr(Computer, field))
        if limit and value and len(value) > limit:
            bag.add(field, too_long(limit, len(value)))
    bag.raise_if_any()
    name = hostname.lower()
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
    computer.operating_system = operating_system or computer.operating_system or None
    computer.agent_version = agent_version or computer.agent_version or None
    computer.last_seen_at = now
    flush(session)
    record(session, None, action, computer, {"hostname": [None, name]}, actor_label="C-Monitor agent")
    flush(session)
    return computer, action == "register"


def push_settings(session: DbSession, actor: Operator | None, computer: Computer, box: SecretBox) -> None:
    """Give the computer the customer's current settings, on purpose (edit right), audited."""
    if actor is not None and not actor.is_maintainer:
        require(session, actor, computer.customer_id, Right.EDIT)
    if actor is None:
        raise PermissionDenied("Pushing settings needs an operator.")
    computer.settings_snapshot = _seal(current_settings(session, computer.customer, box), box, open_=False)
    computer.settings_received_at = utcnow()
    record(session, actor, "push_settings", computer, {"settings": ["changed", "changed"]})
    flush(session)
