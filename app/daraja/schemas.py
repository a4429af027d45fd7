"""Typed values crossing the Daraja boundary, and the tolerant-but-strict STK callback parser."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from app.daraja.codes import normalize_code

TRANSACTION_TYPES = ("CustomerPayBillOnline", "CustomerBuyGoodsOnline")

_DIGITS = re.compile(r"[0-9]+")
_MSISDN = re.compile(r"254[0-9]{9}")
_PHONE = re.compile(r"[0-9]{12}")

# Widths of the columns PesaDesk keeps these values in (app/models uses these names). A
# callback whose value does not fit is refused as invalid: never truncated, never an error
# from the database after the raw body was already acknowledged.
CHECKOUT_ID_MAX = 64  # CheckoutRequestID and MerchantRequestID
RECEIPT_MAX = 20  # MpesaReceiptNumber (Safaricom's are 10 characters)
RESULT_CODE_MAX = 16  # ResultCode as text ("1032", "SFC_IC0003")
TRANSACTION_DATE_MAX = 32  # TransactionDate as sent (YYYYMMDDHHmmss, or a look-alike's shape)
#: Amounts are 32-bit integer columns; no M-Pesa payment comes near this.
AMOUNT_LIMIT = 2**31
#: The phone as sent is kept as evidence only (masked forms like "2547 ***** 126").
_PHONE_AS_SENT_MAX = 32


@dataclass(frozen=True)
class StkPushRequest:
    """One STK push, validated on construction so a bad value never reaches Safaricom."""

    business_short_code: str
    # repr=False: the passkey is a credential and must not appear in logs or tracebacks.
    passkey: str = field(repr=False)
    transaction_type: str
    amount: int
    party_a: str
    party_b: str
    phone_number: str
    callback_url: str
    account_reference: str
    transaction_desc: str

    def __post_init__(self) -> None:
        for name in (
            "business_short_code",
            "passkey",
            "transaction_type",
            "party_a",
            "party_b",
            "phone_number",
            "callback_url",
            "account_reference",
            "transaction_desc",
        ):
            # A bytes value would be formatted as "b'...'" into the Password: a classic bug.
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be str")
        # Whole shillings only: 99.99 must be refused, not silently truncated to 99.
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError("amount must be a whole number of shillings (int)")
        if self.amount < 1:
            raise ValueError("amount must be at least 1")
        if self.transaction_type not in TRANSACTION_TYPES:
            raise ValueError(f"transaction_type must be one of {', '.join(TRANSACTION_TYPES)}")
        for name in ("business_short_code", "party_b"):
            if not _DIGITS.fullmatch(getattr(self, name)):
                raise ValueError(f"{name} must be digits only")
        for name in ("party_a", "phone_number"):
            if not _MSISDN.fullmatch(getattr(self, name)):
                raise ValueError(f"{name} must be 12 digits starting with 254")
        if not self.passkey:
            raise ValueError("passkey is empty")
        url = self.callback_url
        # Stray whitespace is a documented cause of "Bad Request - Invalid CallBackURL".
        if not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
            raise ValueError("callback_url must be an http(s) URL without spaces")
        # Daraja's documented limits: AccountReference <= 12, TransactionDesc <= 13 characters.
        if not 1 <= len(self.account_reference) <= 12:
            raise ValueError("account_reference must be 1 to 12 characters")
        if len(self.transaction_desc) > 13:
            raise ValueError("transaction_desc must be at most 13 characters")


@dataclass(frozen=True)
class StkPushAccepted:
    """Daraja accepted the push (ResponseCode 0): a prompt is on its way, nothing is paid yet."""

    merchant_request_id: str
    checkout_request_id: str
    response_code: str
    response_description: str
    customer_message: str


@dataclass(frozen=True)
class StkQueryResult:
    """Outcome of an STK query: still pending, or final with a ResultCode (as text)."""

    pending: bool
    result_code: str | None
    result_desc: str | None
    merchant_request_id: str | None
    #: the CheckoutRequestID the answer names (None if it names none); for a pending answer,
    #: which names none, the one asked about
    checkout_request_id: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class StkCallback:
    """The final result M-Pesa POSTs to our CallBackURL."""

    #: None when a look-alike leaves it out: the CheckoutRequestID is what identifies a push.
    merchant_request_id: str | None
    checkout_request_id: str
    result_code: str
    result_desc: str
    amount: int | None
    receipt_number: str | None
    #: as sent, as text: YYYYMMDDHHmmss in East Africa Time from Safaricom (a number that
    #: overflows 32-bit ints), other shapes from look-alikes; None when missing.
    transaction_date: str | None
    #: 12-digit MSISDN as text, or None when absent or not 12 digits (e.g. masked).
    phone: str | None
    #: the PhoneNumber value as sent (masked, short, ...), kept as evidence; None when absent.
    phone_as_sent: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)


class CallbackParseError(ValueError):
    """The callback body is not a usable STK callback; the message says why."""


def parse_stk_callback(body: bytes | str | Mapping[str, Any]) -> StkCallback:
    """Parse ``{"Body": {"stkCallback": ...}}``; raises only CallbackParseError.

    Tolerates what real callbacks and look-alikes do: ResultCode as number or text, Amount
    as 1 / 1.0 / "1.00", metadata items in any order, Balance without Value, unknown extra
    fields, no MerchantRequestID, TransactionDate as a number or text of any shape or
    missing, PhoneNumber masked or missing. A success without CallbackMetadata parses
    (receipt None); the caller decides. Refuses what would not fit PesaDesk's columns.
    """
    try:
        return _parse(body)
    except RecursionError:
        # json.loads recurses per nesting level; "[[[[...]]]]" must be bad input, not a crash.
        raise CallbackParseError("callback JSON is nested too deeply") from None


def _parse(body: bytes | str | Mapping[str, Any]) -> StkCallback:
    doc = _load(body)
    envelope = doc.get("Body")
    if not isinstance(envelope, Mapping):
        raise CallbackParseError("missing or invalid 'Body' object")
    cb = envelope.get("stkCallback")
    if not isinstance(cb, Mapping):
        raise CallbackParseError("missing or invalid 'Body.stkCallback' object")

    merchant_request_id = _optional_text(cb.get("MerchantRequestID"), "MerchantRequestID")
    checkout_request_id = _required_text(cb, "CheckoutRequestID")
    if len(checkout_request_id) > CHECKOUT_ID_MAX:
        raise CallbackParseError(f"'CheckoutRequestID' is longer than {CHECKOUT_ID_MAX} characters")
    if merchant_request_id is not None and len(merchant_request_id) > CHECKOUT_ID_MAX:
        raise CallbackParseError(f"'MerchantRequestID' is longer than {CHECKOUT_ID_MAX} characters")
    result_code = _result_code(cb.get("ResultCode"))
    result_desc = cb.get("ResultDesc", "")
    if result_desc is None:
        result_desc = ""
    if not isinstance(result_desc, str):
        raise CallbackParseError("'ResultDesc' must be text")

    items = _metadata_items(cb)
    return StkCallback(
        merchant_request_id=merchant_request_id,
        checkout_request_id=checkout_request_id,
        result_code=result_code,
        result_desc=result_desc,
        amount=_amount(items.get("Amount")),
        receipt_number=_receipt(items.get("MpesaReceiptNumber")),
        transaction_date=_transaction_date(items.get("TransactionDate")),
        phone=_phone(items.get("PhoneNumber")),
        phone_as_sent=_as_sent(items.get("PhoneNumber")),
        raw=doc,
    )


def _load(body: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            text = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CallbackParseError("callback body is not UTF-8") from None
    elif isinstance(body, str):
        text = body
    else:
        raise CallbackParseError(f"callback body must be bytes, str or a mapping, not {body!r:.40}")
    try:
        doc = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, and over-long integer literals
        raise CallbackParseError(f"callback body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CallbackParseError("callback JSON must be an object")
    return doc


def _required_text(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value.strip():
        raise CallbackParseError(f"'{name}' must be non-empty text")
    return value.strip()


def _optional_text(value: Any, name: str) -> str | None:
    """Text, or a number written as text; None when missing, empty or of another type (the
    raw body keeps whatever was sent)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if value.bit_length() > 64:
            raise CallbackParseError(f"'{name}' is implausibly large")
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def _as_sent(value: Any) -> str | None:
    """A metadata value as text for the record, whatever its type; None when absent."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:_PHONE_AS_SENT_MAX]


def _result_code(value: Any) -> str:
    # Number in callbacks, text in queries, sometimes non-numeric ("SFC_IC0003").
    if isinstance(value, bool) or value is None:
        raise CallbackParseError("'ResultCode' is missing or not a number/text")
    if isinstance(value, float):
        if not value.is_integer():
            raise CallbackParseError("'ResultCode' is not a whole number")
        value = int(value)
    if isinstance(value, int) and value.bit_length() > 64:
        raise CallbackParseError("'ResultCode' is implausibly large")
    if isinstance(value, int | str):
        code = normalize_code(value)
        if len(code) > RESULT_CODE_MAX:
            raise CallbackParseError(f"'ResultCode' is longer than {RESULT_CODE_MAX} characters")
        if code:
            return code
    raise CallbackParseError("'ResultCode' is missing or not a number/text")


def _metadata_items(cb: Mapping[str, Any]) -> dict[str, Any]:
    """Map item Name → Value (items without Value map to None); lookup by Name, never index."""
    meta = cb.get("CallbackMetadata")
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise CallbackParseError("'CallbackMetadata' must be an object")
    raw_items = meta.get("Item", [])
    if raw_items is None:
        return {}
    if not isinstance(raw_items, list):
        raise CallbackParseError("'CallbackMetadata.Item' must be a list")
    items: dict[str, Any] = {}
    for item in raw_items:
        if not isinstance(item, Mapping) or not isinstance(item.get("Name"), str):
            raise CallbackParseError("each CallbackMetadata item needs a text 'Name'")
        name = item["Name"]
        # Two different Amounts (or receipts) would make the callback ambiguous.
        if name in items and items[name] != item.get("Value"):
            raise CallbackParseError(f"metadata item '{name}' appears twice with different values")
        items[name] = item.get("Value")
    return items


def _amount(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise CallbackParseError("'Amount' must be a number")
    if isinstance(value, int):
        amount = value
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise CallbackParseError("'Amount' must be a whole number of shillings")
        if abs(value) >= AMOUNT_LIMIT:
            raise CallbackParseError(f"'Amount' must be below {AMOUNT_LIMIT}")
        amount = int(value)
    elif isinstance(value, str):
        try:
            dec = Decimal(value.strip())
        except InvalidOperation:
            raise CallbackParseError("'Amount' is not a number") from None
        if not dec.is_finite():
            raise CallbackParseError("'Amount' is not a number")
        # adjusted() is the decimal exponent; unlike abs() it cannot overflow the context.
        if dec.adjusted() > 12:
            raise CallbackParseError(f"'Amount' must be below {AMOUNT_LIMIT}")
        if dec != dec.to_integral_value():
            raise CallbackParseError("'Amount' must be a whole number of shillings")
        amount = int(dec)
    else:
        raise CallbackParseError("'Amount' must be a number")
    if amount <= 0:
        raise CallbackParseError("'Amount' must be positive")
    if amount >= AMOUNT_LIMIT:
        raise CallbackParseError(f"'Amount' must be below {AMOUNT_LIMIT}")
    return amount


def _receipt(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CallbackParseError("'MpesaReceiptNumber' must be text")
    receipt = value.strip()
    if len(receipt) > RECEIPT_MAX:
        raise CallbackParseError(f"'MpesaReceiptNumber' is longer than {RECEIPT_MAX} characters")
    return receipt or None


def _digits_text(value: Any, name: str) -> str | None:
    """Numbers and digit strings → their digits as text (big numbers exceed 32-bit ints)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise CallbackParseError(f"'{name}' must be a number or text")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise CallbackParseError(f"'{name}' must be a whole number")
        value = int(value)
    if isinstance(value, int):
        # 14-digit dates and 12-digit phones fit easily; huge ints would be slow to format.
        if value.bit_length() > 64:
            raise CallbackParseError(f"'{name}' is implausibly large")
        return str(value)
    if isinstance(value, str):
        return value.strip()
    raise CallbackParseError(f"'{name}' must be a number or text")


def _transaction_date(value: Any) -> str | None:
    """As sent, as text. Safaricom sends a YYYYMMDDHHmmss number; look-alikes send text such
    as "2023-04-26 12:30:00". Neither identifies the payment, so an odd shape is kept, not
    refused (app.filters.paid_at reads the shapes it knows)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None  # missing, or of no usable type: the raw body keeps it
    try:
        text = _digits_text(value, "TransactionDate")
    except CallbackParseError:
        text = str(value)  # 1.5, 1e300: odd, but not ours to refuse
    if not text:
        return None
    if len(text) > TRANSACTION_DATE_MAX:
        raise CallbackParseError(
            f"'TransactionDate' is longer than {TRANSACTION_DATE_MAX} characters"
        )
    return text


def _phone(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        text = _digits_text(value, "PhoneNumber")
    except CallbackParseError:
        return None  # 2547e11, 1.5...: not a phone we can use; phone_as_sent keeps it
    # Not an error: Safaricom masks MSISDNs elsewhere (C2B) and may start doing so here.
    # Refusing the whole callback over the phone would lose a payment; raw keeps the value.
    if text is None or not _PHONE.fullmatch(text):
        return None
    return text
