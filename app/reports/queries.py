"""Read-only queries for the owner's report: payments and totals for one Nairobi day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select, true

from app.extensions import db
from app.models import Payment, Till
from app.payments.states import OPEN, Status
from app.timeutil import nairobi_day_bounds


@dataclass(frozen=True)
class DayTotals:
    paid_count: int
    paid_kes: int
    attempts: int
    unresolved: int


def _in_shop(shop_id: int | None):
    """All shops (None), or the payments of one shop's tills."""
    if shop_id is None:
        return true()
    return Payment.till_id.in_(select(Till.id).where(Till.shop_id == shop_id))


def day_payments(day: date, shop_id: int | None = None) -> list[Payment]:
    start, end = nairobi_day_bounds(day)
    return list(
        db.session.execute(
            select(Payment)
            .where(Payment.created_at >= start, Payment.created_at < end, _in_shop(shop_id))
            .order_by(Payment.created_at.desc(), Payment.id.desc())
        ).scalars()
    )


def day_totals(day: date, shop_id: int | None = None) -> DayTotals:
    start, end = nairobi_day_bounds(day)
    in_day = (Payment.created_at >= start) & (Payment.created_at < end) & _in_shop(shop_id)
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
