"""Cashier pages: the counter, sending, resending and cancelling, the live row, the receipt."""

from __future__ import annotations

import re
import uuid

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext
from flask_login import current_user

from app import shops
from app.auth.roles import role_required
from app.cashier.live import row_views
from app.cashier.today import today_totals, todays_payments
from app.extensions import db
from app.htmx import STOP_POLLING, TOTALS_CHANGED, is_htmx, vary_on_htmx
from app.i18n import N_
from app.models import Payment, Role, Till
from app.payments import service
from app.payments.messages import PUSH_NOT_RECORDED, SESSION_CHANGED, explain_input_error
from app.payments.rules import InputError
from app.payments.states import Status

_KEY = re.compile(r"[0-9a-f]{32}")

bp = Blueprint("cashier", __name__, url_prefix="/cashier")

#: longest search text accepted (a phone, a receipt number or an amount is far shorter)
SEARCH_MAX = 40


@bp.context_processor
def _viewer() -> dict:
    # Supervisors (owners, admins) also see Safaricom's own ResultDesc on each row.
    return {
        "supervisor": current_user.is_authenticated
        and current_user.role in (Role.OWNER, Role.ADMIN)
    }


class _PickTill(Exception):
    """This login works at several tills and has not picked one yet."""


def _till() -> Till:
    """The till of this login: the one assigned, or the one picked (app/shops.py)."""
    till = shops.current_till(current_user)
    if till is None:
        abort(409, gettext("No till is assigned to you yet: ask the admin."))
    if isinstance(till, list):
        raise _PickTill
    return till


@bp.errorhandler(_PickTill)
def _ask_for_a_till(_exc: _PickTill):
    if is_htmx():
        # A stale page of another login: the row or form cannot know which till is meant.
        abort(409, gettext("Choose your till first: reload the page."))
    return redirect(url_for("cashier.choose_till"))


@bp.route("/till", methods=["GET", "POST"])
@role_required(Role.CASHIER)
def choose_till():
    """Once per login, a cashier allowed at several tills says which one they work at."""
    choices = shops.tills_for(current_user)
    if request.method == "POST":
        raw = request.form.get("till_id", "")
        picked = (
            shops.pick_till(current_user, int(raw))
            if raw.isascii() and raw.isdigit() and len(raw) < 10
            else None
        )
        if picked is not None:
            return redirect(url_for("cashier.index"))
        flash(gettext("Choose one of your tills."), "error")
    return render_template("cashier/choose_till.html", choices=choices)


def _fresh_form():
    from app.cashier.forms import PaymentForm

    form = PaymentForm(formdata=None)
    form.idempotency_key.data = uuid.uuid4().hex
    return form


def _payment_for_user(payment_id: int) -> Payment:
    """The payment, if this user may act on it: cashiers only their own sales."""
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        abort(404)
    if current_user.role == Role.CASHIER and payment.cashier_id != current_user.id:
        abort(403)
    return payment


def _search_text() -> str:
    return (request.args.get("q") or "").strip()[:SEARCH_MAX]


def _page(form, till: Till, *, error=None, status: int = 200):
    q = _search_text()
    html = render_template(
        "cashier/index.html",
        form=form,
        error=error,
        till=till,
        q=q,
        rows=row_views(todays_payments(till, current_user, q)),
        totals=today_totals(till, current_user),
        can_switch=session.get(shops.SESSION_TILL) == till.id,
    )
    return vary_on_htmx(make_response(html, status))


@bp.get("/")
@role_required(Role.CASHIER)
def index():
    till = _till()
    if is_htmx() and request.headers.get("HX-Target") == "payment-rows":
        # The search box asks for the list alone; the same URL without htmx is the whole page.
        q = _search_text()
        html = render_template(
            "cashier/_rows.html", q=q, rows=row_views(todays_payments(till, current_user, q))
        )
        return vary_on_htmx(make_response(html))
    return _page(_fresh_form(), till)


@bp.post("/payments")
@role_required(Role.CASHIER)
def create_payment():
    """Save the sale and answer at once; with htmx, the new row then sends its own push.

    The push can take Daraja's whole read timeout (30 s); the form must be free for the next
    customer meanwhile. Without JavaScript the push is sent here and the page reloads.
    """
    from app.cashier.forms import PaymentForm

    form = PaymentForm()
    till = _till()
    if not form.validate_on_submit():
        # Only the CSRF token or over-long fields can fail here.
        if "csrf_token" in form.errors:
            message = SESSION_CHANGED
        else:
            message = N_("Check the phone, amount and reference, then send again.")
        return _form_error(form, till, explain_input_error(InputError(message)))
    key = form.idempotency_key.data or ""
    if not _KEY.fullmatch(key):
        # Only our own form's random key is accepted; anything else starts a fresh attempt.
        key = uuid.uuid4().hex
    save = service.create_payment if is_htmx() else service.initiate_payment
    try:
        payment, created = save(
            till,
            current_user,
            phone=form.phone.data,
            amount=form.amount.data,
            reference=form.reference.data,
            idempotency_key=key,
        )
    except InputError as exc:
        return _form_error(form, till, explain_input_error(exc))
    except service.PushNotRecorded:
        # The prompt went out; the same key finds this sale again, so nothing is sent twice.
        return _form_error(form, till, explain_input_error(InputError(PUSH_NOT_RECORDED)))
    if is_htmx():
        # The form itself is not swapped (static/counter.js clears it once the sale is saved).
        # Out of band: a new key for the next sale, the row prepended (a repeated key brings
        # back the row whose answer the browser never got), a voice for screen readers; and
        # the day's totals are told to refresh themselves.
        r = row_views([payment])[0]
        response = _totals_changed(
            make_response(
                render_template("cashier/_pay_key.html", key=uuid.uuid4().hex)
                + render_template("cashier/_new_row.html", r=r)
                + render_template("cashier/_announce.html", r=r)
            )
        )
        response.headers["HX-Reswap"] = "none"
        return response
    if not created:
        flash(gettext("That payment was already sent; it is shown below."), "info")
    return redirect(url_for("cashier.index"))


def _form_error(form, till: Till, explained):
    if is_htmx():
        # htmx swaps 2xx only; the error form replaces the form in place, keeping the entries.
        return render_template("cashier/_pay_form.html", form=form, error=explained)
    return _page(form, till, error=explained, status=422)


def _totals_changed(response: Response) -> Response:
    """Tell the page that today's totals moved; they refresh with their own small request,
    so that a live-row poll stays as cheap as the row (bench/counter.py measures both)."""
    response.headers["HX-Trigger"] = TOTALS_CHANGED
    return response


def _row_response(payment: Payment, *, announce: bool = False, **extra) -> Response:
    """The row; since every change of a row can move the day's totals, they are told to."""
    r = row_views([payment])[0]
    html = render_template("cashier/_payment_row.html", r=r, **extra)
    if announce:
        html += render_template("cashier/_announce.html", r=r)
    return _totals_changed(make_response(html))


@bp.get("/totals")
@role_required(Role.CASHIER)
def totals():
    """Today's totals alone (the totals box asks when a row tells it they moved)."""
    if not is_htmx():
        return redirect(url_for("cashier.index"))
    till = _till()
    response = make_response(
        render_template("cashier/_totals.html", totals=today_totals(till, current_user))
    )
    return vary_on_htmx(response)


@bp.post("/payments/<int:payment_id>/send")
@role_required(Role.CASHIER)
def send(payment_id: int):
    """The row's own request: send the push of a saved sale (at most once, whoever asks)."""
    payment = _payment_for_user(payment_id)
    error = None
    try:
        service.send_push(payment.id)
    except service.PushNotRecorded:
        error = explain_input_error(InputError(PUSH_NOT_RECORDED))
    if not is_htmx():
        return redirect(url_for("cashier.index") + f"#payment-{payment.id}")
    payment = db.session.get(Payment, payment.id, populate_existing=True)
    return _row_response(payment, announce=True, error=error)


@bp.get("/payments/<int:payment_id>/row")
@role_required(Role.CASHIER)
def payment_row(payment_id: int):
    payment = _payment_for_user(payment_id)
    if not is_htmx():
        return redirect(url_for("cashier.index") + f"#payment-{payment.id}")
    r = row_views([payment])[0]
    html = render_template("cashier/_payment_row.html", r=r)
    seen = request.args.get("seen")
    changed = bool(seen) and seen != r.phase
    if changed:
        # The row changed since the browser last saw it: tell screen readers.
        html += render_template("cashier/_announce.html", r=r)
    response = make_response(html)
    if changed:
        _totals_changed(response)  # a sale paid, failed, or no longer open
    if r.poll_every is None:
        response.status_code = STOP_POLLING
    return vary_on_htmx(response)


@bp.post("/payments/<int:payment_id>/resend")
@role_required(Role.CASHIER)
def resend(payment_id: int):
    original = _payment_for_user(payment_id)
    try:
        # One resend per attempt: a double click, or Alt+R twice, finds the same new attempt.
        new, created = service.resend_payment(
            original, current_user, idempotency_key=f"resend-{original.id}", send=not is_htmx()
        )
    except (InputError, service.PushNotRecorded) as exc:
        if isinstance(exc, service.PushNotRecorded):
            exc = InputError(PUSH_NOT_RECORDED)
        explained = explain_input_error(exc)
        if is_htmx():
            return _row_response(original, error=explained)
        flash(explained.text, "error")
        return redirect(url_for("cashier.index") + f"#payment-{original.id}")
    if not is_htmx():
        return redirect(url_for("cashier.index") + f"#payment-{new.id}")
    rows = row_views([original, new])
    html = render_template("cashier/_payment_row.html", r=rows[0])
    html += render_template("cashier/_new_row.html", r=rows[1])
    if created:
        html += render_template("cashier/_announce.html", r=rows[1])
    return _totals_changed(make_response(html))


@bp.post("/payments/<int:payment_id>/cancel")
@role_required(Role.CASHIER)
def cancel(payment_id: int):
    payment = _payment_for_user(payment_id)
    service.cancel_locally(payment, current_user)
    if not is_htmx():
        return redirect(url_for("cashier.index") + f"#payment-{payment.id}")
    payment = db.session.get(Payment, payment.id, populate_existing=True)
    return _row_response(payment, announce=True)


@bp.get("/payments/<int:payment_id>/receipt")
@role_required(Role.CASHIER, Role.OWNER)
def receipt(payment_id: int):
    payment = _payment_for_user(payment_id)
    if payment.status != Status.PAID:
        abort(404, gettext("There is no receipt: this payment is not paid."))
    width = "58" if request.args.get("width") == "58" else "80"
    return render_template("cashier/receipt.html", p=payment, till=payment.till, width=width)
