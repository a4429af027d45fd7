"""The day close (Z report): a till's or a shop's Nairobi day, closed once, then only adjusted.

Paid sales count on the day they were paid (as in takings); the status breakdown and the rows
still open are the sales started that day. Closing is refused while a started sale is not
final, unless each such row gets a written explanation. After closing, the stored figures
never change; whatever moved later is listed as a post-close adjustment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.i18n import N_
from app.models import Payment, PaymentEvent, Shop, Till, User
from app.models.close import DayClose
from app.payments.states import OPEN, Status
from app.reports import takings
from app.reports.periods import Period
from app.reports.takings import Scope

#: the longest explanation kept for one open row
EXPLANATION_MAX = 200


class CloseError(ValueError):
    """A close that cannot be done; `msgid` and `params` say why, in the reader's language."""

    def __init__(self, msgid: str, **params: object) -> None:
        super().__init__(msgid % params if params else msgid)
        self.msgid, self.params = msgid, params


@dataclass(frozen=True)
class Where:
    """A Z report's scope: exactly one till or one shop."""

    till: Till | None = None
    shop: Shop | None = None

    @property
    def key(self) -> str:
        return f"till:{self.till.id}" if self.till else f"shop:{self.shop.id}"  # type: ignore[union-attr]

    @property
    def name(self) -> str:
        return self.till.name if self.till else self.shop.name  # type: ignore[union-attr]

    def args(self) -> dict[str, int]:
        """The query-string arguments that name this scope (?till= or ?shop=)."""
        return {"till": self.till.id} if self.till else {"shop": self.shop.id}  # type: ignore[union-attr]

    def scope(self) -> Scope:
        return Scope(till_id=self.till.id) if self.till else Scope(shop_id=self.shop.id)  # type: ignore[union-attr]


@dataclass(frozen=True)
class ZReport:
    day: date
    where: Where
    summary: takings.Summary
    #: status → (count, KES) of the sales started that day
    by_status: dict[str, tuple[int, int]]
    #: (cashier or None, paid count, KES) of the sales paid that day
    by_cashier: list[tuple[str | None, int, int]]
    #: sales started that day that are not final yet
    open_rows: list[Payment]

    def as_figures(self) -> dict[str, object]:
        """What is stored at closing (JSON)."""
        s = self.summary
        return {
            "paid_count": s.paid_count,
            "paid_kes": s.paid_kes,
            "sent": s.sent,
            "failed": s.failed,
            "unresolved": s.unresolved,
            "orphan_count": s.orphan_count,
            "orphan_kes": s.orphan_kes,
            "by_status": {k: list(v) for k, v in self.by_status.items()},
            "by_cashier": [[name, n, kes] for name, n, kes in self.by_cashier],
            "open_rows": [
                {"id": p.id, "status": p.status, "amount_kes": p.amount_kes} for p in self.open_rows
            ],
        }


def build(day: date, where: Where) -> ZReport:
    period, scope = Period(day, day), where.scope()
    start, end = period.utc_bounds()
    started = (Payment.created_at >= start, Payment.created_at < end, scope.payments())
    by_status = {
        status: (int(n), int(kes))
        for status, n, kes in db.session.execute(
            select(Payment.status, func.count(), func.coalesce(func.sum(Payment.amount_kes), 0))
            .where(*started)
            .group_by(Payment.status)
        )
    }
    open_rows = list(
        db.session.execute(
            select(Payment)
            .options(joinedload(Payment.cashier))
            .where(*started, Payment.status.in_(OPEN))
            .order_by(Payment.created_at, Payment.id)
        ).scalars()
    )
    view = takings.overview(period, scope)
    return ZReport(
        day=day,
        where=where,
        summary=view.summary,
        by_status=dict(sorted(by_status.items())),
        by_cashier=view.by_cashier,
        open_rows=open_rows,
    )


def closed(day: date, where: Where) -> DayClose | None:
    return db.session.execute(
        select(DayClose).where(DayClose.scope == where.key, DayClose.day == day)
    ).scalar_one_or_none()


def close_day(report: ZReport, user: User, explanations: dict[int, str]) -> DayClose:
    """Close the day; refused if already closed, or if an open row has no explanation."""
    if closed(report.day, report.where) is not None:
        raise CloseError(N_("This day is already closed."))
    kept: dict[str, str] = {}
    missing = []
    for p in report.open_rows:
        text = " ".join((explanations.get(p.id) or "").split())[:EXPLANATION_MAX]
        if text:
            kept[str(p.id)] = text
        else:
            missing.append(p.id)
    if missing:
        raise CloseError(
            N_(
                "%(count)s sales are not final yet. Wait for them, or write for each what you "
                "know about it (for example: customer paid cash)."
            ),
            count=len(missing),
        )
    record = DayClose(
        scope=report.where.key,
        till_id=report.where.till.id if report.where.till else None,
        shop_id=report.where.shop.id if report.where.shop else None,
        day=report.day,
        closed_by_id=user.id,
        figures=report.as_figures(),
        explanations=kept,
    )
    db.session.add(record)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise CloseError(N_("This day is already closed.")) from None
    return record


@dataclass(frozen=True)
class Adjustment:
    payment: Payment
    #: the events recorded after the day was closed, oldest first
    events: list[PaymentEvent]


def adjustments(record: DayClose, where: Where) -> list[Adjustment]:
    """Sales of that day (started or paid then) that changed after it was closed."""
    start, end = Period(record.day, record.day).utc_bounds()
    of_the_day = or_(
        (Payment.created_at >= start) & (Payment.created_at < end),
        (Payment.status == Status.PAID) & (Payment.final_at >= start) & (Payment.final_at < end),
    )
    late = (
        select(PaymentEvent)
        .join(Payment, Payment.id == PaymentEvent.payment_id)
        .options(joinedload(PaymentEvent.payment))
        .where(of_the_day, where.scope().payments(), PaymentEvent.created_at > record.closed_at)
        .order_by(PaymentEvent.payment_id, PaymentEvent.created_at, PaymentEvent.id)
    )
    grouped: dict[int, Adjustment] = {}
    for event in db.session.execute(late).scalars():
        grouped.setdefault(event.payment_id, Adjustment(event.payment, [])).events.append(event)
    return list(grouped.values())
