"""Apply stored callbacks to payments; re-runnable, so an admin or the CLI can reprocess a row."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from app.daraja.schemas import CallbackParseError, StkCallback, parse_stk_callback
from app.extensions import db
from app.models import Payment, RawCallback
from app.models.types import utcnow
from app.payments.service import Applied, Outcome, adopt_checkout_id, apply_event
from app.payments.states import Status

log = logging.getLogger(__name__)

# How far back an `unknown` push may be matched to a callback that names no known checkout.
UNKNOWN_MATCH_WINDOW = 15 * 60


def callback_outcome(cb: StkCallback, raw_callback_id: int | None) -> Outcome:
    success = cb.result_code == "0"
    return Outcome.final(
        "callback",
        cb.result_code,
        result_desc=cb.result_desc,
        receipt_number=cb.receipt_number,
        transaction_date=cb.transaction_date,
        merchant_request_id=cb.merchant_request_id,
        data={"amount": cb.amount, "phone": cb.phone} if success else None,
        raw_callback_id=raw_callback_id,
    )


def process(raw: RawCallback) -> str:
    """Parse and apply one stored callback; records and returns its outcome. Never raises."""
    raw_id = raw.id
    try:
        cb = parse_stk_callback(raw.body)
    except CallbackParseError as exc:
        return _finish(raw_id, "invalid", str(exc))
    try:
        _record_summary(raw_id, cb)
        payment_id = _payment_for(raw.till_id, cb.checkout_request_id)
        if payment_id is None:
            payment_id = _match_unknown(raw, cb)
        if payment_id is None:
            _finish(raw_id, "orphan", "no payment with this CheckoutRequestID (yet)")
            # The push's answer may have been saved since we looked, and its sweep of orphans
            # (reprocess_orphans) ran before we wrote "orphan": look once more, now that one of
            # the two sides is bound to see the other's write.
            payment_id = _payment_for(raw.till_id, cb.checkout_request_id)
            if payment_id is None:
                return "orphan"
        if cb.result_code == "0" and cb.amount is None:
            # A success that names no amount cannot be matched to what we asked for: do not
            # show money that may not exist; ask Daraja instead (the poller queries it now).
            _query_soon(payment_id)
            return _finish(raw_id, "conflict", "success without amount: confirming by query")
        applied = apply_event(payment_id, callback_outcome(cb, raw_id))
    except Exception as exc:
        db.session.rollback()
        log.exception("callback %s could not be applied", raw_id)
        return _finish(raw_id, "error", repr(exc)[:500])
    outcome = {
        Applied.MOVED: "applied",
        Applied.DUPLICATE: "duplicate",
        Applied.CONFLICT: "conflict",
    }[applied]
    return _finish(raw_id, outcome, None)


def _payment_for(till_id: int | None, checkout_request_id: str) -> int | None:
    return db.session.execute(
        select(Payment.id).where(
            Payment.checkout_request_id == checkout_request_id, Payment.till_id == till_id
        )
    ).scalar_one_or_none()


def _record_summary(raw_id: int, cb: StkCallback) -> None:
    """Keep what the body claims on the inbox row, so an orphan can be matched by a human."""
    raw = db.session.get(RawCallback, raw_id)
    raw.checkout_request_id = cb.checkout_request_id
    raw.result_code = cb.result_code
    raw.amount = cb.amount
    raw.phone = cb.phone
    raw.receipt_number = cb.receipt_number
    db.session.commit()


def _match_unknown(raw: RawCallback, cb: StkCallback) -> int | None:
    """A push whose response was lost (or is still in flight) has no CheckoutRequestID;
    match it by phone, amount and time. Only a success carries phone and amount, and only a
    unique match is taken."""
    if cb.phone is None or cb.amount is None:
        return None
    window = timedelta(seconds=UNKNOWN_MATCH_WINDOW)
    candidates = (
        db.session.execute(
            select(Payment.id).where(
                Payment.till_id == raw.till_id,
                Payment.status.in_([Status.UNKNOWN, Status.INITIATING]),
                Payment.checkout_request_id.is_(None),
                Payment.phone == cb.phone,
                Payment.amount_kes == cb.amount,
                Payment.created_at >= raw.received_at - window,
                Payment.created_at <= raw.received_at,
            )
        )
        .scalars()
        .all()
    )
    if len(candidates) != 1:
        return None
    adopt_checkout_id(candidates[0], cb.checkout_request_id, cb.merchant_request_id, raw.id)
    # If the push's own answer got there first it named the checkout; it must be this one.
    if _payment_for(raw.till_id, cb.checkout_request_id) != candidates[0]:
        return None
    return candidates[0]


def _query_soon(payment_id: int) -> None:
    payment = db.session.get(Payment, payment_id, populate_existing=True)
    if payment.status in (Status.PENDING, Status.UNCONFIRMED, Status.UNKNOWN):
        payment.next_query_at = utcnow()
        db.session.commit()


def _finish(raw_id: int, outcome: str, message: str | None) -> str:
    raw = db.session.get(RawCallback, raw_id, populate_existing=True)
    if raw.outcome == "applied" and outcome == "duplicate":
        # Processed again (a sweep, or an admin's reprocess): this time nothing changed, but
        # the row did apply once, and that is what the inbox keeps.
        return outcome
    raw.outcome = outcome
    raw.message = message
    raw.processed_at = utcnow()
    db.session.commit()
    return outcome


def reprocess_orphans(checkout_request_id: str) -> None:
    """Apply callbacks that arrived before we had saved the push response."""
    orphans = (
        db.session.execute(
            select(RawCallback).where(
                RawCallback.checkout_request_id == checkout_request_id,
                RawCallback.outcome == "orphan",
            )
        )
        .scalars()
        .all()
    )
    for raw in orphans:
        process(raw)
