"""What one row of the counter shows now: its phase, countdowns, and the actions that apply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext

from app.i18n import N_
from app.models import Payment
from app.models.types import utcnow
from app.payments import guards, messages
from app.payments.resend import Resend, resend_states
from app.payments.states import FINAL, Status

#: seconds the customer has to enter the PIN (M-Pesa keeps the prompt open about a minute)
PIN_SECONDS = guards.LIVE_PROMPT_SECONDS

# htmx polling intervals: fast while the customer is on the prompt, slower afterwards.
POLL_PIN = "1500ms"
POLL_WAITING = "3s"
POLL_SLOW = "5s"
POLL_RECEIPT = "10s"

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
    #: htmx polling interval while the row can still change; None once nothing will
    poll_every: str | None
    #: saved but not sent yet: the row sends it (once) as soon as it is shown
    needs_send: bool
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


#: A paid row whose receipt number has not come yet keeps checking, slowly, this long.
RECEIPT_WAIT_SECONDS = 30 * 60


def _poll_every(p: Payment, phase: str, now: datetime) -> str | None:
    status = Status(p.status)
    if status is Status.PAID:
        # The receipt of a success learned by query may still come with a late callback.
        waiting = p.receipt_number is None and p.final_at is not None
        if waiting and now - p.final_at < timedelta(seconds=RECEIPT_WAIT_SECONDS):
            return POLL_RECEIPT
        return None
    if status in FINAL:
        return None
    if status is Status.INITIATING or phase == "pin":
        return POLL_PIN
    if status is Status.PENDING:
        return POLL_WAITING
    # unknown / unconfirmed: the poller keeps asking M-Pesa; the row checks back slowly.
    return POLL_SLOW


def row_views(payments: list[Payment], now: datetime | None = None) -> list[RowView]:
    """The rows as the counter shows them, in a constant number of queries whatever their
    number (the resend rule is decided for all of them at once)."""
    now = now or utcnow()
    resends = resend_states(payments, now)
    return [_row_view(p, now, resends[p.id]) for p in payments]


def _row_view(p: Payment, now: datetime, resend: Resend) -> RowView:
    pin_left = None
    if p.status == Status.PENDING and p.pushed_at is not None:
        left = (p.pushed_at + timedelta(seconds=PIN_SECONDS) - now).total_seconds()
        pin_left = int(left + 0.999) if left > 0 else None
    phase = _phase(p, pin_left)
    return RowView(
        p=p,
        phase=phase,
        pin_left=pin_left if phase == "pin" else None,
        poll_every=_poll_every(p, phase, now),
        # Not claimed yet: the row itself asks the server to send it (app.cashier.views.send).
        needs_send=p.status == Status.INITIATING and p.push_started_at is None,
        can_cancel=p.cancelled_at is None and p.status not in FINAL,
        can_resend=resend.allowed,
        resend_wait=resend.wait if resend.allowed else None,
        resend_reason=resend.reason if resend.allowed else None,
        resent_as=resend.resent_as,
    )
