"""Whether an attempt may be sent again, and when: decided here once, for many rows at a time.

The counter shows the answer (Resend enabled, or counting down) and the service enforces the
same answer when a resend is posted, so a button and the rule can never disagree. A new
attempt for a sale is refused when:
- the attempt can still change (only failed or refused attempts are resent: an unknown or
  unconfirmed one may have charged the customer);
- its result code says a new prompt cannot succeed (a locked PIN, a till set-up error);
- it was already re-sent, or another attempt of the sale is paid or still open;
and it must wait while M-Pesa would refuse it: a prompt open on the phone, the same amount to
the same phone within two minutes, our prompt-spam guard (app.payments.guards), a Daraja
refusal that asks for a pause, or the wait its result code advises.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from app.daraja.codes import describe
from app.extensions import db
from app.i18n import N_
from app.models import Payment
from app.payments import guards
from app.payments.states import OPEN, RESENDABLE, Status

# Seconds to wait before resending after Daraja refused the push, by kind of refusal.
REFUSAL_WAITS: dict[str, tuple[int, str | None]] = {
    "DarajaSubscriberLocked": (guards.LIVE_PROMPT_SECONDS, "live_prompt"),
    "DarajaSystemBusy": (30, None),
    "DarajaThrottled": (30, None),
}

NOT_FINAL = N_("Only a failed or refused payment can be sent again.")
CANNOT_SUCCEED = N_("M-PESA cannot take this payment: a new prompt would fail too.")
SALE_PAID = N_("This sale is already paid.")
OTHER_OPEN = N_("Another attempt for this sale is still open; wait for its result.")
ALREADY_RESENT = N_("This payment was already sent again: see the newer row.")


@dataclass(frozen=True)
class Resend:
    """What the counter may do about sending one attempt again."""

    #: why it can never be resent (a msgid), or None when it can
    refused: str | None
    #: seconds before M-Pesa would accept the resend (None: now)
    wait: int | None = None
    #: which refusal window the wait comes from (a guards.MESSAGES key), if one
    reason: str | None = None
    #: the attempt that already re-sent this one, if any
    resent_as: int | None = None

    @property
    def allowed(self) -> bool:
        return self.refused is None


def resend_map(ids: Iterable[int]) -> dict[int, int]:
    """original attempt id → the id of the attempt that re-sent it."""
    ids = list(ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(Payment.resend_of_id, Payment.id).where(Payment.resend_of_id.in_(ids))
    ).all()
    return {original: new for original, new in rows}


def resend_states(payments: Iterable[Payment], now: datetime) -> dict[int, Resend]:
    """The Resend of every payment given, in at most three queries whatever their number."""
    payments = list(payments)
    # Only a failed or refused attempt can have been re-sent (or be re-sent now).
    resent = resend_map(p.id for p in payments if p.status in RESENDABLE)
    candidates = [p for p in payments if _own_refusal(p, resent) is None]
    sales = _sale_statuses({p.sale_ref for p in candidates})
    waits = guards.waits_before_push([(p.phone, p.amount_kes) for p in candidates], now)
    states: dict[int, Resend] = {}
    for p in payments:
        refused = _own_refusal(p, resent) or _sale_refusal(p, sales.get(p.sale_ref, []))
        if refused is not None:
            states[p.id] = Resend(refused, resent_as=resent.get(p.id))
            continue
        seconds, reason = _longest(
            [_guard_wait(waits[(p.phone, p.amount_kes)]), *_own_waits(p, now)]
        )
        states[p.id] = Resend(None, seconds, reason)
    return states


def resend_state(payment: Payment, now: datetime) -> Resend:
    """resend_states for one payment (the service, and a single row)."""
    return resend_states([payment], now)[payment.id]


def _own_refusal(p: Payment, resent: dict[int, int]) -> str | None:
    if p.status not in RESENDABLE:
        return NOT_FINAL
    # The result code knows when a new prompt is pointless (PIN locked, limits, setup).
    if p.status == Status.FAILED and not describe(p.result_code or "").can_resend:
        return CANNOT_SUCCEED
    if p.id in resent:
        return ALREADY_RESENT
    return None


def _sale_refusal(p: Payment, statuses: list[str]) -> str | None:
    if Status.PAID in statuses:
        return SALE_PAID
    if any(s in OPEN for s in statuses):
        return OTHER_OPEN
    return None


def _sale_statuses(sale_refs: set[str]) -> dict[str, list[str]]:
    if not sale_refs:
        return {}
    found: dict[str, list[str]] = {}
    rows = db.session.execute(
        select(Payment.sale_ref, Payment.status).where(Payment.sale_ref.in_(sorted(sale_refs)))
    ).all()
    for sale_ref, status in rows:
        found.setdefault(sale_ref, []).append(status)
    return found


def _guard_wait(wait: guards.Wait | None) -> tuple[int, str | None] | None:
    return (wait.seconds, wait.reason) if wait else None


def _own_waits(p: Payment, now: datetime) -> list[tuple[int, str | None] | None]:
    """Waits this attempt's own answer asks for: a Daraja refusal, or its result code."""
    waits: list[tuple[int, str | None] | None] = []
    if p.final_at is None:
        return waits
    refusal = REFUSAL_WAITS.get(p.push_error_code or "")
    if p.status == Status.REJECTED and refusal:
        seconds, reason = refusal
        waits.append(_left(p.final_at + timedelta(seconds=seconds), now, reason))
    if p.result_code:
        advice = describe(p.result_code).resend_after_s
        if advice:
            waits.append(_left(p.final_at + timedelta(seconds=advice), now, None))
    return waits


def _left(until: datetime, now: datetime, reason: str | None) -> tuple[int, str | None] | None:
    left = (until - now).total_seconds()
    return (int(left + 0.999), reason) if left > 0 else None


def _longest(waits: list[tuple[int, str | None] | None]) -> tuple[int | None, str | None]:
    present = [w for w in waits if w is not None]
    if not present:
        return None, None
    return max(present, key=lambda w: w[0])
