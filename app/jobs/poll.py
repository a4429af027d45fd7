"""The status poller: ask Daraja about payments whose callback is late or lost."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from app.crypto import SecretUnavailable
from app.daraja.errors import DarajaError, DarajaThrottled
from app.daraja.schemas import StkQueryResult
from app.extensions import db
from app.models import Payment
from app.models.types import utcnow
from app.payments import tills
from app.payments.service import Outcome, apply_event, give_up_stale
from app.payments.states import QUERYABLE, Status

log = logging.getLogger(__name__)

# Seconds between queries while the customer may still be on the prompt (Daraja throttles
# per-checkout polling; ≥ 5–10 s apart is the reported safe pace).
PENDING_STEPS = (10, 15, 20, 30)
# How long a claimed payment is reserved for the worker that claimed it.
LEASE_SECONDS = 60
BATCH = 50


def poll_payments(now: datetime | None = None) -> dict[str, int]:
    """One poller pass: give up stale rows, then query every due payment once."""
    now = now or utcnow()
    counts = {"queried": 0, "settled": 0, "given_up": give_up_stale(now)}
    due = db.session.execute(
        select(Payment.id, Payment.next_query_at)
        .where(
            Payment.status.in_([str(s) for s in QUERYABLE]),
            Payment.checkout_request_id.is_not(None),
            Payment.next_query_at <= now,
        )
        .order_by(Payment.next_query_at)
        .limit(BATCH)
    ).all()
    db.session.rollback()
    for payment_id, slot in due:
        if not _claim(payment_id, slot, now):
            continue  # another scheduler process took it for this slot
        counts["queried"] += 1
        if _query_one(payment_id, now):
            counts["settled"] += 1
    return counts


def _claim(payment_id: int, slot: datetime, now: datetime) -> bool:
    """Atomically move next_query_at forward; only one process can win a given slot."""
    result = db.session.execute(
        update(Payment)
        .where(Payment.id == payment_id, Payment.next_query_at == slot)
        .values(next_query_at=now + timedelta(seconds=LEASE_SECONDS))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def _query_one(payment_id: int, now: datetime) -> bool:
    payment = db.session.get(Payment, payment_id, populate_existing=True)
    till = payment.till
    try:
        result = tills.client_for(till).stk_query(
            till.shortcode, tills.passkey(till), payment.checkout_request_id
        )
    except (DarajaError, SecretUnavailable) as exc:
        log.warning("query for payment %s failed: %r", payment_id, exc)
        _reschedule(payment_id, now, throttled=isinstance(exc, DarajaThrottled))
        return False
    finally:
        _record_query(payment_id, now)
    if result.pending:
        _reschedule(payment_id, now)
        return False
    apply_event(payment_id, query_outcome(result), now=now)
    return True


def query_outcome(result: StkQueryResult) -> Outcome:
    """A final query answer, as the same kind of Outcome a callback produces."""
    return Outcome.final(
        "query",
        result.result_code or "",
        result_desc=result.result_desc,
        note="paid (learned by query; receipt pending)" if result.result_code == "0" else None,
    )


def _record_query(payment_id: int, now: datetime) -> None:
    db.session.execute(
        update(Payment)
        .where(Payment.id == payment_id)
        .values(query_count=Payment.query_count + 1, last_queried_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _reschedule(payment_id: int, now: datetime, *, throttled: bool = False) -> None:
    payment = db.session.get(Payment, payment_id, populate_existing=True)
    if payment.status == Status.PENDING:
        step = PENDING_STEPS[min(payment.query_count, len(PENDING_STEPS) - 1)]
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
        .values(next_query_at=None if next_at > horizon else next_at)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
