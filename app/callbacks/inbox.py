"""Apply stored callbacks to payments; re-runnable by a job, an admin or the CLI.

A callback is trusted as far as we can tie it to what we sent:
- its CheckoutRequestID is one we stored for a payment of this till: applied through the
  transition table (amount checked, idempotent);
- it names an id we never stored but matches, by phone, amount and time, one payment whose
  push answer was lost or is still in flight: recorded as a *candidate*, never applied
  directly; an STK query on our shortcode for that id (app.jobs.poll) decides, and the
  callback then only brings its receipt number;
- anything else is an orphan, kept for a human.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update

from app.daraja.schemas import CallbackParseError, StkCallback, parse_stk_callback
from app.extensions import database_unavailable, db
from app.models import CallbackOutcome, Payment, RawCallback
from app.models.types import db_now, utcnow
from app.payments.service import Applied, Outcome, add_candidate, apply_event
from app.payments.states import AWAITING_CHECKOUT_ID, FINAL, QUERYABLE, Source

log = logging.getLogger(__name__)

# How far back an `unknown` push may be matched to a callback that names no known checkout.
UNKNOWN_MATCH_WINDOW = 15 * 60
# A callback still `received` this long after it arrived was interrupted (the database
# failed mid-way): the sweep processes it again.
RETRY_RECEIVED_AFTER = 60
# Rows the sweep handles per run, at most (the rest wait for the next run).
SWEEP_BATCH = 200

_APPLIED_AS = {
    Applied.MOVED: CallbackOutcome.APPLIED,
    Applied.DUPLICATE: CallbackOutcome.DUPLICATE,
    Applied.CONFLICT: CallbackOutcome.CONFLICT,
}


def callback_outcome(cb: StkCallback, raw_callback_id: int | None) -> Outcome:
    success = cb.result_code == "0"
    data: dict[str, object] = {}
    if success:
        data = {"amount": cb.amount, "phone": cb.phone}
    if cb.phone_as_sent is not None and cb.phone_as_sent != cb.phone:
        data["phone_as_sent"] = cb.phone_as_sent  # masked or odd: kept as sent
    return Outcome.final(
        Source.CALLBACK,
        cb.result_code,
        result_desc=cb.result_desc,
        receipt_number=cb.receipt_number,
        transaction_date=cb.transaction_date,
        merchant_request_id=cb.merchant_request_id,
        data=data or None,
        raw_callback_id=raw_callback_id,
    )


def process(raw: RawCallback) -> CallbackOutcome:
    """Parse and apply one stored callback; records and returns its outcome.

    Raises only when the database is unavailable: the row then stays as it was (`received`
    for a new one) and the sweep job processes it again. Any other failure is recorded as
    `error` for a human.
    """
    raw_id = raw.id
    if raw.outcome == CallbackOutcome.REFUTED:
        return (
            CallbackOutcome.REFUTED
        )  # the query decided against this claim; repeating it changes nothing
    try:
        cb = parse_stk_callback(raw.body)
    except CallbackParseError as exc:
        return _finish(raw_id, CallbackOutcome.INVALID, str(exc))
    try:
        return _apply(raw_id, raw.till_id, raw.received_at, raw.outcome, cb)
    except Exception as exc:
        db.session.rollback()
        if database_unavailable(exc):
            raise
        log.exception("callback %s could not be applied", raw_id)
        return _finish(raw_id, CallbackOutcome.ERROR, repr(exc)[:500])


def _apply(
    raw_id: int, till_id: int | None, received_at: datetime, was: str, cb: StkCallback
) -> CallbackOutcome:
    _record_summary(raw_id, cb)
    found = db.session.execute(
        select(Payment.id, Payment.till_id, Payment.status, Payment.result_code).where(
            Payment.checkout_request_id == cb.checkout_request_id
        )
    ).first()
    if found is not None:
        payment_id, payment_till, status, result_code = found
        if payment_till != till_id:
            # Safaricom sends a push's callback to the URL of the till that pushed it.
            return _finish(
                raw_id,
                CallbackOutcome.CONFLICT,
                f"CheckoutRequestID belongs to payment {payment_id} of another till",
                payment_id,
            )
        if was == CallbackOutcome.CANDIDATE and status in FINAL and result_code != cb.result_code:
            # A candidate was never believed; its id has been confirmed since, and the query's
            # answer (or another tied fact) decided otherwise: this claim stays unproven.
            return _finish(
                raw_id,
                CallbackOutcome.REFUTED,
                f"M-PESA says {result_code} for this CheckoutRequestID; the callback claimed "
                f"{cb.result_code}",
                payment_id,
            )
        if cb.result_code == "0" and cb.amount is None:
            # A success that names no amount cannot be matched to what we asked for: do not
            # show money that may not exist; ask Daraja instead (the poller queries it now).
            _query_soon(payment_id)
            return _finish(
                raw_id,
                CallbackOutcome.CONFLICT,
                "success without amount: confirming by query",
                payment_id,
            )
        applied = apply_event(payment_id, callback_outcome(cb, raw_id))
        return _finish(raw_id, _APPLIED_AS[applied], None, payment_id)

    candidate = _lost_push_for(till_id, received_at, cb)
    if candidate is None:
        return _finish(
            raw_id, CallbackOutcome.ORPHAN, "no payment with this CheckoutRequestID (yet)"
        )
    if not add_candidate(candidate, cb.checkout_request_id, cb.merchant_request_id, raw_id):
        return _finish(
            raw_id,
            CallbackOutcome.REFUTED,
            "this CheckoutRequestID was already refuted for this payment",
            candidate,
        )
    return _finish(
        raw_id,
        CallbackOutcome.CANDIDATE,
        "matches a payment whose push answer is missing by phone, amount and time; "
        "waiting for an STK query to confirm this CheckoutRequestID",
        candidate,
    )


def _record_summary(raw_id: int, cb: StkCallback) -> None:
    """Keep what the body claims on the inbox row, so an orphan can be matched by a human."""
    raw = db.session.get(RawCallback, raw_id)
    raw.checkout_request_id = cb.checkout_request_id
    raw.result_code = cb.result_code
    raw.amount = cb.amount
    raw.phone = cb.phone
    raw.receipt_number = cb.receipt_number
    db.session.commit()


def _lost_push_for(till_id: int | None, received_at: datetime, cb: StkCallback) -> int | None:
    """The one payment of this till whose push answer is missing (lost, or still in flight)
    and that this callback fits by phone, amount and time. Only a success carries phone and
    amount; the id it names belongs to no payment (the caller looked first)."""
    if cb.phone is None or cb.amount is None:
        return None
    window = timedelta(seconds=UNKNOWN_MATCH_WINDOW)
    candidates = (
        db.session.execute(
            select(Payment.id).where(
                Payment.till_id == till_id,
                Payment.status.in_(AWAITING_CHECKOUT_ID),
                Payment.checkout_request_id.is_(None),
                Payment.phone == cb.phone,
                Payment.amount_kes == cb.amount,
                Payment.created_at >= received_at - window,
                Payment.created_at <= received_at,
            )
        )
        .scalars()
        .all()
    )
    return candidates[0] if len(candidates) == 1 else None


def _query_soon(payment_id: int) -> None:
    payment = db.session.get(Payment, payment_id, populate_existing=True)
    if payment.status in QUERYABLE:
        payment.next_query_at = db_now()
        db.session.commit()


#: A reprocess that finds nothing new keeps the row's more telling earlier label.
_KEPT_OVER_DUPLICATE = frozenset({CallbackOutcome.APPLIED, CallbackOutcome.CONFLICT})


def _finish(
    raw_id: int, outcome: CallbackOutcome, message: str | None, payment_id: int | None = None
) -> CallbackOutcome:
    raw = db.session.get(RawCallback, raw_id, populate_existing=True)
    if payment_id is not None:
        raw.payment_id = payment_id
    if outcome == CallbackOutcome.DUPLICATE and raw.outcome in _KEPT_OVER_DUPLICATE:
        # Processed again (a sweep, or an admin's reprocess): this time nothing changed, but
        # the row did apply (or contradict) once, and that is what the inbox keeps.
        db.session.commit()
        return outcome
    raw.outcome = outcome
    raw.message = message
    raw.processed_at = utcnow()
    db.session.commit()
    return outcome


def refute(checkout_request_id: str, why: str) -> None:
    """Candidates naming this id are not believed (the query does not know the id)."""
    db.session.execute(
        update(RawCallback)
        .where(
            RawCallback.checkout_request_id == checkout_request_id,
            RawCallback.outcome == CallbackOutcome.CANDIDATE,
        )
        .values(outcome=CallbackOutcome.REFUTED, message=why, processed_at=utcnow())
    )
    db.session.commit()


def settle_candidates(checkout_request_id: str) -> None:
    """After a query confirmed this id: its candidate callbacks bring their receipt, or are
    refuted where they contradict the query's answer."""
    rows = (
        db.session.execute(
            select(RawCallback).where(
                RawCallback.checkout_request_id == checkout_request_id,
                RawCallback.outcome == CallbackOutcome.CANDIDATE,
            )
        )
        .scalars()
        .all()
    )
    for raw in rows:
        process(raw)


def sweep(now: datetime | None = None) -> dict[str, int]:
    """The inbox job: process again what an interruption or an early arrival left waiting.

    - `received` rows older than RETRY_RECEIVED_AFTER: the database failed mid-way;
    - orphans and candidates whose CheckoutRequestID a payment holds now (the push answer,
      or a confirming query, arrived after the callback);
    - candidates whose payment no longer holds their claim (refuted, or the push answer
      named another id), so that the next claim can be considered.
    """
    now = now or utcnow()
    stuck = select(RawCallback.id).where(
        RawCallback.outcome == CallbackOutcome.RECEIVED,
        RawCallback.received_at < now - timedelta(seconds=RETRY_RECEIVED_AFTER),
    )
    now_known = (
        select(RawCallback.id)
        .join(Payment, Payment.checkout_request_id == RawCallback.checkout_request_id)
        .where(RawCallback.outcome.in_([CallbackOutcome.ORPHAN, CallbackOutcome.CANDIDATE]))
    )
    unheld = (
        select(RawCallback.id)
        .join(Payment, Payment.id == RawCallback.payment_id)
        .where(
            RawCallback.outcome == CallbackOutcome.CANDIDATE,
            or_(
                Payment.checkout_request_id.is_not(None),
                and_(
                    Payment.candidate_checkout_id.is_(None),
                    Payment.status.in_(AWAITING_CHECKOUT_ID),
                ),
                Payment.status.not_in(AWAITING_CHECKOUT_ID),
            ),
        )
    )
    counts = {"retried": 0, "matched": 0}
    for name, query in (("retried", stuck), ("matched", now_known.union(unheld))):
        ids = db.session.execute(query.limit(SWEEP_BATCH)).scalars().all()
        db.session.rollback()
        for raw_id in sorted(set(ids)):
            raw = db.session.get(RawCallback, raw_id)
            if raw is None:
                continue
            process(raw)
            counts[name] += 1
    return counts
