"""Owner pages: the daily report."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from app import audit
from app.auth.roles import role_required
from app.extensions import db
from app.i18n import N_
from app.models import AuditAction, Payment, Role, Shop
from app.payments.messages import status_label
from app.payments.service import Applied, ResolveError, attach_receipt, resolve_manually
from app.payments.states import RESOLVABLE_BY_HAND
from app.reports.flags import LABELS as FLAG_LABELS
from app.reports.flags import flags_for
from app.reports.queries import day_payments, day_totals
from app.timeutil import EARLIEST_DAY, is_reportable_day, today_nairobi

bp = Blueprint("owner", __name__, url_prefix="/owner")

_NO_REPORT = N_("There is no report before %(earliest)s or after tomorrow; showing today.")
#: the English text (the page shows it in the user's language)
NO_REPORT_THAT_DAY = _NO_REPORT % {"earliest": EARLIEST_DAY}


@bp.get("/report")
@role_required(Role.OWNER)
def report():
    today = today_nairobi()
    error = None
    try:
        day = date.fromisoformat(request.args.get("date") or today.isoformat())
    except ValueError:
        day, error = today, gettext("That is not a date; showing today.")
    if not is_reportable_day(day, today):
        day, error = today, gettext(_NO_REPORT, earliest=EARLIEST_DAY)
    all_shops = db.session.execute(select(Shop).order_by(Shop.name)).scalars().all()
    shop = next((s for s in all_shops if str(s.id) == request.args.get("shop")), None)
    shop_id = shop.id if shop else None
    payments = day_payments(day, shop_id)
    return render_template(
        "owner/report.html",
        shops=all_shops,
        shop=shop,
        day=day,
        today=today,
        prev_day=day - timedelta(days=1),
        next_day=day + timedelta(days=1),
        payments=payments,
        flags=flags_for(payments),
        flag_labels=FLAG_LABELS,
        totals=day_totals(day, shop_id),
        error=error,
    )


@bp.get("/payments/<int:payment_id>")
@role_required(Role.OWNER)
def payment(payment_id: int):
    """One payment and every event that happened to it, conflicts included."""
    p = db.get_or_404(Payment, payment_id)
    return render_template(
        "owner/payment.html",
        p=p,
        flags=flags_for([p])[p.id],
        flag_labels=FLAG_LABELS,
        resolvable_by_hand=RESOLVABLE_BY_HAND,
    )


def _refusal(exc: ResolveError) -> Markup:
    """The refusal, with a link to the payment that already holds the receipt, if that is why."""
    message = gettext(exc.msgid, **exc.params)
    if exc.other_payment_id is None:
        return Markup.escape(message)
    link = url_for("owner.payment", payment_id=exc.other_payment_id)
    return Markup('{} <a href="{}">{}</a>.').format(
        message, link, gettext("Open payment %(id)s", id=exc.other_payment_id)
    )


@bp.post("/payments/<int:payment_id>/resolve")
@role_required(Role.ADMIN)
def resolve(payment_id: int):
    """An admin settles an unknown/unconfirmed payment after checking the M-PESA statement."""
    p = db.get_or_404(Payment, payment_id)
    try:
        applied = resolve_manually(
            p,
            current_user,
            paid=request.form.get("outcome") == "paid",
            receipt=request.form.get("receipt", "")[:40],
            note=request.form.get("note", "")[:400],
        )
    except ResolveError as exc:
        flash(_refusal(exc), "error")
    else:
        p = db.session.get(Payment, payment_id, populate_existing=True)
        if applied is Applied.MOVED:
            audit.record(
                AuditAction.PAYMENT_RESOLVED,
                target=audit.target_of("payment", payment_id),
                detail={"status": p.status, "receipt": p.receipt_number},
            )
            db.session.commit()
            flash(
                gettext("Payment resolved: now %(status)s.", status=status_label(p.status)), "info"
            )
        else:
            # Something got there first (a callback, the poller) or the fact contradicts it.
            flash(
                gettext(
                    "Nothing changed: the payment is %(status)s. See its timeline.",
                    status=status_label(p.status),
                ),
                "error",
            )
    return redirect(url_for("owner.payment", payment_id=payment_id))


@bp.post("/payments/<int:payment_id>/receipt")
@role_required(Role.ADMIN)
def add_receipt(payment_id: int):
    """An admin types the receipt of a paid payment whose receipt never came (query-only)."""
    p = db.get_or_404(Payment, payment_id)
    try:
        attach_receipt(
            p,
            current_user,
            receipt=request.form.get("receipt", "")[:40],
            note=request.form.get("note", "")[:400],
        )
    except ResolveError as exc:
        flash(_refusal(exc), "error")
    else:
        audit.record(
            AuditAction.RECEIPT_ATTACHED,
            target=audit.target_of("payment", payment_id),
            detail={"receipt": p.receipt_number},
        )
        db.session.commit()
        flash(gettext("Receipt attached."), "info")
    return redirect(url_for("owner.payment", payment_id=payment_id))
