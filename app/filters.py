"""Jinja filters and globals: Nairobi times, shillings, masked phones, status messages."""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from flask_babel import get_locale
from flask_login import current_user

from app.htmx import TOTALS_CHANGED
from app.i18n import LANGUAGES
from app.models import Payment, Role
from app.payments.messages import (
    COUNTER_FAILURES,
    cashier_message,
    countdown,
    counter_failure,
    status_label,
    wait_message,
)
from app.shops import fingerprint
from app.timeutil import NAIROBI, to_nairobi

#: what hides the middle digits of a phone number
MASK = "••••"


def nairobi(value: datetime | None, fmt: str = "%H:%M:%S") -> str:
    local = to_nairobi(value)
    return "" if local is None else local.strftime(fmt)


def kes(value: int | None) -> str:
    return "" if value is None else f"KES {value:,}"


def local_phone(msisdn: str | None) -> str:
    """2547XXXXXXXX → 07XX XXX XXX, the form a Kenyan cashier reads aloud."""
    if not msisdn or len(msisdn) != 12:
        return msisdn or ""
    local = "0" + msisdn[3:]
    return f"{local[:4]} {local[4:7]} {local[7:]}"


def mask_phone(msisdn: str | None) -> str:
    """254708374149 → 2547••••149: the first 4 and last 3 digits, never the rest."""
    if not msisdn:
        return ""
    if len(msisdn) < 7:
        return MASK
    return f"{msisdn[:4]}{MASK}{msisdn[-3:]}"


def can_see_full_phones() -> bool:
    """Owners and admins see whole numbers; cashiers (and anyone else) see them masked."""
    return bool(
        current_user
        and current_user.is_authenticated
        and current_user.role in (Role.OWNER, Role.ADMIN)
    )


def shown_phone(msisdn: str | None) -> str:
    """The phone as this viewer may see it on the counter."""
    return local_phone(msisdn) if can_see_full_phones() else mask_phone(msisdn)


#: TransactionDate shapes we can read: Safaricom's, then look-alikes' (all Nairobi time).
TRANSACTION_DATE_FORMATS = ("%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


def paid_at(p: Payment) -> datetime | None:
    """When the money moved: M-Pesa's TransactionDate (Nairobi time) if we can read it."""
    for fmt in TRANSACTION_DATE_FORMATS if p.mpesa_transaction_date else ():
        try:
            return datetime.strptime(p.mpesa_transaction_date, fmt).replace(tzinfo=NAIROBI)
        except ValueError:
            continue
    return p.final_at or p.updated_at


def current_language() -> str:
    locale = get_locale()
    return locale.language if locale is not None else "en"


def register(app: Flask) -> None:
    app.add_template_filter(nairobi, "nairobi")
    app.add_template_filter(kes, "kes")
    app.add_template_filter(fingerprint, "fingerprint")
    app.add_template_filter(local_phone, "local_phone")
    app.add_template_filter(mask_phone, "mask_phone")
    app.add_template_filter(shown_phone, "shown_phone")
    app.add_template_global(cashier_message)
    app.add_template_global(status_label)
    app.add_template_global(current_language)
    app.add_template_global(LANGUAGES, "languages")
    app.add_template_global(countdown)
    app.add_template_global(counter_failure)
    app.add_template_global(TOTALS_CHANGED, "totals_changed")
    app.add_template_global(COUNTER_FAILURES, "counter_failures")
    app.add_template_global(wait_message)
    app.add_template_global(paid_at)
