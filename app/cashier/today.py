"""Today's payments at this till: the list a cashier sees, its totals, and the search over it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import case, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from app.extensions import db
from app.models import Payment, Role, Till, User
from app.payments.rules import InputError, normalise_phone
from app.payments.states import OPEN, Status
from app.timeutil import nairobi_day_bounds, today_nairobi

#: most rows shown at once; the search reaches every row of the day
LIST_LIMIT = 200


@dataclass(frozen=True)
class TodayTotals:
    paid_count: int
    paid_kes: int
    open_count: int


def _today_at(till: Till, user: User) -> list[ColumnElement[bool]]:
    start, end = nairobi_day_bounds(today_nairobi())
    where = [Payment.till_id == till.id, Payment.created_at >= start, Payment.created_at < end]
    if user.role == Role.CASHIER:
        # A cashier sees their own sales; owners and admins see the whole till.
        where.append(Payment.cashier_id == user.id)
    return where


def search_clause(q: str) -> ColumnElement[bool] | None:
    """Match a phone (whole number, or its last 3+ digits), a receipt number, or an amount.

    Returns None for an empty query; a query that cannot match anything gives a false clause.
    """
    text = re.sub(r"(?i)^\s*(kes|ksh)\.?\s*", "", q.strip())
    compact = re.sub(r"[\s\-,+]", "", text)
    if not compact:
        return None
    if any(ch.isnumeric() and not ch.isascii() for ch in compact):
        # int() and isdigit() read "١٥٠" or "１５０" as 150: such a query would silently show
        # the KES 150 sales. Phones, amounts and receipts are stored in ASCII digits only.
        return Payment.id.is_(None)  # never true: the primary key is never NULL
    clauses: list[ColumnElement[bool]] = []
    if compact.isalnum() and len(compact) >= 3:
        clauses.append(func.upper(Payment.receipt_number).contains(compact.upper()))
    if re.fullmatch(r"[0-9]+", compact):
        if len(compact) <= 9:
            clauses.append(Payment.amount_kes == int(compact))
        try:
            # Searching sends nothing: find sales to any Kenyan mobile, ported or not.
            clauses.append(Payment.phone == normalise_phone(compact, allow_ported=True))
        except InputError:
            pass
        if len(compact) >= 3:
            # Only the tail: the masked number shows the last 3 digits, never the middle.
            clauses.append(Payment.phone.endswith(compact))
    if not clauses:
        return Payment.id.is_(None)  # never true: nothing matches gibberish
    return or_(*clauses)


def todays_payments(till: Till, user: User, q: str = "") -> list[Payment]:
    query = select(Payment).where(*_today_at(till, user))
    clause = search_clause(q)
    if clause is not None:
        query = query.where(clause)
    query = query.order_by(Payment.id.desc()).limit(LIST_LIMIT)
    return list(db.session.execute(query).scalars())


def today_totals(till: Till, user: User) -> TodayTotals:
    """Paid count and KES, and the sales still open, in one pass over today's rows."""
    paid = Payment.status == Status.PAID
    still_open = Payment.status.in_(OPEN) & Payment.cancelled_at.is_(None)
    paid_count, paid_kes, open_count = db.session.execute(
        select(
            func.coalesce(func.sum(case((paid, 1), else_=0)), 0),
            func.coalesce(func.sum(case((paid, Payment.amount_kes), else_=0)), 0),
            func.coalesce(func.sum(case((still_open, 1), else_=0)), 0),
        ).where(*_today_at(till, user))
    ).one()
    return TodayTotals(int(paid_count), int(paid_kes), int(open_count))
