"""What the cashier is told for each status, result code and refusal: short and actionable.

Every sentence here is an English msgid, marked with N_ for Babel and translated at display
time (the catalogue is translations/sw). The rules, guards and result-code modules raise or
hold English text; `explain_input_error` turns their messages back into translatable ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask_babel import gettext
from markupsafe import Markup, escape

from app.daraja.codes import N_, describe
from app.models import Payment
from app.payments import guards
from app.payments.states import Status

LABELS = {
    Status.INITIATING: N_("Sending"),
    Status.PENDING: N_("Waiting for PIN"),
    Status.PAID: N_("Paid"),
    Status.FAILED: N_("Failed"),
    Status.REJECTED: N_("Not sent"),
    Status.UNKNOWN: N_("Unknown"),
    Status.UNCONFIRMED: N_("Unconfirmed"),
}

# Daraja's push refusals, by what the cashier can do about them.
_PUSH_ERRORS = {
    "DarajaSubscriberLocked": N_(
        "This customer already has an M-PESA prompt open. Wait about a minute, then send again."
    ),
    "DarajaThrottled": N_(
        "M-PESA is limiting requests right now. Wait a few seconds and send again."
    ),
    "DarajaSystemBusy": N_("M-PESA is busy. Try again in a minute."),
    "DarajaTimeout": N_("M-PESA could not be reached. Nothing was sent; try again."),
    "DarajaConnectionError": N_("M-PESA could not be reached. Nothing was sent; try again."),
    "DarajaWrongCredentials": N_("The till's passkey or shortcode is wrong. Call the admin."),
    "DarajaMerchantNotFound": N_("The till's shortcode is not known to M-PESA. Call the admin."),
    "DarajaAuthError": N_("The till's consumer key or secret is wrong. Call the admin."),
    "DarajaInvalidToken": N_("M-PESA refused the till's access. Call the admin."),
    "credentials": N_("The till's credentials cannot be read. Call the admin."),
    "settings": N_("The till's settings are not valid for M-PESA. Call the admin."),
}

SENDING = N_("Sending the prompt to the customer's phone…")
ENTER_PIN = N_("Prompt sent. Ask the customer to enter their M-PESA PIN.")
STILL_WAITING = N_("Still waiting for M-PESA…")
UNCONFIRMED = N_("Unconfirmed — money may have moved; checking automatically.")
UNKNOWN = N_(
    "No answer from M-PESA: the prompt may have reached the phone. Ask the customer "
    "before sending again — do not send twice if they were charged."
)
CANCELLED_HERE = N_(
    "Cancelled here. M-PESA cannot withdraw the prompt: if the customer still pays, "
    "this row will say so."
)


def status_label(status: str) -> str:
    """The short status word (translated) for a payment status."""
    try:
        return gettext(LABELS[Status(status)])
    except (KeyError, ValueError):
        return status


def cashier_message(p: Payment) -> str:
    """What to tell or ask the customer now, from the payment's status and result."""
    status = Status(p.status)
    if status is Status.INITIATING:
        return gettext(SENDING)
    if status is Status.PENDING:
        return gettext(ENTER_PIN)
    if status is Status.PAID:
        if p.receipt_number:
            return gettext(describe("0").cashier_message)
        return gettext("Payment received (confirmed by M-PESA; receipt number to follow).")
    if status is Status.FAILED:
        return gettext(describe(p.result_code or "").cashier_message)
    if status is Status.REJECTED:
        message = _PUSH_ERRORS.get(p.push_error_code or "")
        if message:
            return gettext(message)
        invalid = re.search(r"Invalid (\w+)", p.push_error_message or "")
        if p.push_error_code == "DarajaBadRequest" and invalid:
            return gettext(
                "M-PESA refused the request (%(field)s is invalid). Nothing was sent.",
                field=invalid.group(1),
            )
        return gettext("M-PESA refused the request. Nothing was sent; try again or call the admin.")
    if status is Status.UNKNOWN:
        return gettext(UNKNOWN)
    return gettext(UNCONFIRMED)


# --- Refusals raised by app.payments.rules / guards / service, made translatable -------------
#
# Those modules raise InputError with English text (they know nothing of the UI language).
# Each pattern below recognises one of their messages; tests/i18n checks that every message
# they can raise is recognised, so a changed wording fails a test instead of going untranslated.


@dataclass(frozen=True)
class Explained:
    """A refusal ready to show: HTML-safe text, and the form field it is about (if any)."""

    text: Markup
    field: str | None = None
    seconds: int | None = None


def countdown(seconds: int) -> Markup:
    """A number of seconds that static/counter.js counts down to 0."""
    return Markup('<b class="countdown" data-seconds="{0}">{0}</b>').format(int(seconds))


_PHONE_FORMS = r"(?P<forms>.+)"
_INPUT_PATTERNS: list[tuple[re.Pattern[str], str, str | None]] = [
    (
        re.compile(r"Enter the customer's phone number \(" + _PHONE_FORMS + r"\)\."),
        N_("Enter the customer's phone number (%(forms)s)."),
        "phone",
    ),
    (
        re.compile(r"“(?P<raw>.*)” is not a Safaricom mobile number\. Use " + _PHONE_FORMS + r"\."),
        N_("“%(raw)s” is not a Safaricom mobile number. Use %(forms)s."),
        "phone",
    ),
    (
        re.compile(r"Enter the amount in whole shillings\."),
        N_("Enter the amount in whole shillings."),
        "amount",
    ),
    (
        re.compile(r"The amount must be at least KES 1\."),
        N_("The amount must be at least KES 1."),
        "amount",
    ),
    (
        re.compile(r"M-Pesa takes whole shillings only: remove the cents\."),
        N_("M-Pesa takes whole shillings only: remove the cents."),
        "amount",
    ),
    (
        re.compile(r"Enter the amount in whole shillings, digits only \(for example 150\)\."),
        N_("Enter the amount in whole shillings, digits only (for example 150)."),
        "amount",
    ),
    (
        re.compile(r"M-Pesa takes at most KES (?P<max>[\d,]+) in one payment: split the bill\."),
        N_("M-Pesa takes at most KES %(max)s in one payment: split the bill."),
        "amount",
    ),
    (
        re.compile(r"Reference can be at most (?P<limit>\d+) characters\."),
        N_("Reference can be at most %(limit)s characters."),
        "reference",
    ),
    (
        re.compile(r"Reference may use letters, digits, spaces, dots and dashes only\."),
        N_("Reference may use letters, digits, spaces, dots and dashes only."),
        "reference",
    ),
    # app.payments.service.CannotResend
    (
        re.compile(r"Only a failed or refused payment can be sent again\."),
        N_("Only a failed or refused payment can be sent again."),
        None,
    ),
    (re.compile(r"This sale is already paid\."), N_("This sale is already paid."), None),
    (
        re.compile(r"Another attempt for this sale is still open; wait for its result\."),
        N_("Another attempt for this sale is still open; wait for its result."),
        None,
    ),
]

# app.payments.guards.MESSAGES, by reason; {s} is the number of seconds to wait.
TRY_LATER = {
    "live_prompt": N_("This customer already has an M-PESA prompt open. Try again in %(s)s s."),
    "same_amount": N_(
        "M-PESA refuses the same amount to the same phone within 2 minutes. Try again in %(s)s s."
    ),
    "prompt_limit": N_("Too many prompts to this phone in the last minute. Try again in %(s)s s."),
}
_TRY_LATER_PATTERNS = [
    (re.compile(re.escape(english).replace(re.escape("{s}"), r"(?P<s>\d+)")), reason)
    for reason, english in guards.MESSAGES.items()
]


def _format(msgid: str, **params: object) -> Markup:
    """Translate `msgid`, escape it, and fill %(name)s placeholders (Markup values kept)."""
    return escape(gettext(msgid)) % params


def explain_input_error(exc: Exception) -> Explained:
    """The translated, HTML-safe message for an InputError from the payment modules."""
    message = str(exc)
    seconds = getattr(exc, "seconds", None)
    for pattern, reason in _TRY_LATER_PATTERNS:
        match = pattern.fullmatch(message)
        if match:
            s = int(match["s"])
            return Explained(wait_message(s, reason), None, s)
    for pattern, msgid, field in _INPUT_PATTERNS:
        match = pattern.fullmatch(message)
        if match:
            params = match.groupdict()
            if "forms" in params:
                # "07XXXXXXXX, …, 2547XXXXXXXX or +2547XXXXXXXX": only the "or" is a word.
                params["forms"] = params["forms"].replace(" or ", " " + gettext("or") + " ")
            return Explained(_format(msgid, **params), field)
    if seconds is not None:
        return Explained(
            _format(
                N_("M-PESA would refuse this now. Try again in %(s)s s."), s=countdown(seconds)
            ),
            None,
            int(seconds),
        )
    return Explained(escape(message))


def wait_message(seconds: int, reason: str | None = None) -> Markup:
    """The "try again in N s" sentence for a guards.Wait reason, with a live countdown."""
    msgid = TRY_LATER.get(reason or "", N_("M-PESA would refuse this now. Try again in %(s)s s."))
    return _format(msgid, s=countdown(seconds))
