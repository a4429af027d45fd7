"""What the cashier is told for each status and result code: short, and something to act on."""

from __future__ import annotations

import re

from app.daraja.codes import describe
from app.models import Payment
from app.payments.states import Status

LABELS = {
    Status.INITIATING: "Sending",
    Status.PENDING: "Waiting for PIN",
    Status.PAID: "Paid",
    Status.FAILED: "Failed",
    Status.REJECTED: "Not sent",
    Status.UNKNOWN: "Unknown",
    Status.UNCONFIRMED: "Unconfirmed",
}

# Daraja's push refusals, by what the cashier can do about them.
_PUSH_ERRORS = {
    "DarajaSubscriberLocked": "This customer already has an M-PESA prompt open. "
    "Wait about a minute, then send again.",
    "DarajaThrottled": "M-PESA is limiting requests right now. Wait a few seconds and send again.",
    "DarajaSystemBusy": "M-PESA is busy. Try again in a minute.",
    "DarajaTimeout": "M-PESA could not be reached. Nothing was sent; try again.",
    "DarajaConnectionError": "M-PESA could not be reached. Nothing was sent; try again.",
    "DarajaWrongCredentials": "The till's passkey or shortcode is wrong. Call the admin.",
    "DarajaMerchantNotFound": "The till's shortcode is not known to M-PESA. Call the admin.",
    "DarajaAuthError": "The till's consumer key or secret is wrong. Call the admin.",
    "DarajaInvalidToken": "M-PESA refused the till's access. Call the admin.",
    "credentials": "The till's credentials cannot be read. Call the admin.",
    "settings": "The till's settings are not valid for M-PESA. Call the admin.",
}


def status_label(status: str) -> str:
    return LABELS.get(Status(status), status)


def cashier_message(p: Payment) -> str:
    status = Status(p.status)
    if status is Status.INITIATING:
        return "Sending the prompt to the customer's phone…"
    if status is Status.PENDING:
        return "Prompt sent. Ask the customer to enter their M-PESA PIN."
    if status is Status.PAID:
        if p.receipt_number:
            return "Payment received."
        return "Payment received (confirmed by M-PESA; receipt number to follow)."
    if status is Status.FAILED:
        return describe(p.result_code or "").cashier_message
    if status is Status.REJECTED:
        message = _PUSH_ERRORS.get(p.push_error_code or "")
        if message:
            return message
        invalid = re.search(r"Invalid (\w+)", p.push_error_message or "")
        if p.push_error_code == "DarajaBadRequest" and invalid:
            return f"M-PESA refused the request ({invalid.group(1)} is invalid). Nothing was sent."
        return "M-PESA refused the request. Nothing was sent; try again or call the admin."
    if status is Status.UNKNOWN:
        return (
            "No answer from M-PESA: the prompt may have reached the phone. Ask the customer "
            "before sending again — do not send twice if they were charged."
        )
    return "Unconfirmed — money may have moved; checking automatically."
