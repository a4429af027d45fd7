"""Who may post to a callback URL, and how often: an address allowlist and a per-token rate."""

from __future__ import annotations

import functools
import ipaddress
import threading
import time

from flask import current_app

#: Source addresses Safaricom is reported to send callbacks from (docs/daraja.md §9, list B:
#: list A plus two). Not published on the portal: an allowlist is an extra control, never the
#: only one, and a refusal is logged and counted.
SAFARICOM_ADDRESSES = (
    "196.201.214.200",
    "196.201.214.206",
    "196.201.213.114",
    "196.201.214.207",
    "196.201.214.208",
    "196.201.213.44",
    "196.201.212.127",
    "196.201.212.138",
    "196.201.212.129",
    "196.201.212.136",
    "196.201.212.74",
    "196.201.212.69",
    "196.201.212.128",
    "196.201.212.132",
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _networks(setting: str) -> tuple[Network, ...] | None:
    """None: every address may post (the default). Else the allowed networks."""
    names = [part.strip() for part in setting.split(",") if part.strip()]
    if not names:
        return None
    found: list[Network] = []
    for name in names:
        if name.lower() == "safaricom":
            found.extend(ipaddress.ip_network(a) for a in SAFARICOM_ADDRESSES)
        else:
            found.append(ipaddress.ip_network(name, strict=False))
    return tuple(found)


def check_setting(setting: str) -> str | None:
    """What is wrong with a PESADESK_CALLBACK_ALLOWED_IPS value, or None."""
    try:
        _networks(setting)
    except ValueError as exc:
        return f"PESADESK_CALLBACK_ALLOWED_IPS: {exc}"
    return None


def address_allowed(address: str | None) -> bool:
    networks = _networks(current_app.config["CALLBACK_ALLOWED_IPS"])
    if networks is None:
        return True
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in network for network in networks)


class RateLimiter:
    """A token bucket per callback token, in this process: Safaricom posts a handful of
    callbacks per payment, so a flood on one URL is not Safaricom and is refused before it
    costs a database write. Each worker process keeps its own buckets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str, rate: float, burst: float) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            if len(self._buckets) > 10_000:  # unknown tokens must not grow memory forever
                self._buckets.clear()
            return allowed

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


LIMITER = RateLimiter()


def within_rate(token: str) -> bool:
    rate = float(current_app.config["CALLBACK_RATE_PER_S"])
    if rate <= 0:
        return True
    return LIMITER.allow(token, rate, burst=max(rate * 2, 5.0))
