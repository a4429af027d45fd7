"""Read-only queries for the owner's report: payments and totals for one Nairobi day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select

from app.extensions import db
from app.models import Payment
from app.payments.states import OPEN, Status
from app.timeutil import nairobi_day_bounds


@dataclass(frozen=True)
class DayTotals:
    paid_count: int
    paid_kes: int
    attempts: int
    unresolved: int


def day_payments(day: date) -> list[Payment]:
    start, end = nairobi_day_bounds(day)
    return list(
        db.session.execute(
            select(Payment)
            .where(Payment.created_at >= start, Payment.created_at < end)
            .order_by(Payment.created_at.desc(), Payment.id.desc())
        ).scalars()
    )


def day_totals(day: date) -> DayTotals:
    start, end = nairobi_day_bounds(day)
    in_day = (Payment.created_at >= start) & (Payment.created_at < end)
    paid_count, paid_kes = db.session.execute(
        select(func.count(Payment.id), func.coalesce(func.sum(Payment.amount_kes), 0)).where(
            in_day, Payment.status == Status.PAID
        )
    ).one()
    attempts = db.session.execute(select(func.count(Payment.id)).where(in_day)).scalar_one()
    unresolved = db.session.execute(
        select(func.count(Payment.id)).where(
            in_day,
            Payment.status.in_(OPEN),
        )
    ).scalar_one()
    return DayTotals(int(paid_count), int(paid_kes), int(attempts), int(unresolved))
