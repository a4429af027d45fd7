"""Daraja-style request validation for STK push and query bodies, raising error envelopes."""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from app.simulator.ids import NAIROBI, TIMESTAMP_FORMAT, now_eat

PAYBILL = "CustomerPayBillOnline"
BUY_GOODS = "CustomerBuyGoodsOnline"
TRANSACTION_TYPES = (PAYBILL, BUY_GOODS)

PUSH_FIELDS = (
    "BusinessShortCode",
    "Password",
    "Timestamp",
    "TransactionType",
    "Amount",
    "PartyA",
    "PartyB",
    "PhoneNumber",
    "CallBackURL",
    "AccountReference",
    "TransactionDesc",
)
QUERY_FIELDS = ("BusinessShortCode", "Password", "Timestamp", "CheckoutRequestID")

# [0-9], never \d: \d also takes Arabic-Indic and fullwidth digits ("١٧٤٣٧٩"), which int()
# reads as numbers, so a shortcode, phone or amount in them would pass as valid.
# Docs disagree on shortcode length (5-6, 5-7, 6-9; docs/daraja.md §3.1): accept the widest range.
_SHORTCODE_RE = re.compile(r"[0-9]{5,9}")
# 2547XXXXXXXX (documented) and 2541XXXXXXXX (Safaricom's 01xx ranges, seen working in 2025).
_MSISDN_RE = re.compile(r"254[17][0-9]{8}")
_DIGITS_RE = re.compile(r"[0-9]+")
_TIMESTAMP_RE = re.compile(r"[0-9]{14}")

MAX_ACCOUNT_REFERENCE = 12
MAX_TRANSACTION_DESC = 13


class ApiError(Exception):
    """A Daraja gateway error: HTTP status plus the {requestId, errorCode, errorMessage} body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message


def invalid(field: str) -> ApiError:
    """The 400.002.02 'Bad Request - Invalid <Field>' envelope Daraja uses for bad input."""
    return ApiError(400, "400.002.02", f"Bad Request - Invalid {field}")


def merchant_error(message: str) -> ApiError:
    """The overloaded 500.001.1001 envelope; callers must branch on the message."""
    return ApiError(500, "500.001.1001", message)


MERCHANT_MISSING = "Merchant does not exist"
WRONG_CREDENTIALS = "[MerchantValidate] - Wrong credentials"
SUBSCRIBER_LOCKED = (
    "Unable to lock subscriber, a transaction is already in process for the current subscriber"
)
BEING_PROCESSED = "The transaction is being processed"


@dataclass(frozen=True)
class PushRequest:
    """A syntactically valid STK push body, normalised to strings/ints."""

    short_code: str
    password: str
    timestamp: str
    transaction_type: str
    amount: int
    party_a: str
    party_b: str
    phone: str
    callback_url: str
    account_reference: str
    transaction_desc: str


@dataclass(frozen=True)
class QueryRequest:
    """A syntactically valid STK query body."""

    short_code: str
    password: str
    timestamp: str
    checkout_request_id: str


def _digits(value: Any) -> str | None:
    """Digits of a JSON number or digit string (Daraja accepts both); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return str(value)
    if isinstance(value, str) and _DIGITS_RE.fullmatch(value):
        return value
    return None


def normalise_msisdn(text: str) -> str | None:
    """2547XXXXXXXX from what a person types (07…, +254 7…, 254…), or None (virtual phone)."""
    digits = re.sub(r"[\s\-()]", "", text).removeprefix("+")
    if digits.startswith("0"):
        digits = "254" + digits[1:]
    elif len(digits) == 9:
        digits = "254" + digits
    return digits if _MSISDN_RE.fullmatch(digits) else None


def _short_code(value: Any, field: str) -> str:
    digits = _digits(value)
    if digits is None or not _SHORTCODE_RE.fullmatch(digits):
        raise invalid(field)
    return digits


def _msisdn(value: Any, field: str) -> str:
    digits = _digits(value)
    if digits is None or not _MSISDN_RE.fullmatch(digits):
        raise invalid(field)
    return digits


def _amount(value: Any, max_amount: int) -> int:
    if isinstance(value, bool):
        raise invalid("Amount")
    if isinstance(value, float) and value.is_integer():
        # 10.0 is a whole number on the wire in JSON; 1.5 is not and is rejected below.
        value = int(value)
    if isinstance(value, str) and _DIGITS_RE.fullmatch(value):
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= max_amount:
        raise invalid("Amount")
    return value


def _timestamp(value: Any, skew_s: float) -> str:
    if not isinstance(value, str) or not _TIMESTAMP_RE.fullmatch(value):
        raise invalid("Timestamp")
    try:
        moment = datetime.strptime(value, TIMESTAMP_FORMAT).replace(tzinfo=NAIROBI)
    except ValueError:
        raise invalid("Timestamp") from None
    # A negative skew disables the window check (Daraja's real tolerance is unknown,
    # docs/daraja.md §3.2).
    if skew_s >= 0 and abs((now_eat() - moment).total_seconds()) > skew_s:
        raise invalid("Timestamp")
    return value


def _password(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise invalid("Password")
    return value


def _callback_url(value: Any) -> str:
    if not isinstance(value, str) or not value or any(ch.isspace() for ch in value):
        # Stray spaces: the classic real-world cause of "Invalid CallBackURL" (docs/daraja.md §3.1).
        raise invalid("CallBackURL")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise invalid("CallBackURL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid("CallBackURL")
    return value


def _text(value: Any, field: str, max_len: int, *, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or len(value) > max_len:
        raise invalid(field)
    if required and not value.strip():
        raise invalid(field)
    return value


def parse_push(
    body: dict[str, Any],
    *,
    max_amount: int,
    skew_s: float,
    strict: bool,
    require_https: bool = False,
) -> PushRequest:
    """Check every field in Daraja's order; first problem wins, as on the real gateway."""
    if strict:
        # Undocumented extra keys (e.g. Remarks) reportedly break real pushes (docs/daraja.md §3.1).
        for key in body:
            if key not in PUSH_FIELDS:
                raise invalid(key)
    for field in PUSH_FIELDS[:-1]:  # every field but TransactionDesc is mandatory
        if body.get(field) in (None, ""):
            raise invalid(field)
    short_code = _short_code(body["BusinessShortCode"], "BusinessShortCode")
    password = _password(body["Password"])
    timestamp = _timestamp(body["Timestamp"], skew_s)
    transaction_type = body["TransactionType"]
    if transaction_type not in TRANSACTION_TYPES:
        raise invalid("TransactionType")
    amount = _amount(body["Amount"], max_amount)
    party_a = _msisdn(body["PartyA"], "PartyA")
    party_b = _short_code(body["PartyB"], "PartyB")
    phone = _msisdn(body["PhoneNumber"], "PhoneNumber")
    callback_url = _callback_url(body["CallBackURL"])
    # Sandbox takes plain HTTP callback URLs; production demands HTTPS (docs/daraja.md §8).
    if require_https and not callback_url.startswith("https://"):
        raise invalid("CallBackURL")
    account_reference = _text(
        body["AccountReference"], "AccountReference", MAX_ACCOUNT_REFERENCE, required=True
    )
    transaction_desc = _text(
        body.get("TransactionDesc"), "TransactionDesc", MAX_TRANSACTION_DESC, required=False
    )
    return PushRequest(
        short_code,
        password,
        timestamp,
        transaction_type,
        amount,
        party_a,
        party_b,
        phone,
        callback_url,
        account_reference,
        transaction_desc,
    )


def parse_query(body: dict[str, Any], *, skew_s: float) -> QueryRequest:
    """Validate an STK query body (fresh Timestamp allowed, docs/daraja.md §5)."""
    for field in QUERY_FIELDS:
        if body.get(field) in (None, ""):
            raise invalid(field)
    short_code = _short_code(body["BusinessShortCode"], "BusinessShortCode")
    password = _password(body["Password"])
    timestamp = _timestamp(body["Timestamp"], skew_s)
    checkout = body["CheckoutRequestID"]
    if not isinstance(checkout, str):
        raise invalid("CheckoutRequestID")
    return QueryRequest(short_code, password, timestamp, checkout)


def expected_password(short_code: str, passkey: str, timestamp: str) -> str:
    """base64(BusinessShortCode + Passkey + Timestamp), joined as text (docs/daraja.md §3.1)."""
    return base64.b64encode(f"{short_code}{passkey}{timestamp}".encode()).decode("ascii")


def check_merchant(
    short_code: str, password: str, timestamp: str, passkeys: dict[str, str]
) -> None:
    """Raise the 500.001.1001 variants for an unknown shortcode or a wrong Password."""
    passkey = passkeys.get(short_code)
    if passkey is None:
        raise merchant_error(MERCHANT_MISSING)
    expected = expected_password(short_code, passkey, timestamp)
    if not hmac.compare_digest(password.encode(), expected.encode()):
        raise merchant_error(WRONG_CREDENTIALS)
