"""Computers under a customer: registration keys, registration by the C-Monitor agent, the
agent's own credential, and the settings snapshot a computer keeps until someone pushes the
current settings on purpose.

Two credentials, both made only on purpose, shown once and stored only as their SHA-256 hash
(random bytes, so a plain hash cannot be guessed back), like the operators' API tokens:
- the customer's registration key (`rotate_registration_key`) lets an agent register a computer.
  It opens the customer's secrets (through the computer it registers), so only someone who may be
  given those secrets makes one (services.secrets.may_handle_secrets: a maintainer);
- each computer's agent credential, issued by its registration (a re-registration of the same
  host name replaces it) and shown only in that answer: the agent fetches its settings, secrets
  included, with it (`settings_for_agent`). No operator can read it back.
Every registration and every fetch of the settings is an event on the customer's History,
without any secret."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import select

from i18n import _
from models import Computer, Customer, Operator
from models.base import utcnow
from services.access import Right, require
from services.audit import record
from services.contact_info import clean_text
from services.customer_settings import effective_settings
from services.errors import ErrorBag, PermissionDenied
from services.limits import max_length, too_long
from services.secrets import SecretBox, is_sealed, may_handle_secrets, seal, unseal
from services.transactions import DbSession, flush

SECRET_KEYS = ("password", "access_password")  # values sealed inside a stored snapshot
AGENT = "C-Monitor agent"  # who the History says acted


class UnknownRegistrationKey(PermissionDenied):
    """The agent's key names no customer (unknown, or rotated since): the agent is not
    authenticated (the API's 401), rather than refused a right."""


class UnknownAgentCredential(PermissionDenied):
    """The agent's credential names no computer (unknown, or replaced by a re-registration):
    the API's 401."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


def has_registration_key(customer: Customer) -> bool:
    """Whether the customer has a registration key. Only its hash is stored, so the key itself
    can be read nowhere: it is shown once, by `rotate_registration_key`. Reads, never writes."""
    return customer.registration_key_hash is not None


def may_issue_registration_key(actor: Operator | None) -> bool:
    """Whether `actor` may make a registration key: a key registers a computer, and a computer
    receives the customer's secrets, so the rule is who may be given them."""
    return may_handle_secrets(actor)


def rotate_registration_key(session: DbSession, actor: Operator | None, customer: Customer) -> str:
    """Make a new registration key and return it — the only time anybody sees it; only its hash
    is stored, and the old key stops working at once. An explicit action (a POST), never a side
    effect of reading. Only those who may be given the customer's secrets may (a maintainer;
    PermissionDenied otherwise, also without the edit right). Audited (the key itself is not
    recorded); flushes, the door commits."""
    if actor is not None:
        require(session, actor, customer.id, Right.EDIT)
    if not may_issue_registration_key(actor):
        raise PermissionDenied(_("Only a maintainer may make a registration key: it gives the computers it "
                                 "registers the customer's passwords."))
    key = secrets.token_urlsafe(24)
    customer.registration_key_hash = _hash(key)
    record(session, actor, "rotate_registration_key", customer,
           {"registration_key": ["changed", "changed"]})
    flush(session)
    return key


def _seal(value: Any, box: SecretBox) -> Any:
    """The settings document with its secrets sealed, for storing."""
    if isinstance(value, dict):
        return {k: (seal(box, v) if k in SECRET_KEYS and isinstance(v, str) else _seal(v, box))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_seal(v, box) for v in value]
    return value


def _open(value: Any, box: SecretBox | None) -> Any:
    """A stored settings document with its secrets opened (`box`) or left out (None)."""
    if is_sealed(value):
        return unseal(box, value) if box is not None else None
    if isinstance(value, dict):
        return {k: _open(v, box) for k, v in value.items()
                if box is not None or k not in SECRET_KEYS}
    if isinstance(value, list):
        return [_open(v, box) for v in value]
    return value


def current_settings(session: DbSession, customer: Customer, box: SecretBox | None) -> dict:
    return effective_settings(session, customer, box)


def settings_of_computer(computer: Computer, box: SecretBox | None) -> dict:
    """What the computer was given: with its secrets opened when `box` is given (for the agent
    itself, `settings_for_agent`), without them otherwise."""
    return _open(computer.settings_snapshot or {}, box)


def settings_differ(session: DbSession, computer: Computer, box: SecretBox) -> bool:
    return settings_of_computer(computer, box) != current_settings(session, computer.customer, box)


def register_computer(session: DbSession, key: str | None, hostname: str | None, box: SecretBox, *,
                      operating_system: str | None = None,
                      agent_version: str | None = None) -> tuple[Computer, bool, str]:
    """Register (or find again) a computer of the customer whose key this is. A new computer gets
    a snapshot of the customer's effective settings; a known hostname returns the same computer
    with the settings it has. Either way the computer gets a new agent credential (a reinstalled
    agent registers again; the credential before stops working). Returns (computer, newly
    registered, the agent credential — its only appearance). An event on the customer's History
    ("register_computer"), without any secret. Raises UnknownRegistrationKey for an unknown or
    rotated key, ValidationFailed for a missing or too-long value (limits from the columns).
    Flushes; the door commits."""
    customer = session.scalar(select(Customer).where(Customer.registration_key_hash == _hash(key or "-")))
    if customer is None or not key:
        raise UnknownRegistrationKey(_("Unknown or rotated registration key."))
    bag = ErrorBag()
    hostname = bag.check("hostname", clean_text, hostname)
    if not hostname:
        bag.add("hostname", _("The computer's host name is required."))
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
    new = computer is None
    if computer is None:
        computer = Computer(customer=customer, hostname=name, registered_at=now, settings_received_at=now,
                            settings_snapshot=_seal(current_settings(session, customer, box), box))
        session.add(computer)
    computer.operating_system = operating_system or computer.operating_system or None
    computer.agent_version = agent_version or computer.agent_version or None
    computer.last_seen_at = now
    credential = secrets.token_urlsafe(32)
    computer.agent_credential_hash = _hash(credential)
    flush(session)
    record(session, None, "register_computer" if new else "reregister_computer", customer,
           {"computer": [None, name], "agent_credential": ["changed", "changed"]},
           actor_label=AGENT)
    flush(session)
    return computer, new, credential


def computer_of_credential(session: DbSession, credential: str | None) -> Computer:
    """The computer whose agent credential this is. Raises UnknownAgentCredential."""
    computer = session.scalar(select(Computer).where(Computer.agent_credential_hash
                                                     == _hash(credential or "-"))) if credential else None
    if computer is None:
        raise UnknownAgentCredential(_("Unknown or replaced agent credential: register the computer again."))
    return computer


def settings_for_agent(session: DbSession, credential: str | None, box: SecretBox) -> tuple[Computer, dict]:
    """The settings of the computer whose agent credential this is, secrets opened — for the
    agent itself, the one place they leave in clear. An event on the customer's History
    ("fetch_computer_settings"), without any secret. Raises UnknownAgentCredential. Flushes;
    the door commits."""
    computer = computer_of_credential(session, credential)
    computer.last_seen_at = utcnow()
    record(session, None, "fetch_computer_settings", computer.customer,
           {"computer": [None, computer.hostname]}, actor_label=AGENT)
    flush(session)
    return computer, settings_of_computer(computer, box)


def push_settings(session: DbSession, actor: Operator | None, computer: Computer, box: SecretBox) -> None:
    """Give the computer the customer's current settings, on purpose (edit right), audited."""
    if actor is not None and not actor.is_maintainer:
        require(session, actor, computer.customer_id, Right.EDIT)
    if actor is None:
        raise PermissionDenied(_("Pushing settings needs an operator."))
    computer.settings_snapshot = _seal(current_settings(session, computer.customer, box), box)
    computer.settings_received_at = utcnow()
    record(session, actor, "push_settings", computer, {"settings": ["changed", "changed"]})
    flush(session)
