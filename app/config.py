"""Deploy-time configuration: every PESADESK_* environment variable is read here, only here."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

# Public sandbox passkey published with Safaricom's samples (docs/daraja.md §10); not a secret.
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"  # noqa: S105

# Public, documented Daraja hosts.  The simulator's URL is derived from PESADESK_BASE_URL.
DARAJA_URLS = {
    "sandbox": "https://sandbox.safaricom.co.ke",
    "production": "https://api.safaricom.co.ke",
}


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(value: str | None, default: int) -> int:
    return default if value in (None, "") else int(value)


def _float(value: str | None, default: float) -> float:
    return default if value in (None, "") else float(value)


def _loose(value: str) -> Any:
    """A simulator setting from text: JSON (numbers, booleans, objects) or a plain string."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def _simulator_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Every PESADESK_SIMULATOR_<NAME> becomes SIMULATOR_<NAME> (see docs/simulator.md)."""
    return {
        key.removeprefix("PESADESK_"): _loose(value)
        for key, value in env.items()
        if key.startswith("PESADESK_SIMULATOR_") and key != "PESADESK_SIMULATOR_URL"
    }


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config mapping from PESADESK_* variables (documented in README)."""
    env = os.environ if environ is None else environ
    port = _int(env.get("PORT"), 5000)
    base_url = env.get("PESADESK_BASE_URL") or f"http://127.0.0.1:{port}"
    demo = _bool(env.get("PESADESK_DEMO"), False)
    return {
        **_simulator_settings(env),
        "PORT": port,
        "SECRET_KEY": env.get("PESADESK_SECRET_KEY"),
        "SQLALCHEMY_DATABASE_URI": env.get("PESADESK_DATABASE_URL"),
        # Fernet key (urlsafe base64, 32 bytes) that encrypts till credentials at rest.
        "ENCRYPTION_KEY": env.get("PESADESK_ENCRYPTION_KEY"),
        "BASE_URL": base_url.rstrip("/"),
        "DEMO": demo,
        "SIMULATOR_ENABLED": _bool(env.get("PESADESK_SIMULATOR"), demo),
        "SIMULATOR_URL": (env.get("PESADESK_SIMULATOR_URL") or f"{base_url.rstrip('/')}/simulator"),
        "SIMULATOR_CALLBACK_DELAY": _float(env.get("PESADESK_SIMULATOR_CALLBACK_DELAY"), 4.0),
        "SIMULATOR_TOKEN_TTL": _int(env.get("PESADESK_SIMULATOR_TOKEN_TTL"), 3599),
        "MAX_AMOUNT": _int(env.get("PESADESK_MAX_AMOUNT"), 250_000),
        "PROMPTS_PER_PHONE_PER_MINUTE": _int(env.get("PESADESK_PROMPTS_PER_PHONE_PER_MINUTE"), 3),
        "QUERY_FIRST_DELAY": _int(env.get("PESADESK_QUERY_FIRST_DELAY"), 25),
        "GIVE_UP_AFTER": _int(env.get("PESADESK_GIVE_UP_AFTER"), 180),
        "RECONCILE_INTERVAL": _int(env.get("PESADESK_RECONCILE_INTERVAL"), 600),
        "RECONCILE_FOR": _int(env.get("PESADESK_RECONCILE_FOR"), 24 * 3600),
        "POLL_INTERVAL": _int(env.get("PESADESK_POLL_INTERVAL"), 5),
        "RECONCILE_JOB_INTERVAL": _int(env.get("PESADESK_RECONCILE_JOB_INTERVAL"), 60),
        "DARAJA_CONNECT_TIMEOUT": _float(env.get("PESADESK_DARAJA_CONNECT_TIMEOUT"), 5.0),
        "DARAJA_READ_TIMEOUT": _float(env.get("PESADESK_DARAJA_READ_TIMEOUT"), 30.0),
        "CALLBACK_MAX_BYTES": _int(env.get("PESADESK_CALLBACK_MAX_BYTES"), 64 * 1024),
        # Owners and admins are signed out after this many minutes without a request.
        "IDLE_TIMEOUT_MINUTES": _float(env.get("PESADESK_IDLE_TIMEOUT_MINUTES"), 30.0),
        # Cashiers stay signed in for their shift: this many hours after signing in.
        "CASHIER_SESSION_HOURS": _float(env.get("PESADESK_CASHIER_SESSION_HOURS"), 12.0),
        # After a rotation, how long a till's old callback token still works (hours).
        "CALLBACK_TOKEN_GRACE_HOURS": _float(env.get("PESADESK_CALLBACK_TOKEN_GRACE_HOURS"), 24.0),
        # Callbacks accepted per second per token, per worker process (a flood is refused).
        "CALLBACK_RATE_PER_S": _float(env.get("PESADESK_CALLBACK_RATE_PER_S"), 100.0),
        # Addresses callbacks may come from: empty (any), "safaricom" (docs/daraja.md §9), or
        # IPs and networks separated by commas.
        "CALLBACK_ALLOWED_IPS": env.get("PESADESK_CALLBACK_ALLOWED_IPS", ""),
        # Proxies in front of the app whose X-Forwarded-For is believed (werkzeug ProxyFix).
        "TRUSTED_PROXIES": _int(env.get("PESADESK_TRUSTED_PROXIES"), 0),
        # Stored raw callbacks older than this many days are deleted by a job.
        "CALLBACK_RETENTION_DAYS": _int(env.get("PESADESK_CALLBACK_RETENTION_DAYS"), 400),
        "RETENTION_JOB_INTERVAL": 6 * 3600,
    }
