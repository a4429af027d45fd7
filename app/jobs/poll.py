"""The status poller: ask Daraja about payments whose callback is late or lost.

Two jobs share this code: `poll_pending` asks about payments whose customer may still be
on the prompt, and `reconcile` keeps asking, more slowly, about `unconfirmed` and
`unknown` ones. Several scheduler processes may run at once (by design or by mistake):
a payment's query slot is claimed in the database — `FOR UPDATE SKIP LOCKED` on
PostgreSQL, a compare-and-set on SQLite — and each query is logged with a unique
(payment, slot), so no payment is queried twice for one slot.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.callbacks import inbox
from app.crypto import SecretUnavailable
from app.daraja.errors import DarajaBadRequest, DarajaError, DarajaThrottled
from app.daraja.schemas import StkQueryResult
from app.extensions import db
from app.models import Payment, PaymentQuery, Till
from app.models.types import db_now, utcnow
from app.payments import service, tills
from app.payments.service import Outcome, apply_event, give_up_stale
from app.payments.states import POLLED, RECONCILED, Source, Status

log = logging.getLogger(__name__)

# Seconds between queries while the customer may still be on the prompt (Daraja throttles
# per-checkout polling; ≥ 5–10 s apart is the reported safe pace).
PENDING_STEPS = (10, 15, 20, 30)
# How long a claimed payment is reserved for the process that claimed it.
LEASE_SECONDS = 60
# After a spike-arrest or quota answer, a till's queries pause for this long (doubling, capped).
THROTTLE_BACKOFF = (5, 60)
# Queries of one till may bunch up to this far ahead of its budget (a small burst).
BUDGET_BURST_SECONDS = 1.0
BATCH = 50
WORKER = f"{socket.gethostname()}:{os.getpid()}"


def poll_pending(now: datetime | None = None) -> dict[str, int]:
    """Query due payments whose customer may still be on the prompt, and the CheckoutRequestIDs
    that callbacks claim for unknown pushes (a cashier is probably waiting on those)."""
    return _poll(POLLED, now, candidates=True)


def reconcile(now: datetime | None = None) -> dict[str, int]:
    """Keep asking about unconfirmed and unknown payments until RECONCILE_FOR has passed;
    for an unknown one, the CheckoutRequestID a callback claimed is what we ask about."""
    return _poll(RECONCILED, now)


def expire_stale(now: datetime | None = None) -> dict[str, int]:
    """Pending past the give-up time → unconfirmed; initiating left by a crash → unknown."""
    return {"given_up": give_up_stale(now)}


def poll_payments(now: datetime | None = None) -> dict[str, int]:
    """Everything the poller does, once, in order (for the CLI and tests)."""
    now = now or db_now()
    counts = expire_stale(now)
    for part in (poll_pending(now), reconcile(now)):
        for key, value in part.items():
            counts[key] = counts.get(key, 0) + value
    return counts


def _poll(
    statuses: Iterable[Status], now: datetime | None, *, candidates: bool = False
) -> dict[str, int]:
    # The database's clock, like the one that stamped next_query_at (app.models.types.db_now).
    now = now or db_now()
    counts = {"queried": 0, "settled": 0}
    for payment_id, slot in _claim_due(list(statuses), now, candidates):
        if not _take_budget(payment_id, now):
            _release(payment_id, slot, now + timedelta(seconds=1))
            continue
        counts["queried"] += 1
        if _query_one(payment_id, slot, now):
            counts["settled"] += 1
    return counts


def _due(statuses: list[Status], now: datetime, candidates: bool):
    throttled_tills = select(Till.id).where(Till.backoff_until > now)
    in_scope = Payment.status.in_([str(s) for s in statuses])
    if candidates:
        in_scope = or_(
            in_scope,
            and_(
                Payment.status == Status.UNKNOWN,
                Payment.checkout_request_id.is_(None),
                Payment.candidate_checkout_id.is_not(None),
            ),
        )
    return (
        select(Payment.id, Payment.next_query_at)
        .where(
            in_scope,
            # Something to ask with: our id, or the one a callback claims (to confirm it).
            or_(
                Payment.checkout_request_id.is_not(None),
                Payment.candidate_checkout_id.is_not(None),
            ),
            Payment.next_query_at <= now,
            Payment.till_id.not_in(throttled_tills),
        )
        .order_by(Payment.next_query_at)
        .limit(BATCH)
    )


def _claim_due(
    statuses: list[Status], now: datetime, candidates: bool = False
) -> list[tuple[int, datetime]]:
    """Claim due payments for this process; returns (payment id, slot) pairs."""
    lease = now + timedelta(seconds=LEASE_SECONDS)
    if db.engine.dialect.name == "postgresql":
        # Rows another process has locked are skipped, not waited for.
        rows = db.session.execute(
            _due(statuses, now, candidates).with_for_update(skip_locked=True)
        ).all()
        claimed = []
        for payment_id, slot in rows:
            if _log_query(payment_id, slot):
                claimed.append((payment_id, slot))
        if claimed:
            db.session.execute(
                update(Payment)
                .where(Payment.id.in_([pid for pid, _ in claimed]))
                .values(next_query_at=lease, lease_owner=WORKER)
                .execution_options(synchronize_session=False)
            )
        db.session.commit()
        return claimed
    rows = db.session.execute(_due(statuses, now, candidates)).all()
    db.session.rollback()
    claimed = []
    for payment_id, slot in rows:
        # Compare-and-set: only the process that still sees the old slot moves it.
        won = db.session.execute(
            update(Payment)
            .where(Payment.id == payment_id, Payment.next_query_at == slot)
            .values(next_query_at=lease, lease_owner=WORKER)
            .execution_options(synchronize_session=False)
        ).rowcount
        if won == 1 and _log_query(payment_id, slot):
            claimed.append((payment_id, slot))
        db.session.commit()
    return claimed


def _log_query(payment_id: int, slot: datetime) -> bool:
    """Record the query about to be sent; the unique (payment, slot) is the last guard."""
    try:
        with db.session.begin_nested():
            db.session.execute(
                insert(PaymentQuery).values(
                    payment_id=payment_id, slot_at=slot, worker=WORKER, queried_at=utcnow()
                )
            )
    except IntegrityError:
        log.warning("payment %s slot %s was already queried by another process", payment_id, slot)
        return False
    return True


def _take_budget(payment_id: int, now: datetime) -> bool:
    """Take one query from the till's budget (queries per second, shared by processes)."""
    till_id = db.session.execute(
        select(Payment.till_id).where(Payment.id == payment_id)
    ).scalar_one()
    for _ in range(5):
        till = db.session.execute(
            select(Till.query_slot_at, Till.query_budget_per_s).where(Till.id == till_id)
        ).one()
        step = 1.0 / max(till.query_budget_per_s, 0.01)
        current = db_now()  # every scheduler process shares the budget on one clock
        start = max(till.query_slot_at or current, current)
        if start > current + timedelta(seconds=BUDGET_BURST_SECONDS):
            db.session.rollback()
            return False
        won = db.session.execute(
            update(Till)
            .where(
                Till.id == till_id,
                Till.query_slot_at.is_(None)
                if till.query_slot_at is None
                else Till.query_slot_at == till.query_slot_at,
            )
            .values(query_slot_at=start + timedelta(seconds=step))
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        if won:
            # Wait for our slot, so the till never exceeds its budget on average.
            time.sleep(max(0.0, (start - current).total_seconds()))
            return True
    return False


def _release(payment_id: int, slot: datetime, at: datetime) -> None:
    """Give a claimed payment back unqueried (its till's budget is spent for now)."""
    db.session.execute(
        delete(PaymentQuery).where(
            PaymentQuery.payment_id == payment_id,
            PaymentQuery.slot_at == slot,
            PaymentQuery.worker == WORKER,
        )
    )
    db.session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.lease_owner == WORKER)
        .values(next_query_at=at, lease_owner=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _query_one(payment_id: int, slot: datetime, now: datetime) -> bool:
    payment = db.session.get(Payment, payment_id, populate_existing=True)
    till = payment.till
    # Without an id of our own, we ask about the one a callback claims: the answer decides.
    asked = payment.checkout_request_id or payment.candidate_checkout_id
    confirming = payment.checkout_request_id is None
    try:
        result = tills.client_for(till).stk_query(till.shortcode, tills.passkey(till), asked)
    except (DarajaError, SecretUnavailable) as exc:
        log.warning("query for payment %s failed: %r", payment_id, exc)
        if confirming and isinstance(exc, DarajaBadRequest) and exc.field == "CheckoutRequestID":
            # Daraja does not know this id on our shortcode: the claim was not a push of ours.
            _finish_query(payment_id, slot, now, "refuted")
            why = f"Daraja does not know it on shortcode {till.shortcode} ({exc.error_code})"
            service.refute_candidate(payment_id, asked, why)
            inbox.refute(asked, why)
            _release_lease(payment_id)
            return False
        throttled = isinstance(exc, DarajaThrottled)
        if throttled:
            _back_off_till(till.id, now)
        _finish_query(payment_id, slot, now, f"error:{type(exc).__name__}"[:48])
        _reschedule(payment_id, now, throttled=throttled)
        return False
    if result.pending:
        _finish_query(payment_id, slot, now, "pending")
        _reschedule(payment_id, now)
        return False
    if result.checkout_request_id != asked:
        # An answer about another checkout (a faulty gateway or a look-alike) settles nothing.
        _finish_query(payment_id, slot, now, "mismatch")
        service.record_query_mismatch(
            payment_id, asked, result.checkout_request_id, result.result_code
        )
        _reschedule(payment_id, now)
        return False
    _finish_query(payment_id, slot, now, f"final:{result.result_code}"[:48])
    if confirming:
        service.confirm_candidate(payment_id, asked, query_outcome(result), now=now)
        # The callbacks that claimed it bring their receipt, or are refuted by this answer.
        inbox.settle_candidates(asked)
    else:
        apply_event(payment_id, query_outcome(result), now=now)
    return True


def query_outcome(result: StkQueryResult) -> Outcome:
    """A final query answer, as the same kind of Outcome a callback produces."""
    return Outcome.final(
        Source.QUERY,
        result.result_code or "",
        result_desc=result.result_desc,
        note="paid (learned by query; receipt pending)" if result.result_code == "0" else None,
    )


def _release_lease(payment_id: int) -> None:
    db.session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.lease_owner == WORKER)
        .values(lease_owner=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _finish_query(payment_id: int, slot: datetime, now: datetime, answer: str) -> None:
    db.session.execute(
        update(PaymentQuery)
        .where(PaymentQuery.payment_id == payment_id, PaymentQuery.slot_at == slot)
        .values(answer=answer)
    )
    db.session.execute(
        update(Payment)
        .where(Payment.id == payment_id)
        .values(query_count=Payment.query_count + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _back_off_till(till_id: int, now: datetime) -> None:
    """Spike arrest / quota: pause every query of this till, doubling up to a cap."""
    current = db.session.execute(select(Till.backoff_until).where(Till.id == till_id)).scalar()
    low, high = THROTTLE_BACKOFF
    previous = (current - now).total_seconds() if current and current > now else 0
    span = min(high, max(low, previous * 2)) * random.uniform(1.0, 1.25)
    db.session.execute(
        update(Till)
        .where(
            Till.id == till_id,
            or_(Till.backoff_until.is_(None), Till.backoff_until < now + timedelta(seconds=span)),
        )
        .values(backoff_until=now + timedelta(seconds=span))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _reschedule(payment_id: int, now: datetime, *, throttled: bool = False) -> None:
    payment = db.session.get(Payment, payment_id, populate_existing=True)
    if payment.status == Status.PENDING:
        step = PENDING_STEPS[min(payment.query_count - 1, len(PENDING_STEPS) - 1)]
    else:
        step = current_app.config["RECONCILE_INTERVAL"]
    if throttled:
        step = max(step * 2, 30)
    # Jitter spreads queries of payments pushed in the same second.
    delay = step * random.uniform(0.9, 1.2)
    horizon = payment.created_at + timedelta(seconds=current_app.config["RECONCILE_FOR"])
    next_at = now + timedelta(seconds=delay)
    db.session.execute(
        update(Payment)
        .where(Payment.id == payment_id)
        .values(
            next_query_at=None if next_at > horizon else next_at,
            lease_owner=None,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
