"""Encryption at rest for stored secrets: Fernet keys from PESADESK_ENCRYPTION_KEY, newest first."""

from __future__ import annotations

import base64
import binascii
import functools
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import Column, LargeBinary, Table, select

from app.extensions import db

#: What every "bad key" message ends with: the shape of a key and how to make one.
KEY_SHAPE = "a Fernet key is 32 bytes in URL-safe base64, 44 characters"
GENERATE_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


class SecretUnavailable(RuntimeError):
    """A stored secret cannot be decrypted (wrong or rotated key)."""


def split_keys(value: str | bytes | None) -> list[str]:
    """The comma-separated entries of PESADESK_ENCRYPTION_KEY, stripped, in order (newest first).

    Empty entries are kept (as "") so that check_keys can say which one is empty.
    """
    if value is None:
        return []
    text = value.decode() if isinstance(value, bytes) else value
    if not text.strip():
        return []
    return [part.strip() for part in text.split(",")]


def _key_bytes(text: str) -> bytes:
    """The raw key; raises ValueError if `text` is not base64 (either alphabet, as Fernet takes)."""
    # Fernet itself decodes leniently (it drops stray characters); validate=True refuses a key
    # mangled by copy and paste instead of turning it into some other key.
    try:
        return base64.b64decode(text.translate(str.maketrans("-_", "+/")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(text) from exc


def check_keys(value: str | bytes | None) -> list[str]:
    """Everything wrong with a PESADESK_ENCRYPTION_KEY value, in plain words ([] if usable).

    The messages name keys by position, never by their text: a key is a secret.
    """
    entries = split_keys(value)
    if not entries:
        return [f"PESADESK_ENCRYPTION_KEY is not set ({KEY_SHAPE})"]
    problems: list[str] = []
    several = len(entries) > 1
    seen: dict[bytes, int] = {}
    for position, text in enumerate(entries, start=1):
        name = (
            f"key {position} of {len(entries)} in PESADESK_ENCRYPTION_KEY"
            if several
            else "PESADESK_ENCRYPTION_KEY"
        )
        if not text:
            problems.append(f"{name} is empty (two commas in a row, or one at an end?)")
            continue
        try:
            raw = _key_bytes(text)
        except ValueError:
            problems.append(f"{name} is not URL-safe base64 ({KEY_SHAPE})")
            continue
        if len(raw) != 32:
            problems.append(
                f"{name} decodes to {len(raw)} bytes from {len(text)} characters ({KEY_SHAPE})"
            )
            continue
        if raw in seen:
            problems.append(f"{name} is the same as key {seen[raw]} of {len(entries)}")
            continue
        seen[raw] = position
    return problems


def startup_message(problems: list[str]) -> str:
    """The RuntimeError text for a refused start: what is wrong and how to make a key."""
    return (
        "; ".join(problems)
        + ". Generate a key with: "
        + GENERATE_KEY
        + " (to rotate keys, list several separated by commas, newest first; "
        "see README, Configuration)."
    )


@functools.lru_cache(maxsize=8)
def _keys_for(value: str) -> tuple[Fernet, ...]:
    problems = check_keys(value)
    if problems:
        raise SecretUnavailable("; ".join(problems))
    return tuple(Fernet(text.encode()) for text in split_keys(value))


def keys() -> tuple[Fernet, ...]:
    """One Fernet per configured key, newest first."""
    value = current_app.config["ENCRYPTION_KEY"]
    if not value:
        raise SecretUnavailable("PESADESK_ENCRYPTION_KEY is not set")
    return _keys_for(value.decode() if isinstance(value, bytes) else value)


def fernet() -> MultiFernet:
    """This install's keys: encrypts with the newest, decrypts with any (same methods as Fernet)."""
    return MultiFernet(keys())


def encrypt(plaintext: str) -> bytes:
    return fernet().encrypt(plaintext.encode())


def decrypt(ciphertext: bytes | None) -> str:
    if not ciphertext:
        raise SecretUnavailable("no secret stored")
    try:
        return fernet().decrypt(ciphertext).decode()
    except InvalidToken as exc:
        raise SecretUnavailable(
            "stored secret cannot be decrypted with the configured keys"
        ) from exc


def key_position(ciphertext: bytes) -> int | None:
    """Which configured key decrypts `ciphertext` (0 = the newest), or None if none does."""
    for position, key in enumerate(keys()):
        try:
            key.decrypt(ciphertext)
        except InvalidToken:
            continue
        return position
    return None


def rotate(ciphertext: bytes) -> bytes:
    """`ciphertext` encrypted again with the newest key; raises InvalidToken if no key fits."""
    return fernet().rotate(ciphertext)


@dataclass(frozen=True)
class StoredSecret:
    """One ciphertext in the database and where it lives (never printed with its value)."""

    column: Column[Any]
    #: primary-key column name -> value, e.g. {"id": 3}
    row: dict[str, Any]
    value: bytes

    @property
    def table(self) -> Table:
        return self.column.table

    @property
    def where(self) -> str:
        """e.g. "tills id=3 passkey_enc"."""
        ident = " ".join(f"{name}={value}" for name, value in self.row.items())
        return f"{self.table.name} {ident} {self.column.name}"


def encrypted_columns() -> list[Column[Any]]:
    """Every LargeBinary column named *_enc in the models, by table and column name.

    Found from the metadata, not listed, so a secret column added later is rotated too.
    """
    import app.models  # noqa: F401 - every model must be in the metadata

    return sorted(
        (
            column
            for table in db.metadata.tables.values()
            for column in table.columns
            if isinstance(column.type, LargeBinary) and column.name.endswith("_enc")
        ),
        key=lambda column: (column.table.name, column.name),
    )


def stored_secrets(column: Column[Any], *, lock: bool = False) -> list[StoredSecret]:
    """The non-empty values of `column`, by primary key; `lock` takes row locks (PostgreSQL)."""
    table: Table = column.table
    keys_ = list(table.primary_key.columns)
    query = select(*keys_, column).where(column.is_not(None)).order_by(*keys_)
    if lock:
        query = query.with_for_update()
    found = []
    for row in db.session.execute(query):
        value = row._mapping[column]
        if value:  # b"" is "nothing stored", as decrypt() treats it
            found.append(
                StoredSecret(column, {k.name: row._mapping[k] for k in keys_}, bytes(value))
            )
    return found
