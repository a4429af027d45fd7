"""Simulator configuration keys, their defaults, and a reader over current_app.config."""

from __future__ import annotations

from typing import Any

from flask import current_app

# Public sandbox passkey published with Safaricom's samples (daraja.md §10); not a secret.
from app.config import SANDBOX_PASSKEY

SANDBOX_SHORTCODE = "174379"
SANDBOX_MSISDN = "254708374149"

# Obviously fake demo credentials: nothing here may look like a real Daraja key pair.
DEMO_CONSUMER_KEY = "pesadesk-demo-key"
DEMO_CONSUMER_SECRET = "pesadesk-demo-secret"  # noqa: S105

DEFAULTS: dict[str, Any] = {
    "SIMULATOR_CALLBACK_DELAY": 4.0,
    "SIMULATOR_LATE_CALLBACK_DELAY": 30.0,
    "SIMULATOR_TOKEN_TTL": 3599,
    "SIMULATOR_CREDENTIALS": ((DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET),),
    "SIMULATOR_PASSKEYS": {SANDBOX_SHORTCODE: SANDBOX_PASSKEY},
    "SIMULATOR_SINGLE_TOKEN": True,
    "SIMULATOR_TIMESTAMP_SKEW": 300,
    "SIMULATOR_MAX_AMOUNT": 250_000,
    "SIMULATOR_STRICT_KEYS": True,
}


def setting(name: str) -> Any:
    """Value of a SIMULATOR_* key for the current app, falling back to DEFAULTS."""
    value = current_app.config.get(name)
    return DEFAULTS[name] if value is None else value
