"""M-Pesa's own refusal windows, checked before a push so the cashier sees them first.

Daraja refuses a second prompt while one is live for the phone ("Unable to lock
subscriber", about a minute) and fails the same amount to the same phone within two
minutes with ResultCode 17. We also cap prompts per phone per minute so a customer is
not spammed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

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
    # A pause Daraja or the last result code asked for (app.payments.resend).
    "wait": N_("M-PESA would refuse this now. Try again in %(s)s s."),
}


@dataclass(frozen=True)
class Wait:
    seconds: int
    reason: str  # "live_prompt", "same_amount" or "prompt_limit"


def wait_before_push(phone: str, amount: int, now: datetime) -> Wait | None:
    """The longest wait M-Pesa (or our spam guard) imposes on a push to `phone` for `amount`."""
    return waits_before_push([(phone, amount)], now)[(phone, amount)]


#: The longest window any rule looks back over.
_LOOKBACK_SECONDS = max(LIVE_PROMPT_SECONDS, SAME_AMOUNT_SECONDS, 60)


def waits_before_push(
    pairs: Iterable[tuple[str, int]], now: datetime
) -> dict[tuple[str, int], Wait | None]:
    """wait_before_push for many (phone, amount) pairs in one query: a counter shows many rows.

    Reads only the phones' pushes of the last two minutes (index on phone, pushed_at), so
    the cost does not grow with the payments table.
    """
    pairs = list(dict.fromkeys(pairs))
    recent: dict[str, list[tuple[int, str, datetime]]] = {}
    phones = sorted({phone for phone, _amount in pairs})
    if phones:
        rows = db.session.execute(
            select(Payment.phone, Payment.amount_kes, Payment.status, Payment.pushed_at).where(
                Payment.phone.in_(phones),
                Payment.pushed_at > now - timedelta(seconds=_LOOKBACK_SECONDS),
            )
        ).all()
        for phone, amount, status, pushed_at in rows:
            recent.setdefault(phone, []).append((amount, status, pushed_at))
    limit = current_app.config["PROMPTS_PER_PHONE_PER_MINUTE"]
    return {
        (phone, amount): _longest_wait(recent.get(phone, []), amount, limit, now)
        for phone, amount in pairs
    }


def _longest_wait(
    pushes: list[tuple[int, str, datetime]], amount: int, limit: int, now: datetime
) -> Wait | None:
    waits: list[Wait] = []
    # A timed-out push (unknown) may well have put a prompt on the phone.
    live = [at for _a, status, at in pushes if status in MAY_HAVE_PROMPT]
    if live:
        waits.append(Wait(_remaining(max(live), LIVE_PROMPT_SECONDS, now), "live_prompt"))
    # A refused push never reached M-Pesa's rules.
    reached = [(a, at) for a, status, at in pushes if status != Status.REJECTED]
    same = [at for a, at in reached if a == amount]
    if same:
        waits.append(Wait(_remaining(max(same), SAME_AMOUNT_SECONDS, now), "same_amount"))
    last_minute = sorted(
        (at for _a, at in reached if at > now - timedelta(seconds=60)), reverse=True
    )
    if limit > 0 and len(last_minute) >= limit:
        waits.append(Wait(_remaining(last_minute[limit - 1], 60, now), "prompt_limit"))
    waits = [w for w in waits if w.seconds > 0]
    return max(waits, key=lambda w: w.seconds) if waits else None


def _remaining(since: datetime, window: int, now: datetime) -> int:
    return max(0, int((since + timedelta(seconds=window) - now).total_seconds() + 0.999))


def check_before_push(phone: str, amount: int, now: datetime) -> None:
    """Raise TryLater if M-Pesa would refuse this push now."""
    wait = wait_before_push(phone, amount, now)
    if wait is not None:
        raise TryLater(wait.reason, wait.seconds)
