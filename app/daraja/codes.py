"""STK ResultCode catalogue (callback and query): meaning, cashier wording and resend advice."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMERIC = re.compile(r"-?[0-9]+")


# The gettext-style name is deliberate: Babel's extractor is told to look for N_ calls.
def N_(s: str) -> str:
    """Mark a string for translation without translating it here (the UI translates later)."""
    return s


@dataclass(frozen=True)
class ResultCodeInfo:
    """What one ResultCode means and what the counter should do about it."""

    code: str
    meaning: str
    #: Safe to show a cashier; marked with N_ so it can be translated at display time.
    cashier_message: str
    #: Whether a *new* STK push for the same sale makes sense.
    can_resend: bool
    #: Minimum wait before that new push, in seconds (M-Pesa's own duplicate/lock guards).
    resend_after_s: int
    #: True when the fix is in our configuration (till vs paybill, names), not with the customer.
    config_error: bool


_CONFIG_MESSAGE = N_("Payment setup error. Contact support.")
_SEND_FAILED_MESSAGE = N_("Couldn't reach the customer's phone. Resend.")
_GENERIC_MESSAGE = N_("Payment failed. Resend or use another method.")


def _info(
    code: str,
    meaning: str,
    cashier_message: str,
    *,
    can_resend: bool,
    resend_after_s: int = 0,
    config_error: bool = False,
) -> ResultCodeInfo:
    return ResultCodeInfo(code, meaning, cashier_message, can_resend, resend_after_s, config_error)


# Source: daraja.md §7. Every non-zero code means no money moved for that checkout.
RESULT_CODES: dict[str, ResultCodeInfo] = {
    info.code: info
    for info in (
        # The receipt is shown next to this message by the caller; no placeholder here.
        _info("0", "Paid", N_("Payment received."), can_resend=False),
        _info(
            "1",
            "Insufficient balance",
            N_("Customer's M-PESA balance is too low. Ask them to top up, then resend."),
            can_resend=True,
        ),
        _info(
            "2",
            "Amount below the M-PESA minimum",
            N_("Amount is below the M-PESA minimum."),
            can_resend=False,
        ),
        _info(
            "3",
            "Amount above the per-transaction maximum",
            N_("Amount is above the M-PESA limit per payment. Split the bill."),
            can_resend=False,
        ),
        _info(
            "4",
            "Customer's daily transfer limit reached",
            N_("Customer has reached their daily M-PESA limit. Use another method."),
            can_resend=False,
        ),
        _info(
            "8",
            "Receiving account would exceed its maximum balance",
            N_("Our M-PESA account can't accept more right now. Call the supervisor."),
            can_resend=False,
        ),
        # Sources disagree on 17; the portal's "same amount, same customer within 2 min" is
        # the reading that matters at a counter, so advise the 2-minute wait.
        _info(
            "17",
            "Rule limited (same amount to the same customer within 2 minutes)",
            N_("Duplicate payment blocked. Wait 2 minutes before retrying."),
            can_resend=True,
            resend_after_s=120,
        ),
        _info(
            "26",
            "M-PESA system busy (traffic blocking)",
            N_("M-PESA is busy. Try again in a minute."),
            can_resend=True,
            resend_after_s=30,
        ),
        _info(
            "1001",
            "Customer has another M-PESA session open",
            N_("Customer has another M-PESA request open. Ask them to close it, then resend."),
            can_resend=True,
            resend_after_s=60,
        ),
        _info(
            "1019",
            "Transaction expired before the customer completed it",
            N_("Request expired. Resend and ask the customer to enter PIN promptly."),
            can_resend=True,
        ),
        _info(
            "1025",
            "Error sending the push request (e.g. prompt longer than 182 characters)",
            _SEND_FAILED_MESSAGE,
            can_resend=True,
        ),
        _info("9999", "Error sending the push request", _SEND_FAILED_MESSAGE, can_resend=True),
        _info(
            "1032",
            "Cancelled by the customer",
            N_("Customer cancelled on their phone."),
            can_resend=True,
        ),
        _info(
            "1037",
            "Customer's phone could not be reached",
            N_(
                "Customer's phone not reachable. "
                "Ask them to check signal/unlock phone, then resend."
            ),
            can_resend=True,
        ),
        _info(
            "2001",
            "Wrong M-PESA PIN entered",
            N_("Wrong PIN entered. Resend and ask customer to retry carefully."),
            can_resend=True,
        ),
        _info(
            "2028",
            "Not permitted by product assignment (TransactionType/PartyB mismatch)",
            _CONFIG_MESSAGE,
            can_resend=False,
            config_error=True,
        ),
        _info(
            "8006",
            "Customer's M-PESA PIN is locked",
            N_("Customer's M-PESA is locked. They must call Safaricom (100/200)."),
            can_resend=False,
        ),
        _info(
            "SFC_IC0003",
            "Operator does not exist (TransactionType/PartyB mismatch)",
            _CONFIG_MESSAGE,
            can_resend=False,
            config_error=True,
        ),
        _info(
            "1101",
            "Prompt message prefix too long (business/account name)",
            _CONFIG_MESSAGE,
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
        cashier_message=_GENERIC_MESSAGE,
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
