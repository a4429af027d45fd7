"""Cashier pages: the counter, sending a payment, and the live row that htmx polls."""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, flash, make_response, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from app.auth.roles import role_required
from app.extensions import db
from app.htmx import STOP_POLLING, is_htmx, vary_on_htmx
from app.models import Payment, Role, Till
from app.payments import service
from app.payments.rules import InputError
from app.payments.states import FINAL
from app.timeutil import nairobi_day_bounds, today_nairobi

bp = Blueprint("cashier", __name__, url_prefix="/cashier")


def _till() -> Till:
    till = db.session.execute(select(Till).order_by(Till.id).limit(1)).scalar_one_or_none()
    if till is None:
        abort(409, "No till is configured yet: ask the admin to set one up.")
    return till


def _fresh_form():
    from app.cashier.forms import PaymentForm

    form = PaymentForm(formdata=None)
    form.idempotency_key.data = uuid.uuid4().hex
    return form


def _todays_payments(till: Till) -> list[Payment]:
    start, end = nairobi_day_bounds(today_nairobi())
    query = select(Payment).where(
        Payment.till_id == till.id, Payment.created_at >= start, Payment.created_at < end
    )
    if current_user.role == Role.CASHIER:
        query = query.where(Payment.cashier_id == current_user.id)
    return list(db.session.execute(query.order_by(Payment.id.desc()).limit(200)).scalars())


@bp.get("/")
@role_required(Role.CASHIER)
def index():
    till = _till()
    return render_template(
        "cashier/index.html", form=_fresh_form(), till=till, payments=_todays_payments(till)
    )


@bp.post("/payments")
@role_required(Role.CASHIER)
def create_payment():
    from app.cashier.forms import PaymentForm

    form = PaymentForm()
    till = _till()
    if not form.validate_on_submit():
        # Only the CSRF token or over-long fields can fail here; show it like any input error.
        errors = [e for field_errors in form.errors.values() for e in field_errors]
        return _form_error(form, till, "; ".join(errors) or "The form expired: try again.")
    key = form.idempotency_key.data or uuid.uuid4().hex
    try:
        payment, created = service.initiate_payment(
            till,
            current_user,
            phone=form.phone.data,
            amount=form.amount.data,
            reference=form.reference.data,
            idempotency_key=key,
        )
    except InputError as exc:
        return _form_error(form, till, str(exc))
    if is_htmx():
        # Fresh form (new key, cleared fields) plus the new row prepended out-of-band.
        html = render_template("cashier/_pay_form.html", form=_fresh_form())
        if created:
            html += render_template("cashier/_new_row.html", p=payment)
        return html
    if not created:
        flash("That payment was already sent; it is shown below.", "info")
    return redirect(url_for("cashier.index"))


def _form_error(form, till: Till, message: str):
    if is_htmx():
        # htmx swaps 2xx only; the error form replaces the form in place, keeping the entries.
        return render_template("cashier/_pay_form.html", form=form, error=message)
    return (
        render_template(
            "cashier/index.html",
            form=form,
            error=message,
            till=till,
            payments=_todays_payments(till),
        ),
        422,
    )


@bp.get("/payments/<int:payment_id>/row")
@role_required(Role.CASHIER)
def payment_row(payment_id: int):
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        abort(404)
    if current_user.role == Role.CASHIER and payment.cashier_id != current_user.id:
        abort(403)
    if not is_htmx():
        return redirect(url_for("cashier.index") + f"#payment-{payment.id}")
    response = make_response(render_template("cashier/_payment_row.html", p=payment))
    if payment.status in FINAL:
        response.status_code = STOP_POLLING
    return vary_on_htmx(response)
