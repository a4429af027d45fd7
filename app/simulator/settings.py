"""Simulator configuration keys, their defaults, and a reader over current_app.config."""

from __future__ import annotations

from typing import Any

from flask import current_app

# Public sandbox passkey published with Safaricom's samples (docs/daraja.md §10); not a secret.
from app.config import SANDBOX_PASSKEY

SANDBOX_SHORTCODE = "174379"
SANDBOX_MSISDN = "254708374149"

# Obviously fake demo credentials: nothing here may look like a real Daraja key pair.
DEMO_CONSUMER_KEY = "pesadesk-demo-key"
DEMO_CONSUMER_SECRET = "pesadesk-demo-secret"  # noqa: S105

# The virtual phone's PIN for every number not listed in SIMULATOR_PINS (demo only).
DEFAULT_PIN = "1234"

DEFAULTS: dict[str, Any] = {
    "SIMULATOR_CALLBACK_DELAY": 4.0,
    "SIMULATOR_LATE_CALLBACK_DELAY": 30.0,
    "SIMULATOR_DELAYED_CALLBACK_DELAY": 30.0,
    "SIMULATOR_DUPLICATE_CALLBACKS": 2,
    "SIMULATOR_SECOND_CALLBACK_GAP": 1.0,
    "SIMULATOR_SLOW_RESPONSE_DELAY": 5.0,
    "SIMULATOR_TIMEOUT_RESPONSE_DELAY": 60.0,
    "SIMULATOR_SPIKE_ARREST_RPS": 0.0,
    "SIMULATOR_SPIKE_ARREST_SCOPE": "consumer_key",
    "SIMULATOR_SAME_AMOUNT_WINDOW": 120.0,
    "SIMULATOR_LOCK_WINDOW": 60.0,
    "SIMULATOR_TOKEN_TTL": 3599,
    "SIMULATOR_CREDENTIALS": ((DEMO_CONSUMER_KEY, DEMO_CONSUMER_SECRET),),
    "SIMULATOR_PASSKEYS": {SANDBOX_SHORTCODE: SANDBOX_PASSKEY},
    "SIMULATOR_SINGLE_TOKEN": True,
    "SIMULATOR_TIMESTAMP_SKEW": 300,
    "SIMULATOR_MAX_AMOUNT": 250_000,
    "SIMULATOR_STRICT_KEYS": True,
    # Behave like production: an http:// CallBackURL is refused (sandbox accepts it).
    "SIMULATOR_REQUIRE_HTTPS_CALLBACK": False,
    "SIMULATOR_BUSINESS_NAMES": {SANDBOX_SHORTCODE: "PesaDesk Demo Shop"},
    "SIMULATOR_PINS": {},
    "SIMULATOR_PROMPT_TIMEOUT": 60.0,
    "SIMULATOR_PHONE_PRESENCE": 10.0,
}

SPIKE_ARREST_SCOPES = ("consumer_key", "global")


def setting(name: str) -> Any:
    """Value of a SIMULATOR_* key for the current app, falling back to DEFAULTS."""
    value = current_app.config.get(name)
    return DEFAULTS[name] if value is None else value


def pin_for(phone: str) -> str:
    """The virtual phone's M-PESA PIN for this number (SIMULATOR_PINS, else DEFAULT_PIN)."""
    pins = {str(k): str(v) for k, v in dict(setting("SIMULATOR_PINS")).items()}
    return pins.get(phone, DEFAULT_PIN)


def business_name(*codes: str) -> str:
    """Name shown in the prompt for the first of these shortcodes that has one, else the code."""
    names = {str(k): str(v) for k, v in dict(setting("SIMULATOR_BUSINESS_NAMES")).items()}
    for code in codes:
        if code in names:
            return names[code]
    return codes[0]
