"""The Daraja token shared by every worker and process of an install (Daraja keeps one per app).

Issuing a token invalidates the previous one, so workers that each fetched their own would
keep knocking each other out. The token lives in `daraja_tokens`, encrypted, and is
refreshed under a lock that spans processes: a PostgreSQL advisory lock, or on SQLite a
file lock beside the database.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.daraja.tokens import CachedToken
from app.models import DarajaToken
from app.models.types import utcnow

# Advisory-lock namespace for token refreshes (the till id is the second key).
_PG_LOCK_CLASS = 0x5E5A
_thread_locks: dict[tuple[str, int], threading.Lock] = {}
_thread_locks_guard = threading.Lock()


class DatabaseTokenStore:
    """TokenStore (see app.daraja.tokens) backed by the database, one row per till."""

    def __init__(self, engine: Engine, till_id: int, fernet: MultiFernet, lock_dir: Path) -> None:
        self._engine = engine
        self._till_id = till_id
        self._fernet = fernet
        self._lock_dir = lock_dir
        self._table = DarajaToken.__table__

    def get(self) -> CachedToken | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(self._table.c.access_token_enc, self._table.c.expires_at).where(
                    self._table.c.till_id == self._till_id
                )
            ).first()
        if row is None or row.access_token_enc is None or row.expires_at is None:
            return None
        try:
            token = self._fernet.decrypt(row.access_token_enc).decode()
        except InvalidToken:
            return None  # encrypted under an old key: fetch a new one
        return CachedToken(access_token=token, expires_at=row.expires_at)

    def put(self, token: CachedToken) -> None:
        values = {
            "access_token_enc": self._fernet.encrypt(token.access_token.encode()),
            "expires_at": token.expires_at,
            "updated_at": utcnow(),
        }
        t = self._table
        with self._engine.begin() as conn:
            updated = conn.execute(
                update(t)
                .where(t.c.till_id == self._till_id)
                .values(fetch_count=t.c.fetch_count + 1, **values)
            ).rowcount
            if not updated:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(t).values(till_id=self._till_id, fetch_count=1, **values)
                        )
                except IntegrityError:
                    conn.execute(
                        update(t)
                        .where(t.c.till_id == self._till_id)
                        .values(fetch_count=t.c.fetch_count + 1, **values)
                    )

    def invalidate(self, access_token: str) -> None:
        current = self.get()
        if current is None or current.access_token != access_token:
            return  # someone already replaced it: keep theirs
        t = self._table
        with self._engine.begin() as conn:
            conn.execute(
                update(t)
                .where(t.c.till_id == self._till_id, t.c.expires_at == current.expires_at)
                .values(access_token_enc=None, expires_at=None)
            )

    @contextmanager
    def refresh_lock(self) -> Iterator[None]:
        # Threads of this process queue on an in-process lock first, so that only one of
        # them holds a connection while waiting for the cross-process lock.
        key = (str(self._engine.url), self._till_id)
        with _thread_locks_guard:
            thread_lock = _thread_locks.setdefault(key, threading.Lock())
        with thread_lock:
            if self._engine.dialect.name == "postgresql":
                with self._pg_advisory_lock():
                    yield
            else:
                with self._file_lock():
                    yield

    @contextmanager
    def _pg_advisory_lock(self) -> Iterator[None]:
        with self._engine.connect() as conn:
            conn.execute(select(func.pg_advisory_lock(_PG_LOCK_CLASS, self._till_id)))
            try:
                yield
            finally:
                conn.execute(select(func.pg_advisory_unlock(_PG_LOCK_CLASS, self._till_id)))
                conn.commit()

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        self._lock_dir.mkdir(parents=True, exist_ok=True)
        path = self._lock_dir / f"daraja-token-{self._till_id}.lock"
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def forget_tokens(engine: Engine, till_id: int) -> None:
    """Drop a till's stored token (after its credentials change)."""
    with engine.begin() as conn:
        conn.execute(delete(DarajaToken.__table__).where(DarajaToken.till_id == till_id))
