"""Where the Daraja OAuth token lives between calls, and the lock that serialises refreshes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class CachedToken:
    """An access token and the epoch second at which Daraja stops accepting it."""

    # repr=False: a token in a log line or a traceback is a credential leak.
    access_token: str = field(repr=False)
    expires_at: float


class TokenStore(Protocol):
    """Storage for the one shared token.

    Daraja is documented to invalidate the previous token whenever a new one is issued,
    so every worker must share a single token and refresh it under one lock. The memory
    store serves one process; a database-backed store (same four methods) serves many.
    """

    def get(self) -> CachedToken | None:
        """Return the stored token, expired or not, or None."""
        ...

    def put(self, token: CachedToken) -> None:
        """Replace the stored token."""
        ...

    def invalidate(self, access_token: str) -> None:
        """Forget the stored token, but only if it is still ``access_token``.

        Comparing first means a caller holding a stale token cannot throw away a fresh one
        that another thread or process has just fetched.
        """
        ...

    def refresh_lock(self) -> AbstractContextManager[None]:
        """A lock held while fetching a new token, so only one OAuth request runs at a time."""
        ...


class MemoryTokenStore:
    """Process-local TokenStore guarded by threading locks."""

    def __init__(self) -> None:
        # Two locks: the refresh lock is held across a slow HTTP call, while get/put/invalidate
        # must stay quick (and are called while the refresh lock is held).
        self._data_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._token: CachedToken | None = None

    def get(self) -> CachedToken | None:
        with self._data_lock:
            return self._token

    def put(self, token: CachedToken) -> None:
        with self._data_lock:
            self._token = token

    def invalidate(self, access_token: str) -> None:
        with self._data_lock:
            if self._token is not None and self._token.access_token == access_token:
                self._token = None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._refresh_lock:
            yield

    def refresh_lock(self) -> AbstractContextManager[None]:
        return self._locked()
