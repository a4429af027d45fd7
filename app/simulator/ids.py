"""Identifier and clock helpers shaped like the ones Daraja and M-Pesa hand out."""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

NAIROBI = ZoneInfo("Africa/Nairobi")
TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"

_UPPER_ALNUM = string.ascii_uppercase + string.digits
_ALNUM = string.ascii_letters + string.digits


def now_eat() -> datetime:
    """Current time in East Africa Time, the zone every M-Pesa timestamp uses."""
    return datetime.now(NAIROBI)


def daraja_timestamp(moment: datetime | None = None) -> str:
    """YYYYMMDDHHmmss in EAT."""
    return (moment or now_eat()).astimezone(NAIROBI).strftime(TIMESTAMP_FORMAT)


def request_id() -> str:
    """Gateway requestId for error envelopes, e.g. '48213-93521478-1'."""
    return f"{secrets.randbelow(90000) + 10000}-{secrets.randbelow(90_000_000) + 10_000_000}-1"


def access_token() -> str:
    """Opaque 28-character alphanumeric token, the length seen in Daraja samples."""
    return "".join(secrets.choice(_ALNUM) for _ in range(28))


def merchant_request_id() -> str:
    """Opaque id in the newer 'b3f4-4853-…' style; callers check uniqueness."""
    h = secrets.token_hex(14)
    return f"{h[0:4]}-{h[4:8]}-{h[8:12]}-{h[12:28]}"


def checkout_request_id(moment: datetime, phone: str) -> str:
    """ws_CO_<ddMMyyyyHHmmss><ms:3><9 local subscriber digits>, as observed on real pushes."""
    local = moment.astimezone(NAIROBI)
    return f"ws_CO_{local.strftime('%d%m%Y%H%M%S')}{local.microsecond // 1000:03d}{phone[3:]}"


def next_millisecond(moment: datetime) -> datetime:
    """Step used to make a colliding CheckoutRequestID unique."""
    return moment + timedelta(milliseconds=1)


def receipt_number(moment: datetime) -> str:
    """10 uppercase alphanumerics: year letter (2019 = N), month letter (Jan = A), 8 random.

    Mirrors the look of real receipts such as NLJ7RT61SV; callers check uniqueness.
    """
    local = moment.astimezone(NAIROBI)
    year_letter = string.ascii_uppercase[(local.year - 2006) % 26]
    month_letter = string.ascii_uppercase[local.month - 1]
    return year_letter + month_letter + "".join(secrets.choice(_UPPER_ALNUM) for _ in range(8))
