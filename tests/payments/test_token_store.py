"""One Daraja token per till for the whole install, stored in the database."""

import threading
from pathlib import Path

import requests
import sqlalchemy as sa

from app.crypto import fernet
from app.daraja import DarajaClient
from app.daraja.tokens import CachedToken
from app.extensions import db
from app.models import DarajaToken
from app.payments.token_store import DatabaseTokenStore


def _store(app, till):
    return DatabaseTokenStore(db.engine, till.id, fernet(), Path(app.instance_path))


def _fetches(till) -> int:
    db.session.expire_all()
    row = db.session.get(DarajaToken, till.id)
    return 0 if row is None else row.fetch_count


def test_token_is_encrypted_at_rest_and_round_trips(app, till):
    store = _store(app, till)
    store.put(CachedToken("tok-plain-abc", 1e12))
    raw = db.session.execute(sa.select(DarajaToken.access_token_enc)).scalar_one()
    assert b"tok-plain-abc" not in raw
    assert store.get() == CachedToken("tok-plain-abc", 1e12)


def test_invalidate_only_drops_the_refused_token(app, till):
    store = _store(app, till)
    store.put(CachedToken("new-token", 1e12))
    store.invalidate("old-token")  # a stale worker's refused token: keep the new one
    assert store.get().access_token == "new-token"
    store.invalidate("new-token")
    assert store.get() is None


def test_many_workers_fetch_one_token(live_app, till):
    """Two clients (as two processes would have) × 8 threads: Daraja sees one OAuth request."""
    base = live_app.config["SIMULATOR_URL"]
    clients = [
        DarajaClient(
            base, "pesadesk-demo-key", "pesadesk-demo-secret", token_store=_store(live_app, till)
        )
        for _ in range(2)
    ]
    barrier = threading.Barrier(16)
    tokens: list[str] = []

    def work(client):
        barrier.wait()
        tokens.append(client.get_token())

    threads = [threading.Thread(target=work, args=(clients[i % 2],)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert len(tokens) == 16 and len(set(tokens)) == 1
    assert _fetches(till) == 1


def test_a_refresh_by_one_worker_is_used_by_the_others(live_app, till):
    base = live_app.config["SIMULATOR_URL"]
    a = DarajaClient(
        base, "pesadesk-demo-key", "pesadesk-demo-secret", token_store=_store(live_app, till)
    )
    b = DarajaClient(
        base, "pesadesk-demo-key", "pesadesk-demo-secret", token_store=_store(live_app, till)
    )
    first = a.get_token()
    assert b.get_token() == first  # b reuses a's token from the database
    requests.post(f"{base}/_control/tokens/expire", timeout=5)
    # Daraja forgot every token: whoever notices first refreshes; the other reuses it.
    a.get_token(force=True)
    assert b.get_token() != first
    assert _fetches(till) == 2
