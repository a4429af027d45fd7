"""What one row of the counter shows now: its phase, countdowns, and the actions that apply."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext
from sqlalchemy import select

from app.daraja.codes import describe
from app.extensions import db
from app.i18n import N_
from app.models import Payment
from app.models.types import utcnow
from app.payments import guards, messages
from app.payments.states import FINAL, RESENDABLE, Status

#: seconds the customer has to enter the PIN (M-Pesa keeps the prompt open about a minute)
PIN_SECONDS = guards.LIVE_PROMPT_SECONDS

# htmx polling intervals: fast while the customer is on the prompt, slower afterwards.
POLL_PIN = "1500ms"
POLL_WAITING = "3s"
POLL_SLOW = "5s"

#: short words for the phases that are not plain statuses
PHASE_WORDS = {
    "waiting": N_("Waiting for M-PESA"),
    "cancelled": N_("Cancelled here"),
    "paid_after_cancel": N_("Paid after cancel"),
}


@dataclass(frozen=True)
class RowView:
    """A payment as its row shows it (built in the view, rendered by _payment_row.html)."""

    p: Payment
    #: sending, pin, waiting, unknown, unconfirmed, paid, failed, rejected, cancelled,
    #: paid_after_cancel
    phase: str
    #: seconds left for the customer to enter the PIN (phase "pin" only)
    pin_left: int | None
    #: htmx polling interval while the row can still change; None once it is final
    poll_every: str | None
    can_cancel: bool
    can_resend: bool
    #: seconds before M-Pesa would accept the resend (the button counts down meanwhile)
    resend_wait: int | None
    resend_reason: str | None
    #: the attempt that re-sent this one, if any
    resent_as: int | None

    @property
    def word(self) -> str:
        if self.phase in PHASE_WORDS:
            return gettext(PHASE_WORDS[self.phase])
        return messages.status_label(self.p.status)

    @property
    def message(self) -> str:
        if self.phase == "waiting":
            return gettext(messages.STILL_WAITING)
        if self.phase == "cancelled" and self.p.status not in FINAL:
            return gettext(messages.CANCELLED_HERE)
        return messages.cashier_message(self.p)

    @property
    def final(self) -> bool:
        return self.p.status in FINAL


def _phase(p: Payment, pin_left: int | None) -> str:
    status = Status(p.status)
    if status is Status.PAID:
        return "paid_after_cancel" if p.cancelled_at is not None else "paid"
    if p.cancelled_at is not None:
        return "cancelled"
    if status is Status.INITIATING:
        return "sending"
    if status is Status.PENDING:
        return "pin" if pin_left else "waiting"
    return str(status)


def _poll_every(p: Payment, phase: str) -> str | None:
    status = Status(p.status)
    if status in FINAL:
        return None
    if status is Status.INITIATING or phase == "pin":
        return POLL_PIN
    if status is Status.PENDING:
        return POLL_WAITING
    # unknown / unconfirmed: the poller keeps asking M-Pesa; the row checks back slowly.
    return POLL_SLOW


# Seconds to wait before resending after Daraja refused the push, by kind of refusal.
_REFUSAL_WAITS: dict[str, tuple[int, str | None]] = {
    "DarajaSubscriberLocked": (guards.LIVE_PROMPT_SECONDS, "live_prompt"),
    "DarajaSystemBusy": (30, None),
    "DarajaThrottled": (30, None),
}


def _resend_wait(p: Payment, now: datetime) -> tuple[int | None, str | None]:
    """The longest of M-Pesa's refusal windows (guards) and the result code's own advice."""
    waits: list[tuple[int, str | None]] = []
    wait = guards.wait_before_push(p.phone, p.amount_kes, now)
    if wait is not None:
        waits.append((wait.seconds, wait.reason))
    # Daraja refused the push itself: a prompt already open for the phone, or the gateway is
    # busy or throttling. Resending before the window passes would be refused the same way.
    refusal = _REFUSAL_WAITS.get(p.push_error_code or "")
    if p.status == Status.REJECTED and refusal and p.final_at is not None:
        seconds, reason = refusal
        left = (p.final_at + timedelta(seconds=seconds) - now).total_seconds()
        if left > 0:
            waits.append((int(left + 0.999), reason))
    if p.result_code and p.final_at is not None:
        advice = describe(p.result_code).resend_after_s
        if advice:
            left = (p.final_at + timedelta(seconds=advice) - now).total_seconds()
            if left > 0:
                waits.append((int(left + 0.999), None))
    if not waits:
        return None, None
    return max(waits, key=lambda w: w[0])


def row_view(p: Payment, now: datetime | None = None, resent_as: int | None = -1) -> RowView:
    """Build the view of one row; `resent_as=-1` means "look it up"."""
    now = now or utcnow()
    if resent_as == -1:
        resent_as = resent_map([p.id]).get(p.id)
    pin_left = None
    if p.status == Status.PENDING and p.pushed_at is not None:
        left = (p.pushed_at + timedelta(seconds=PIN_SECONDS) - now).total_seconds()
        pin_left = int(left + 0.999) if left > 0 else None
    phase = _phase(p, pin_left)
    can_resend = (
        p.status in RESENDABLE
        and resent_as is None
        # The result code knows when a new prompt is pointless (PIN locked, limits, setup).
        and (p.status != Status.FAILED or describe(p.result_code or "").can_resend)
    )
    resend_wait, resend_reason = _resend_wait(p, now) if can_resend else (None, None)
    return RowView(
        p=p,
        phase=phase,
        pin_left=pin_left if phase == "pin" else None,
        poll_every=_poll_every(p, phase),
        can_cancel=p.cancelled_at is None and p.status not in FINAL,
        can_resend=can_resend,
        resend_wait=resend_wait,
        resend_reason=resend_reason,
        resent_as=resent_as,
    )


def resent_map(ids: Iterable[int]) -> dict[int, int]:
    """original attempt id → the id of the attempt that re-sent it."""
    ids = list(ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(Payment.resend_of_id, Payment.id).where(Payment.resend_of_id.in_(ids))
    ).all()
    return {original: new for original, new in rows}


def row_views(payments: list[Payment], now: datetime | None = None) -> list[RowView]:
    now = now or utcnow()
    resent = resent_map(p.id for p in payments)
    return [row_view(p, now, resent.get(p.id)) for p in payments]
