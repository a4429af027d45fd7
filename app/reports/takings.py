"""The owner's takings over a period: totals, comparison, and the series behind each chart.

A sale counts on the Nairobi day it was **paid** (`final_at` of a paid payment: paid is final
and never downgraded, so that instant does not move). Sent, failed and unresolved count by the
day the sale was started. Every query here is one aggregate over an index; none loads rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, and_, case, func, select, true

from app.extensions import db
from app.models import CallbackOutcome, Payment, RawCallback, Till, User
from app.payments.states import OPEN, Status
from app.reports.periods import Period, as_date, nairobi_day, nairobi_hour


@dataclass(frozen=True)
class Scope:
    """Whose takings: everything (all None), one shop, one till, or one cashier."""

    shop_id: int | None = None
    till_id: int | None = None
    cashier_id: int | None = None

    def payments(self) -> ColumnElement[bool]:
        clauses = []
        if self.till_id is not None:
            clauses.append(Payment.till_id == self.till_id)
        elif self.shop_id is not None:
            clauses.append(Payment.till_id.in_(_shop_tills(self.shop_id)))
        if self.cashier_id is not None:
            clauses.append(Payment.cashier_id == self.cashier_id)
        return and_(true(), *clauses)

    def callbacks(self) -> ColumnElement[bool]:
        """Orphan money has a till but no cashier: a cashier's scope holds none."""
        if self.cashier_id is not None:
            return RawCallback.id.is_(None)
        if self.till_id is not None:
            return RawCallback.till_id == self.till_id
        if self.shop_id is not None:
            return RawCallback.till_id.in_(_shop_tills(self.shop_id))
        return true()


def _shop_tills(shop_id: int):
    return select(Till.id).where(Till.shop_id == shop_id).scalar_subquery()


@dataclass(frozen=True)
class Summary:
    paid_count: int
    paid_kes: int
    #: sales started in the period whose prompt was sent (or may have been)
    sent: int
    #: of those, paid by now
    sent_and_paid: int
    failed: int
    unresolved: int
    #: successful callbacks that matched no sale: money received, not linked to a sale
    orphan_count: int
    orphan_kes: int

    @property
    def average_sale(self) -> int | None:
        return round(self.paid_kes / self.paid_count) if self.paid_count else None

    @property
    def success_rate(self) -> float | None:
        """Paid ÷ sent, for the sales started in the period (None when nothing was sent)."""
        return self.sent_and_paid / self.sent if self.sent else None


def _paid_in(period: Period, scope: Scope) -> ColumnElement[bool]:
    start, end = period.utc_bounds()
    return and_(
        Payment.status == Status.PAID,
        Payment.final_at >= start,
        Payment.final_at < end,
        scope.payments(),
    )


def _started_in(period: Period, scope: Scope) -> ColumnElement[bool]:
    start, end = period.utc_bounds()
    return and_(Payment.created_at >= start, Payment.created_at < end, scope.payments())


def _orphans_in(period: Period, scope: Scope) -> ColumnElement[bool]:
    start, end = period.utc_bounds()
    return and_(
        RawCallback.outcome == CallbackOutcome.ORPHAN,
        RawCallback.received_at >= start,
        RawCallback.received_at < end,
        RawCallback.result_code == "0",
        scope.callbacks(),
    )


def _count_if(condition: ColumnElement[bool]):
    """How many rows of the group meet `condition` (0, not NULL, for none)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def summary(period: Period, scope: Scope) -> Summary:
    """The period's figures in three aggregate queries."""
    paid_count, paid_kes = db.session.execute(
        select(func.count(), func.coalesce(func.sum(Payment.amount_kes), 0)).where(
            _paid_in(period, scope)
        )
    ).one()

    sent, sent_and_paid, failed, unresolved = db.session.execute(
        select(
            _count_if(Payment.status != Status.REJECTED),
            _count_if(Payment.status == Status.PAID),
            _count_if(Payment.status == Status.FAILED),
            _count_if(Payment.status.in_(OPEN)),
        ).where(_started_in(period, scope))
    ).one()
    orphan_count, orphan_kes = db.session.execute(
        select(func.count(), func.coalesce(func.sum(RawCallback.amount), 0)).where(
            _orphans_in(period, scope)
        )
    ).one()
    return Summary(
        paid_count=int(paid_count),
        paid_kes=int(paid_kes),
        sent=int(sent),
        sent_and_paid=int(sent_and_paid),
        failed=int(failed),
        unresolved=int(unresolved),
        orphan_count=int(orphan_count),
        orphan_kes=int(orphan_kes),
    )


def _most_first(counts: dict[str | None, int]) -> list[tuple[str | None, int]]:
    # Sorted here, not in SQL: the databases put NULL (no code) at opposite ends.
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] or ""))


@dataclass(frozen=True)
class DaySummary:
    day: date
    paid_count: int
    paid_kes: int
    sent: int
    failed: int
    unresolved: int
    orphan_kes: int


def day_summaries(period: Period, scope: Scope) -> list[DaySummary]:
    """A line per Nairobi day of the period, in three grouped queries (not three per day)."""
    paid_day = nairobi_day(Payment.final_at).label("day")
    paid = {
        as_date(d): (int(n), int(kes))
        for d, n, kes in db.session.execute(
            select(paid_day, func.count(), func.sum(Payment.amount_kes))
            .where(_paid_in(period, scope))
            .group_by(paid_day)
        )
    }
    started_day = nairobi_day(Payment.created_at).label("day")

    started = {
        as_date(d): (int(s), int(f), int(u))
        for d, s, f, u in db.session.execute(
            select(
                started_day,
                _count_if(Payment.status != Status.REJECTED),
                _count_if(Payment.status == Status.FAILED),
                _count_if(Payment.status.in_(OPEN)),
            )
            .where(_started_in(period, scope))
            .group_by(started_day)
        )
    }
    orphan_day = nairobi_day(RawCallback.received_at).label("day")
    orphans = {
        as_date(d): int(kes or 0)
        for d, kes in db.session.execute(
            select(orphan_day, func.sum(RawCallback.amount))
            .where(_orphans_in(period, scope))
            .group_by(orphan_day)
        )
    }
    return [
        DaySummary(d, *paid.get(d, (0, 0)), *started.get(d, (0, 0, 0)), orphans.get(d, 0))
        for d in period.each_day()
    ]


@dataclass(frozen=True)
class Overview:
    """Everything the takings page shows for one period, from two grouped passes over the
    payments (paid ones by the instant paid, started ones by status and code) and one over
    orphan money, instead of a query per figure."""

    summary: Summary
    #: (Nairobi day, count, KES) per day; or (hour, count, KES) per hour for a single day
    over_time: list[tuple[date, int, int]] | list[tuple[int, int, int]]
    by_till: list[tuple[str, int, int]]
    by_cashier: list[tuple[str | None, int, int]]
    failures: list[tuple[str | None, int]]


def _biggest_first(totals: dict, names: dict) -> list:  # noqa: ANN001 - id → (n, kes)
    rows = [(names.get(key), n, kes) for key, (n, kes) in totals.items()]
    return sorted(rows, key=lambda row: (-row[2], row[0] or ""))


def overview(period: Period, scope: Scope, *, max_days: int | None = None) -> Overview:
    """The takings page's figures; `over_time` is empty beyond `max_days` days."""
    hourly = period.single_day
    bucket = (nairobi_hour if hourly else nairobi_day)(Payment.final_at).label("bucket")
    paid_rows = db.session.execute(
        select(
            bucket, Payment.till_id, Payment.cashier_id, func.count(), func.sum(Payment.amount_kes)
        )
        .where(_paid_in(period, scope))
        .group_by(bucket, Payment.till_id, Payment.cashier_id)
    ).all()
    per_bucket: dict[object, list[int]] = {}
    per_till: dict[int, list[int]] = {}
    per_cashier: dict[int | None, list[int]] = {}
    for key, till_id, cashier_id, n, kes in paid_rows:
        key = int(key) if hourly else as_date(key)
        for table, k in ((per_bucket, key), (per_till, till_id), (per_cashier, cashier_id)):
            slot = table.setdefault(k, [0, 0])
            slot[0] += int(n)
            slot[1] += int(kes)
    started_rows = db.session.execute(
        select(Payment.status, Payment.result_code, func.count())
        .where(_started_in(period, scope))
        .group_by(Payment.status, Payment.result_code)
    ).all()
    counts: dict[str, int] = {}
    failures: dict[str | None, int] = {}
    for status, code, n in started_rows:
        counts[status] = counts.get(status, 0) + int(n)
        if status == Status.FAILED:
            failures[code] = failures.get(code, 0) + int(n)
    orphan_count, orphan_kes = db.session.execute(
        select(func.count(), func.coalesce(func.sum(RawCallback.amount), 0)).where(
            _orphans_in(period, scope)
        )
    ).one()
    summary = Summary(
        paid_count=sum(n for n, _ in per_till.values()),
        paid_kes=sum(kes for _, kes in per_till.values()),
        sent=sum(n for status, n in counts.items() if status != Status.REJECTED),
        sent_and_paid=counts.get(Status.PAID, 0),
        failed=counts.get(Status.FAILED, 0),
        unresolved=sum(counts.get(status, 0) for status in OPEN),
        orphan_count=int(orphan_count),
        orphan_kes=int(orphan_kes),
    )
    if hourly:
        over_time: list = [(h, *per_bucket.get(h, (0, 0))) for h in range(24)]
    elif max_days is None or period.days <= max_days:
        over_time = [(d, *per_bucket.get(d, (0, 0))) for d in period.each_day()]
    else:
        over_time = []
    till_names = {
        tid: name
        for tid, name in db.session.execute(select(Till.id, Till.name).where(Till.id.in_(per_till)))
    }
    ids = [i for i in per_cashier if i is not None]
    user_names = {
        uid: name
        for uid, name in db.session.execute(
            select(User.id, User.username).where(User.id.in_(ids))
        )
    } if ids else {}  # fmt: skip
    return Overview(
        summary=summary,
        over_time=over_time,
        by_till=_biggest_first(per_till, till_names),
        by_cashier=_biggest_first(per_cashier, user_names),
        failures=_most_first(failures),
    )
