"""Apply stored callbacks to payments; re-runnable, so an admin or the CLI can reprocess a row."""

from __future__ import annotations

import logging

from sqlalchemy import select

from app.daraja.schemas import CallbackParseError, StkCallback, parse_stk_callback
from app.extensions import db
from app.models import Payment, RawCallback
from app.models.types import utcnow
from app.payments.service import Applied, Outcome, apply_event

log = logging.getLogger(__name__)


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
        _set_checkout_id(raw_id, cb.checkout_request_id)
        payment_id = db.session.execute(
            select(Payment.id).where(
                Payment.checkout_request_id == cb.checkout_request_id,
                Payment.till_id == raw.till_id,
            )
        ).scalar_one_or_none()
        if payment_id is None:
            return _finish(raw_id, "orphan", "no payment with this CheckoutRequestID (yet)")
        if cb.result_code == "0" and cb.receipt_number is None:
            log.warning("success callback without receipt for %s", cb.checkout_request_id)
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


def _set_checkout_id(raw_id: int, checkout_request_id: str) -> None:
    raw = db.session.get(RawCallback, raw_id)
    raw.checkout_request_id = checkout_request_id
    db.session.commit()


def _finish(raw_id: int, outcome: str, message: str | None) -> str:
    raw = db.session.get(RawCallback, raw_id)
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
