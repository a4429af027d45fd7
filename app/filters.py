"""Jinja filters and globals: Nairobi times, shillings, masked phones, status messages."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from app.payments.messages import cashier_message, status_label
from app.timeutil import to_nairobi


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


def register(app: Flask) -> None:
    app.add_template_filter(nairobi, "nairobi")
    app.add_template_filter(kes, "kes")
    app.add_template_filter(local_phone, "local_phone")
    app.add_template_global(cashier_message)
    app.add_template_global(status_label)
