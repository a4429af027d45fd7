"""Input rules applied before anything is sent to M-Pesa: phone, amount, reference, description."""

from __future__ import annotations

import re

from app.i18n import N_
from app.payments import prefixes

ACCEPTED_PHONE_FORMS = "07XXXXXXXX, 01XXXXXXXX, 7XXXXXXXX, 1XXXXXXXX, 2547XXXXXXXX or +2547XXXXXXXX"
_SEPARATORS = re.compile(r"[\s\-]")
# Kenyan mobile numbers are 07xx and 01xx; anything else (landlines 020, other countries)
# cannot receive an STK prompt. [0-9], never \d: \d also takes Arabic-Indic, fullwidth and
# other Unicode digits, which a cashier cannot tell apart and M-Pesa would never accept.
_LOCAL = re.compile(r"0?([17][0-9]{8})")
_INTL = re.compile(r"\+?254([17][0-9]{8})")
_AMOUNT = re.compile(r"[0-9]+")
# Commas are only read as thousands separators when they group exactly that way ("1,500",
# "1,234,567"). "150,00" or "1,5" is a decimal comma (as typed on many phones): reading it as
# 15000 or 15 would charge the wrong amount, so it is refused like "150.50".
_THOUSANDS = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+")
_DECIMAL_LIKE = re.compile(r"[0-9,.]*[0-9][0-9,.]*")
# AccountReference/TransactionDesc: special characters such as @ # & are reported to break
# the request, and the text is shown in the customer's prompt.
_SAFE_TEXT = re.compile(r"[A-Za-z0-9 .\-]*")
ACCOUNT_REFERENCE_MAX = 12
TRANSACTION_DESC_MAX = 13


class InputError(ValueError):
    """A value M-Pesa would refuse. `msgid` % `params` is the English message for the cashier;
    the UI translates `msgid` and fills in `params`; `field` names the form field at fault."""

    def __init__(self, msgid: str, *, field: str | None = None, **params: object) -> None:
        super().__init__(msgid % params if params else msgid)
        self.msgid = msgid
        self.field = field
        self.params = params


def _not_safaricom(raw: str | None) -> InputError:
    return InputError(
        N_("“%(raw)s” is not a Safaricom mobile number. Use %(forms)s."),
        field="phone",
        raw=(raw or "").strip(),
        forms=ACCEPTED_PHONE_FORMS,
    )


def normalise_phone(raw: str | None, *, allow_ported: bool = False) -> str:
    """Return the 12-digit MSISDN (2547XXXXXXXX / 2541XXXXXXXX) or raise InputError.

    By default the prefix must be one of Safaricom's own ranges: an STK prompt to an Airtel or
    Telkom line never arrives, and the cashier waits for nothing. `allow_ported` (an admin
    setting, for customers who moved their number to Safaricom) accepts any Kenyan mobile.
    """
    text = _SEPARATORS.sub("", raw or "")
    if not text:
        raise InputError(
            N_("Enter the customer's phone number (%(forms)s)."),
            field="phone",
            forms=ACCEPTED_PHONE_FORMS,
        )
    match = _INTL.fullmatch(text) or _LOCAL.fullmatch(text)
    if match is None:
        raise _not_safaricom(raw)
    msisdn = "254" + match.group(1)
    if allow_ported:
        return msisdn
    network = prefixes.network_for(msisdn)
    if network is None:
        raise _not_safaricom(raw)
    if network != prefixes.SAFARICOM:
        raise InputError(
            N_(
                "“%(raw)s” looks like a number on the %(network)s network: M-PESA prompts "
                "reach Safaricom lines only. Ask for a Safaricom number, or ask the admin to "
                "allow ported numbers."
            ),
            field="phone",
            raw=(raw or "").strip(),
            network=network,
        )
    return msisdn


def parse_amount(raw: str | int | None, maximum: int) -> int:
    """Whole shillings from 1 to `maximum`, or InputError; never rounds or truncates."""
    if isinstance(raw, bool):
        raise InputError(N_("Enter the amount in whole shillings."), field="amount")
    if isinstance(raw, int):
        text = str(raw)
    else:
        text = (raw or "").strip()
    if not text:
        raise InputError(N_("Enter the amount in whole shillings."), field="amount")
    if text.startswith("-"):
        raise InputError(N_("The amount must be at least KES 1."), field="amount")
    if _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    if not _AMOUNT.fullmatch(text):
        if _DECIMAL_LIKE.fullmatch(text):
            # ASCII digits with a decimal comma or point, or commas that do not group thousands.
            raise InputError(
                N_("Whole shillings only, no decimals: M-PESA takes no cents."), field="amount"
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
