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

from app.daraja.codes import normalize_code
from app.i18n import N_
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
    "not_sent": N_(
        "Not sent: the connection dropped before the prompt left. Nothing was charged; send again."
    ),
}

SENDING = N_("Sending to M-PESA…")
ENTER_PIN = N_("Prompt sent. Ask the customer to enter their M-PESA PIN.")
STILL_WAITING = N_("Still waiting for M-PESA…")
UNCONFIRMED = N_("Unconfirmed — money may have moved; checking automatically.")
UNKNOWN = N_(
    "No answer from M-PESA: the prompt may have reached the phone. Ask the customer "
    "before sending again — do not send twice if they were charged."
)
PUSH_NOT_RECORDED = N_(
    "M-PESA took the prompt, but PesaDesk could not save its answer (database unavailable). "
    "It will be recorded by itself: do not send again."
)
# What the counter says when a request of its own fails (static/counter.js shows these).
SESSION_CHANGED = N_(
    "Your login session has ended or changed, so nothing was sent. Reload the page (log in "
    "again if asked), then send again."
)
SESSION_ENDED = N_(
    "You are logged out, so nothing was sent. Log in again in another tab, then press Enter "
    "here: what you typed is kept."
)
COUNTER_FAILURES = {
    "send-offline": N_(
        "Not sent: the connection dropped. Nothing was charged. Press Enter to try again."
    ),
    "send-timeout": N_(
        "Not sent: PesaDesk did not answer in time. Nothing was charged. Press Enter to try again."
    ),
    "sending-offline": N_(
        "The connection dropped while sending this prompt: the row will show what happened "
        "as soon as the connection is back. Do not send it again."
    ),
    "action-offline": N_("Not done: the connection dropped. Nothing changed. Try again."),
    "search-offline": N_("Search failed: the connection dropped. Try again."),
    "poll-offline": N_("Connection lost: the rows below are not updating. PesaDesk keeps trying."),
    "server-error": N_(
        "PesaDesk had a problem, and nothing was sent or changed. Try again; if it keeps "
        "happening, call the admin."
    ),
    "session-ended": SESSION_ENDED,
    "session-changed": SESSION_CHANGED,
}


def counter_failure(key: str) -> str:
    """One of COUNTER_FAILURES, translated (templates put them where counter.js finds them)."""
    return gettext(COUNTER_FAILURES[key])


CANCELLED_HERE = N_(
    "Cancelled here. M-PESA cannot withdraw the prompt: if the customer still pays, "
    "this row will say so."
)


# What the cashier is told for each ResultCode (meanings: app.daraja.codes, docs/daraja.md §7).
_CONFIG_MESSAGE = N_("Payment setup error. Contact support.")
_SEND_FAILED_MESSAGE = N_("Couldn't reach the customer's phone. Resend.")
_GENERIC_MESSAGE = N_("Payment failed. Resend or use another method.")
RESULT_MESSAGES: dict[str, str] = {
    "0": N_("Payment received."),
    "1": N_("Customer's M-PESA balance is too low. Ask them to top up, then resend."),
    "2": N_("Amount is below the M-PESA minimum."),
    "3": N_("Amount is above the M-PESA limit per payment. Split the bill."),
    "4": N_("Customer has reached their daily M-PESA limit. Use another method."),
    "8": N_("Our M-PESA account can't accept more right now. Call the supervisor."),
    "17": N_("Duplicate payment blocked. Wait 2 minutes before retrying."),
    "26": N_("M-PESA is busy. Try again in a minute."),
    "1001": N_("Customer has another M-PESA request open. Ask them to close it, then resend."),
    "1019": N_("Request expired. Resend and ask the customer to enter PIN promptly."),
    "1025": _SEND_FAILED_MESSAGE,
    "9999": _SEND_FAILED_MESSAGE,
    "1032": N_("Customer cancelled on their phone."),
    "1037": N_(
        "Customer's phone not reachable. Ask them to check signal/unlock phone, then resend."
    ),
    "2001": N_("Wrong PIN entered. Resend and ask customer to retry carefully."),
    "2028": _CONFIG_MESSAGE,
    "8006": N_("Customer's M-PESA is locked. They must call Safaricom (100/200)."),
    "SFC_IC0003": _CONFIG_MESSAGE,
    "1101": _CONFIG_MESSAGE,
}


#: A short name for each failure reason, for the owner's charts (full sentences are above).
_SETUP = N_("Payment setup error")
_NOT_REACHED = N_("Phone not reached")
_AMOUNT_LIMIT = N_("Amount or limit refused")
REASON_LABELS: dict[str, str] = {
    "1": N_("Balance too low"),
    "2": _AMOUNT_LIMIT,
    "3": _AMOUNT_LIMIT,
    "4": _AMOUNT_LIMIT,
    "8": _SETUP,
    "17": N_("Duplicate blocked"),
    "26": N_("M-PESA busy"),
    "1001": N_("Another request open"),
    "1019": N_("Prompt expired"),
    "1025": _NOT_REACHED,
    "9999": _NOT_REACHED,
    "1032": N_("Cancelled on phone"),
    "1037": N_("Phone unreachable"),
    "2001": N_("Wrong PIN"),
    "2028": _SETUP,
    "8006": N_("M-PESA account locked"),
    "SFC_IC0003": _SETUP,
    "1101": _SETUP,
    "manual": N_("Settled by hand as not paid"),
}
OTHER_REASON = N_("Other reason")


def reason_label(code: str | None) -> str:
    """The English msgid of a failure's short reason (OTHER_REASON when unknown)."""
    try:
        key = normalize_code(code) if code is not None else ""
    except TypeError:
        key = ""
    return REASON_LABELS.get(key, REASON_LABELS.get(str(code), OTHER_REASON))


def result_message(code: str | int | None) -> str:
    """The English msgid for a ResultCode; unknown codes get the generic failure."""
    try:
        key = normalize_code(code) if code is not None else ""
    except TypeError:
        key = ""
    return RESULT_MESSAGES.get(key, _GENERIC_MESSAGE)


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
            return gettext(result_message("0"))
        # The status query confirms payment but carries no receipt; a late callback may.
        return gettext(
            "Payment received (confirmed by M-PESA; no receipt number yet: see the customer's SMS)."
        )
    if status is Status.FAILED:
        return gettext(result_message(p.result_code))
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
# Those modules know nothing of the UI language: they raise InputError with a msgid marked
# N_() and its parameters. Here the msgid is translated and the parameters filled in.


@dataclass(frozen=True)
class Explained:
    """A refusal ready to show: HTML-safe text, and the form field it is about (if any)."""

    text: Markup
    field: str | None = None
    seconds: int | None = None


def countdown(seconds: int) -> Markup:
    """A number of seconds that static/counter.js counts down to 0."""
    return Markup('<b class="countdown" data-seconds="{0}">{0}</b>').format(int(seconds))


def _format(msgid: str, **params: object) -> Markup:
    """Translate `msgid`, escape it, and fill %(name)s placeholders (Markup values kept)."""
    return escape(gettext(msgid)) % params


def explain_input_error(exc: Exception) -> Explained:
    """The translated, HTML-safe message for an InputError from the payment modules."""
    msgid = getattr(exc, "msgid", None)
    if msgid is None:
        return Explained(escape(str(exc)))
    params = dict(getattr(exc, "params", {}))
    seconds = params.get("s")
    if seconds is not None:
        params["s"] = countdown(seconds)
    if "forms" in params:
        # "07XXXXXXXX, …, 2547XXXXXXXX or +2547XXXXXXXX": only the "or" is a word.
        params["forms"] = params["forms"].replace(" or ", " " + gettext("or") + " ")
    return Explained(
        _format(msgid, **params),
        getattr(exc, "field", None),
        int(seconds) if seconds is not None else None,
    )


def wait_message(seconds: int, reason: str | None = None) -> Markup:
    """The "try again in N s" sentence for a guards.Wait reason, with a live countdown."""
    msgid = guards.MESSAGES.get(reason or "wait", guards.MESSAGES["wait"])
    return _format(msgid, s=countdown(seconds))
