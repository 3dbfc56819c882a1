"""Encryption of secrets at rest (C-Monitor password, mail and directory passwords).

Fernet (AES-128-CBC + HMAC) from `cryptography`, keyed by ENCRYPTION_KEY from configuration.
Callers hold the key; nothing here reads configuration.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

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
