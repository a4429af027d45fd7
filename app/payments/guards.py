"""M-Pesa's own refusal windows, checked before a push so the cashier sees them first.

Daraja refuses a second prompt while one is live for the phone ("Unable to lock
subscriber", about a minute) and fails the same amount to the same phone within two
minutes with ResultCode 17. We also cap prompts per phone per minute so a customer is
not spammed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.i18n import N_
from app.models import Payment
from app.payments.rules import InputError
from app.payments.states import MAY_HAVE_PROMPT, Status

LIVE_PROMPT_SECONDS = 60
SAME_AMOUNT_SECONDS = 120


class TryLater(InputError):
    """M-Pesa would refuse this now; `seconds` says how long to wait, `reason` why."""

    def __init__(self, reason: str, seconds: int) -> None:
        super().__init__(MESSAGES[reason], s=seconds)
        self.reason = reason
        self.seconds = seconds


#: What the cashier is told for each reason; %(s)s is the number of seconds to wait.
MESSAGES = {
    "live_prompt": N_("This customer already has an M-PESA prompt open. Try again in %(s)s s."),
    "same_amount": N_(
        "M-PESA refuses the same amount to the same phone within 2 minutes. Try again in %(s)s s."
    ),
    "prompt_limit": N_("Too many prompts to this phone in the last minute. Try again in %(s)s s."),
}


@dataclass(frozen=True)
class Wait:
    seconds: int
    reason: str  # "live_prompt", "same_amount" or "prompt_limit"


def wait_before_push(phone: str, amount: int, now: datetime) -> Wait | None:
    """The longest wait M-Pesa (or our spam guard) imposes on a push to `phone` for `amount`."""
    waits: list[Wait] = []
    live_since = now - timedelta(seconds=LIVE_PROMPT_SECONDS)
    live = db.session.execute(
        select(func.max(Payment.pushed_at)).where(
            Payment.phone == phone,
            # A timed-out push (unknown) may well have put a prompt on the phone.
            Payment.status.in_(MAY_HAVE_PROMPT),
            Payment.pushed_at > live_since,
        )
    ).scalar()
    if live is not None:
        waits.append(Wait(_remaining(live, LIVE_PROMPT_SECONDS, now), "live_prompt"))
    same = db.session.execute(
        select(func.max(Payment.pushed_at)).where(
            Payment.phone == phone,
            Payment.amount_kes == amount,
            Payment.status != Status.REJECTED,  # a refused push never reached M-Pesa's rules
            Payment.pushed_at > now - timedelta(seconds=SAME_AMOUNT_SECONDS),
        )
    ).scalar()
    if same is not None:
        waits.append(Wait(_remaining(same, SAME_AMOUNT_SECONDS, now), "same_amount"))
    limit = current_app.config["PROMPTS_PER_PHONE_PER_MINUTE"]
    recent = (
        db.session.execute(
            select(Payment.pushed_at)
            .where(
                Payment.phone == phone,
                Payment.pushed_at > now - timedelta(seconds=60),
                Payment.status != Status.REJECTED,
            )
            .order_by(Payment.pushed_at.desc())
        )
        .scalars()
        .all()
    )
    if limit > 0 and len(recent) >= limit:
        waits.append(Wait(_remaining(recent[limit - 1], 60, now), "prompt_limit"))
    waits = [w for w in waits if w.seconds > 0]
    return max(waits, key=lambda w: w.seconds) if waits else None


def _remaining(since: datetime, window: int, now: datetime) -> int:
    return max(0, int((since + timedelta(seconds=window) - now).total_seconds() + 0.999))


def check_before_push(phone: str, amount: int, now: datetime) -> None:
    """Raise TryLater if M-Pesa would refuse this push now."""
    wait = wait_before_push(phone, amount, now)
    if wait is not None:
        raise TryLater(wait.reason, wait.seconds)
