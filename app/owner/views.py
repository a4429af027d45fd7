"""Owner pages: the daily report."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.auth.roles import role_required
from app.extensions import db
from app.models import Payment, Role
from app.reports.queries import day_payments, day_totals
from app.timeutil import today_nairobi

bp = Blueprint("owner", __name__, url_prefix="/owner")


@bp.get("/report")
@role_required(Role.OWNER)
def report():
    today = today_nairobi()
    error = None
    try:
        day = date.fromisoformat(request.args.get("date") or today.isoformat())
    except ValueError:
        day, error = today, "That is not a date; showing today."
    return render_template(
        "owner/report.html",
        day=day,
        today=today,
        prev_day=day - timedelta(days=1),
        next_day=day + timedelta(days=1),
        payments=day_payments(day),
        totals=day_totals(day),
        error=error,
    )


@bp.get("/payments/<int:payment_id>")
@role_required(Role.OWNER)
def payment(payment_id: int):
    """One payment and every event that happened to it, conflicts included."""
    p = db.get_or_404(Payment, payment_id)
    return render_template("owner/payment.html", p=p)


@bp.post("/payments/<int:payment_id>/resolve")
@role_required(Role.ADMIN)
def resolve(payment_id: int):
    """An admin settles an unknown/unconfirmed payment after checking the M-PESA statement."""
    from app.payments.service import ResolveError, resolve_manually

    p = db.get_or_404(Payment, payment_id)
    try:
        resolve_manually(
            p,
            current_user,
            paid=request.form.get("outcome") == "paid",
            receipt=request.form.get("receipt", ""),
            note=request.form.get("note", ""),
        )
    except ResolveError as exc:
        flash(str(exc), "error")
    else:
        flash("Payment resolved.", "info")
    return redirect(url_for("owner.payment", payment_id=payment_id))
