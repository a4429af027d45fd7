"""Encryption at rest for till credentials (Fernet, key from PESADESK_ENCRYPTION_KEY)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app


class SecretUnavailable(RuntimeError):
    """A stored secret cannot be decrypted (wrong or rotated key)."""


def fernet() -> Fernet:
    """The Fernet of this install's PESADESK_ENCRYPTION_KEY."""
    return _fernet()


def _fernet() -> Fernet:
    key = current_app.config["ENCRYPTION_KEY"]
    if not key:
        raise SecretUnavailable("PESADESK_ENCRYPTION_KEY is not set")
    return Fernet(key.encode() if isinstance(key, str) else key)


def encrypt(plaintext: str) -> bytes:
    return _fernet().encrypt(plaintext.encode())


def decrypt(ciphertext: bytes | None) -> str:
    if not ciphertext:
        raise SecretUnavailable("no secret stored")
    try:
        return _fernet().decrypt(ciphertext).decode()
    except InvalidToken as exc:
        raise SecretUnavailable("stored secret cannot be decrypted with this key") from exc


def hint(plaintext: str) -> str:
    """The last 4 characters (at most) — enough to recognise a secret, not to use it."""
    return plaintext[-4:] if len(plaintext) >= 8 else ""
