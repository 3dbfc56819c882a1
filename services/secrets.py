"""Encryption of secrets at rest (C-Monitor password, mail and directory passwords).

Fernet (AES-128-CBC + HMAC) from `cryptography`, keyed by ENCRYPTION_KEY from configuration.
Callers hold the key; nothing here reads configuration.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

MASK = "changed"  # what audit trails and logs say instead of a secret value


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


def encrypted_columns():
    """(model, column name) of every secret stored encrypted, found by the `_encrypted` suffix,
    so a new secret column is rotated without anyone remembering to list it."""
    from models import Base

    for mapper in Base.registry.mappers:
        for column in mapper.columns:
            if column.key.endswith("_encrypted"):
                yield mapper.class_, column.key


def rotate_secrets(session, new_key: str | bytes, old_keys: list[str | bytes]) -> int:
    """Re-encrypt every stored secret with `new_key` (values under `new_key` or any of
    `old_keys` are read); the caller's unit of work. Returns how many values were re-encrypted.
    Raises ValueError, changing nothing, when a value opens with none of the keys."""
    from sqlalchemy import select

    keyring = MultiFernet([Fernet(new_key), *(Fernet(k) for k in old_keys)])
    rotated = 0
    for model, column in encrypted_columns():
        for row in session.scalars(select(model).where(getattr(model, column).is_not(None))):
            try:
                setattr(row, column, keyring.rotate(getattr(row, column).encode()).decode())
            except InvalidToken:
                raise ValueError(f"A secret of {model.__name__} {row.id} opens with none of the "
                                 "given keys: nothing was changed.") from None
            rotated += 1
    session.flush()
    return rotated
