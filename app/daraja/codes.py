"""STK ResultCode catalogue (callback and query): meaning and resend advice.

What a cashier is told for each code is PesaDesk's wording, not Daraja's, so it lives with
the other screen messages in app.payments.messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMERIC = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class ResultCodeInfo:
    """What one ResultCode means and what the counter should do about it."""

    code: str
    meaning: str
    #: Whether a *new* STK push for the same sale makes sense.
    can_resend: bool
    #: Minimum wait before that new push, in seconds (M-Pesa's own duplicate/lock guards).
    resend_after_s: int
    #: True when the fix is in our configuration (till vs paybill, names), not with the customer.
    config_error: bool


def _info(
    code: str,
    meaning: str,
    *,
    can_resend: bool,
    resend_after_s: int = 0,
    config_error: bool = False,
) -> ResultCodeInfo:
    return ResultCodeInfo(code, meaning, can_resend, resend_after_s, config_error)


# Source: docs/daraja.md §7. Every non-zero code means no money moved for that checkout.
RESULT_CODES: dict[str, ResultCodeInfo] = {
    info.code: info
    for info in (
        # The receipt is shown next to this message by the caller; no placeholder here.
        _info("0", "Paid", can_resend=False),
        _info(
            "1",
            "Insufficient balance",
            can_resend=True,
        ),
        _info(
            "2",
            "Amount below the M-PESA minimum",
            can_resend=False,
        ),
        _info(
            "3",
            "Amount above the per-transaction maximum",
            can_resend=False,
        ),
        _info(
            "4",
            "Customer's daily transfer limit reached",
            can_resend=False,
        ),
        _info(
            "8",
            "Receiving account would exceed its maximum balance",
            can_resend=False,
        ),
        # Sources disagree on 17; the portal's "same amount, same customer within 2 min" is
        # the reading that matters at a counter, so advise the 2-minute wait.
        _info(
            "17",
            "Rule limited (same amount to the same customer within 2 minutes)",
            can_resend=True,
            resend_after_s=120,
        ),
        _info(
            "26",
            "M-PESA system busy (traffic blocking)",
            can_resend=True,
            resend_after_s=30,
        ),
        _info(
            "1001",
            "Customer has another M-PESA session open",
            can_resend=True,
            resend_after_s=60,
        ),
        _info(
            "1019",
            "Transaction expired before the customer completed it",
            can_resend=True,
        ),
        _info(
            "1025",
            "Error sending the push request (e.g. prompt longer than 182 characters)",
            can_resend=True,
        ),
        _info("9999", "Error sending the push request", can_resend=True),
        _info(
            "1032",
            "Cancelled by the customer",
            can_resend=True,
        ),
        _info(
            "1037",
            "Customer's phone could not be reached",
            can_resend=True,
        ),
        _info(
            "2001",
            "Wrong M-PESA PIN entered",
            can_resend=True,
        ),
        _info(
            "2028",
            "Not permitted by product assignment (TransactionType/PartyB mismatch)",
            can_resend=False,
            config_error=True,
        ),
        _info(
            "8006",
            "Customer's M-PESA PIN is locked",
            can_resend=False,
        ),
        _info(
            "SFC_IC0003",
            "Operator does not exist (TransactionType/PartyB mismatch)",
            can_resend=False,
            config_error=True,
        ),
        _info(
            "1101",
            "Prompt message prefix too long (business/account name)",
            can_resend=False,
            config_error=True,
        ),
    )
}


def normalize_code(code: str | int) -> str:
    """Canonical text form: 1032, "1032" and " 1032 " are all "1032"; "SFC_IC0003" is kept."""
    # bool is an int subclass; True must not quietly become code "1" (insufficient funds).
    if isinstance(code, bool) or not isinstance(code, str | int):
        raise TypeError(f"result code must be str or int, not {type(code).__name__}")
    if isinstance(code, int):
        return str(code)
    text = code.strip()
    # Length cap: int() of a huge digit string is slow (and refused past 4300 digits).
    if len(text) <= 20 and _NUMERIC.fullmatch(text):
        return str(int(text))
    return text


def describe(code: str | int) -> ResultCodeInfo:
    """Look up a ResultCode; unknown codes get a generic, resendable failure."""
    key = normalize_code(code)
    known = RESULT_CODES.get(key)
    if known is not None:
        return known
    # Unknown codes: failed (never paid), show the raw ResultDesc to supervisors only.
    return ResultCodeInfo(
        code=key,
        meaning="Unknown result code",
        can_resend=True,
        resend_after_s=0,
        config_error=False,
    )


def is_success(code: str | int | None) -> bool:
    """True only for ResultCode 0 (as number or text); None and anything else is not paid."""
    if code is None or isinstance(code, bool):
        return False
    try:
        return normalize_code(code) == "0"
    except TypeError:
        return False
