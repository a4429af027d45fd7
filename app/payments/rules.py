"""Input rules applied before anything is sent to M-Pesa: phone, amount, reference, description."""

from __future__ import annotations

import re

ACCEPTED_PHONE_FORMS = "07XXXXXXXX, 01XXXXXXXX, 7XXXXXXXX, 1XXXXXXXX, 2547XXXXXXXX or +2547XXXXXXXX"
_SEPARATORS = re.compile(r"[\s\-]")
# Safaricom mobile ranges are 07xx and 01xx; anything else (landlines 020, other countries)
# cannot receive an STK prompt.
_LOCAL = re.compile(r"0?([17]\d{8})")
_INTL = re.compile(r"\+?254([17]\d{8})")
_AMOUNT = re.compile(r"[0-9]+")
# AccountReference/TransactionDesc: special characters such as @ # & are reported to break
# the request, and the text is shown in the customer's prompt.
_SAFE_TEXT = re.compile(r"[A-Za-z0-9 .\-]*")
ACCOUNT_REFERENCE_MAX = 12
TRANSACTION_DESC_MAX = 13


class InputError(ValueError):
    """A value M-Pesa would refuse; the message is written for the cashier."""


def normalise_phone(raw: str | None) -> str:
    """Return the 12-digit MSISDN (2547XXXXXXXX / 2541XXXXXXXX) or raise InputError."""
    text = _SEPARATORS.sub("", raw or "")
    if not text:
        raise InputError(f"Enter the customer's phone number ({ACCEPTED_PHONE_FORMS}).")
    match = _INTL.fullmatch(text) or _LOCAL.fullmatch(text)
    if match is None:
        raise InputError(
            f"“{(raw or '').strip()}” is not a Safaricom mobile number. Use {ACCEPTED_PHONE_FORMS}."
        )
    return "254" + match.group(1)


def parse_amount(raw: str | int | None, maximum: int) -> int:
    """Whole shillings from 1 to `maximum`, or InputError; never rounds or truncates."""
    if isinstance(raw, bool):
        raise InputError("Enter the amount in whole shillings.")
    if isinstance(raw, int):
        text = str(raw)
    else:
        text = (raw or "").strip().replace(",", "")
    if not text:
        raise InputError("Enter the amount in whole shillings.")
    if text.startswith("-"):
        raise InputError("The amount must be at least KES 1.")
    if not _AMOUNT.fullmatch(text):
        if re.fullmatch(r"[0-9]*\.[0-9]+", text):
            raise InputError("M-Pesa takes whole shillings only: remove the cents.")
        raise InputError("Enter the amount in whole shillings, digits only (for example 150).")
    amount = int(text)
    if amount < 1:
        raise InputError("The amount must be at least KES 1.")
    if amount > maximum:
        raise InputError(f"M-Pesa takes at most KES {maximum:,} in one payment: split the bill.")
    return amount


def _safe_text(raw: str | None, limit: int, label: str, default: str) -> str:
    text = " ".join((raw or "").split())
    if not text:
        return default
    if len(text) > limit:
        raise InputError(f"{label} can be at most {limit} characters.")
    if not _SAFE_TEXT.fullmatch(text):
        raise InputError(f"{label} may use letters, digits, spaces, dots and dashes only.")
    return text


def clean_reference(raw: str | None, default: str) -> str:
    """AccountReference: at most 12 safe characters (shown on the customer's prompt)."""
    return _safe_text(raw, ACCOUNT_REFERENCE_MAX, "Reference", default)


def clean_description(raw: str | None, default: str = "Payment") -> str:
    """TransactionDesc: at most 13 safe characters."""
    return _safe_text(raw, TRANSACTION_DESC_MAX, "Description", default)
