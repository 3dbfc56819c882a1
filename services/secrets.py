"""Encryption of secrets at rest (C-Monitor password, mail and directory passwords), who may be
given them, and keeping them out of logs.

Fernet (AES-128-CBC + HMAC) from `cryptography`, keyed by ENCRYPTION_KEY from configuration.
Callers hold the key; nothing here reads configuration.

Where secrets live: columns named `*_encrypted`, and inside JSON documents (a computer's settings
snapshot, a wizard draft) as a sealed value `{"__encrypted__": token}` (`seal` / `unseal`). Key
rotation (`rotate_secrets`) finds both by these conventions alone — every `_encrypted` column and
every sealed value in every JSON column — so a new place for a secret is rotated without anyone
remembering to list it. A secret is never kept anywhere else (audit data masks them:
services.audit).
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import JSON
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine

MASK = "changed"  # what audit trails and logs say instead of a secret value
SECRET_MARK = "__encrypted__"  # the one key of a sealed value inside a JSON document
# What a Fernet token looks like (version byte 0x80, base64url): ciphertext anywhere in a text.
FERNET_TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_\-]{60,}={0,2}")


class SecretBox:
    """Encrypts and decrypts secret strings with one Fernet key."""

    def __init__(self, key: str | bytes):
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ValueError("ENCRYPTION_KEY must be a Fernet key (32 url-safe base64 bytes).") from exc

    def encrypt(self, plaintext: str | None) -> str | None:
        if plaintext is None or plaintext == "":
            return None
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str | None) -> str | None:
        if not token:
            return None
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("A stored secret cannot be decrypted with this ENCRYPTION_KEY.") from None


def seal(box: SecretBox, plaintext: str | None) -> dict[str, str] | None:
    """A secret as it is kept inside a JSON document (None for no secret)."""
    token = box.encrypt(plaintext)
    return {SECRET_MARK: token} if token else None


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {SECRET_MARK} and isinstance(value[SECRET_MARK], str)


def unseal(box: SecretBox, value: Any) -> str | None:
    """The secret of a sealed value (None for anything else)."""
    return box.decrypt(value[SECRET_MARK]) if is_sealed(value) else None


def may_handle_secrets(actor) -> bool:
    """Whether `actor` may be given the stored secrets in clear, directly or through a credential
    that opens them (a computer's registration key). The panel shows a stored secret to nobody:
    its forms only say whether one is set. A computer receives the customer's secrets together
    with the built-in mail servers' passwords, which only a maintainer may set — so only a
    maintainer (or the system itself, `actor` None) may hand out such a credential. One rule,
    used by every door that issues one."""
    if actor is None:
        return True
    return bool(actor.is_active and actor.is_maintainer)


def encrypted_columns():
    """(model, column name) of every secret stored encrypted, found by the `_encrypted` suffix,
    so a new secret column is rotated without anyone remembering to list it."""
    from models import Base

    for mapper in Base.registry.mappers:
        for column in mapper.columns:
            if column.key.endswith("_encrypted"):
                yield mapper.class_, column.key


def json_columns():
    """(model, attribute) of every JSON column: where sealed secrets may live."""
    from models import Base

    for mapper in Base.registry.mappers:
        for attr in mapper.column_attrs:
            if isinstance(attr.columns[0].type, JSON):
                yield mapper.class_, attr.key


def _rotate_json(value: Any, rotate) -> tuple[Any, int]:
    """`value` with every sealed secret inside re-encrypted, and how many there were."""
    if is_sealed(value):
        return {SECRET_MARK: rotate(value[SECRET_MARK])}, 1
    if isinstance(value, dict):
        count = 0
        out = {}
        for key, item in value.items():
            out[key], found = _rotate_json(item, rotate)
            count += found
        return out, count
    if isinstance(value, list):
        items = [_rotate_json(item, rotate) for item in value]
        return [item for item, _ in items], sum(found for _, found in items)
    return value, 0


def rotate_secrets(session, new_key: str | bytes, old_keys: list[str | bytes]) -> int:
    """Re-encrypt every stored secret with `new_key` — each `_encrypted` column and each sealed
    value inside every JSON column (values under `new_key` or any of `old_keys` are read); the
    caller's unit of work. Returns how many values were re-encrypted. Raises ValueError, changing
    nothing, when a value opens with none of the keys."""
    from sqlalchemy import select

    keyring = MultiFernet([Fernet(new_key), *(Fernet(k) for k in old_keys)])
    rotated = 0
    for model, column in encrypted_columns():
        for row in session.scalars(select(model).where(getattr(model, column).is_not(None))):
            setattr(row, column, _rotated(keyring, getattr(row, column), model=model, row=row))
            rotated += 1
    for model, column in json_columns():
        for row in session.scalars(select(model).where(getattr(model, column).is_not(None))):
            opener = partial(_rotated, keyring, model=model, row=row)
            value, found = _rotate_json(getattr(row, column), opener)
            if found:
                setattr(row, column, value)  # a new document: JSON columns track assignment only
                rotated += found
    session.flush()
    return rotated


def _rotated(keyring: MultiFernet, token: str, *, model, row) -> str:
    try:
        return keyring.rotate(token.encode()).decode()
    except InvalidToken:
        raise ValueError(f"A secret of {model.__name__} {row.id} opens with none of the "
                         "given keys: nothing was changed.") from None


def without_values(message: str) -> str:
    """A database error's text without what the server quoted of the data: PostgreSQL's DETAIL
    ("Failing row contains (…)", "Key (…)=(…)"), HINT and CONTEXT lines; any ciphertext masked."""
    head = re.split(r"\n\s*(?:DETAIL|HINT|CONTEXT|WHERE):", message, maxsplit=1)[0]
    return FERNET_TOKEN.sub(MASK, head)


def _scrub_database_error(context) -> None:
    """Every database error leaves the driver without row data in its text, whoever logs or shows
    it (Flask's 500 log, Flask-Admin's messages): the bound parameters are hidden by the engine
    option `hide_parameters` (config.py); this removes what the server itself quoted. The
    structured details (`diag.constraint_name`) stay for the code that reads them."""
    for exc in (context.original_exception, context.sqlalchemy_exception):
        if exc is not None and exc.args and isinstance(exc.args[0], str):
            exc.args = (without_values(exc.args[0]), *exc.args[1:])


if not sa_event.contains(Engine, "handle_error", _scrub_database_error):
    sa_event.listen(Engine, "handle_error", _scrub_database_error)

