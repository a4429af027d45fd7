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


def N_(msgid: str) -> str:
    """Mark a message for translation; the UI translates it (app.payments.messages)."""
    return msgid


class InputError(ValueError):
    """A value M-Pesa would refuse. `msgid` % `params` is the English message for the cashier;
    the UI translates `msgid` and fills in `params`; `field` names the form field at fault."""

    def __init__(self, msgid: str, *, field: str | None = None, **params: object) -> None:
        super().__init__(msgid % params if params else msgid)
        self.msgid = msgid
        self.field = field
        self.params = params


def normalise_phone(raw: str | None) -> str:
    """Return the 12-digit MSISDN (2547XXXXXXXX / 2541XXXXXXXX) or raise InputError."""
    text = _SEPARATORS.sub("", raw or "")
    if not text:
        raise InputError(
            N_("Enter the customer's phone number (%(forms)s)."),
            field="phone",
            forms=ACCEPTED_PHONE_FORMS,
        )
    match = _INTL.fullmatch(text) or _LOCAL.fullmatch(text)
    if match is None:
        raise InputError(
            N_("“%(raw)s” is not a Safaricom mobile number. Use %(forms)s."),
            field="phone",
            raw=(raw or "").strip(),
            forms=ACCEPTED_PHONE_FORMS,
        )
    return "254" + match.group(1)


def parse_amount(raw: str | int | None, maximum: int) -> int:
    """Whole shillings from 1 to `maximum`, or InputError; never rounds or truncates."""
    if isinstance(raw, bool):
        raise InputError(N_("Enter the amount in whole shillings."), field="amount")
    if isinstance(raw, int):
        text = str(raw)
    else:
        text = (raw or "").strip().replace(",", "")
    if not text:
        raise InputError(N_("Enter the amount in whole shillings."), field="amount")
    if text.startswith("-"):
        raise InputError(N_("The amount must be at least KES 1."), field="amount")
    if not _AMOUNT.fullmatch(text):
        if re.fullmatch(r"[0-9]*\.[0-9]+", text):
            raise InputError(
                N_("M-Pesa takes whole shillings only: remove the cents."), field="amount"
            )
        raise InputError(
            N_("Enter the amount in whole shillings, digits only (for example 150)."),
            field="amount",
        )
    amount = int(text)
    if amount < 1:
        raise InputError(N_("The amount must be at least KES 1."), field="amount")
    if amount > maximum:
        raise InputError(
            N_("M-Pesa takes at most KES %(max)s in one payment: split the bill."),
            field="amount",
            max=f"{maximum:,}",
        )
    return amount


# The two texts we send besides phone and amount, with their messages (one msgid per field,
# so translators see whole sentences).
_TOO_LONG = {
    "reference": N_("Reference can be at most %(limit)s characters."),
    "description": N_("Description can be at most %(limit)s characters."),
}
_UNSAFE = {
    "reference": N_("Reference may use letters, digits, spaces, dots and dashes only."),
    "description": N_("Description may use letters, digits, spaces, dots and dashes only."),
}


def _safe_text(raw: str | None, limit: int, field: str, default: str) -> str:
    text = " ".join((raw or "").split())
    if not text:
        return default
    if len(text) > limit:
        raise InputError(_TOO_LONG[field], field=field, limit=limit)
    if not _SAFE_TEXT.fullmatch(text):
        raise InputError(_UNSAFE[field], field=field)
    return text


def clean_reference(raw: str | None, default: str) -> str:
    """AccountReference: at most 12 safe characters (shown on the customer's prompt)."""
    return _safe_text(raw, ACCOUNT_REFERENCE_MAX, "reference", default)


def clean_description(raw: str | None, default: str = "Payment") -> str:
    """TransactionDesc: at most 13 safe characters."""
    return _safe_text(raw, TRANSACTION_DESC_MAX, "description", default)
