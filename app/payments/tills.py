"""How a till becomes a Daraja client: base URL per environment, decrypted credentials, cache."""

from __future__ import annotations

import threading
from pathlib import Path

from flask import current_app

from app.config import DARAJA_URLS
from app.crypto import decrypt, fernet
from app.daraja.client import DarajaClient
from app.extensions import db
from app.models import Till
from app.payments.token_store import DatabaseTokenStore

_clients: dict[tuple, DarajaClient] = {}
_lock = threading.Lock()


def environment_urls() -> dict[str, str]:
    """Environment → Daraja base URL (the simulator only where it is mounted). Tests point
    "sandbox" or "production" at a simulator through the DARAJA_URLS setting."""
    urls = dict(current_app.config.get("DARAJA_URLS") or DARAJA_URLS)
    if current_app.config.get("SIMULATOR_ENABLED"):
        urls["simulator"] = current_app.config["SIMULATOR_URL"]
    return urls


def daraja_base_url(till: Till) -> str:
    if till.environment == "simulator":
        return current_app.config["SIMULATOR_URL"]
    return environment_urls()[till.environment]


def callback_url(till: Till) -> str:
    # No "mpesa" in the path: Safaricom is reported to reject such callback URLs.
    return f"{current_app.config['BASE_URL']}/cb/stk/{till.callback_token}"


def client_for(till: Till) -> DarajaClient:
    """One client per till and credential version, so its token cache and session are reused."""
    key = (till.id, daraja_base_url(till), till.updated_at, current_app.config["ENCRYPTION_KEY"])
    with _lock:
        client = _clients.get(key)
        if client is None:
            # Drop clients built from older credentials of the same till.
            for old in [k for k in _clients if k[0] == till.id]:
                del _clients[old]
            client = DarajaClient(
                daraja_base_url(till),
                decrypt(till.consumer_key_enc),
                decrypt(till.consumer_secret_enc),
                connect_timeout=current_app.config["DARAJA_CONNECT_TIMEOUT"],
                read_timeout=current_app.config["DARAJA_READ_TIMEOUT"],
                # One token per till for the whole install, not one per worker.
                token_store=DatabaseTokenStore(
                    db.engine, till.id, fernet(), Path(current_app.instance_path)
                ),
            )
            _clients[key] = client
        return client


def passkey(till: Till) -> str:
    return decrypt(till.passkey_enc)


def reset_clients() -> None:
    """Forget cached clients (tests, and after a credential change)."""
    with _lock:
        _clients.clear()


def simulator_forbidden_reason() -> str | None:
    """The simulator must never answer while a till is live: a fake "paid" could ship goods."""
    from sqlalchemy import select

    live = db.session.execute(
        select(Till.name).where(Till.environment == "production").limit(1)
    ).scalar_one_or_none()
    if live is not None:
        return f"Till {live!r} is in production: the Daraja simulator is disabled."
    return None
