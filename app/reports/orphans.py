"""Orphan money: successful callbacks that matched no sale, listed so no shilling is invisible."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import CallbackOutcome, RawCallback
from app.reports.periods import Period
from app.reports.takings import Scope

#: most rows a page shows (orphans are rare; more than this is a fault to fix, not to page)
LIST_LIMIT = 500


def received_not_linked(period: Period, scope: Scope) -> list[RawCallback]:
    """Successful callbacks of the period that no payment claims, newest first."""
    start, end = period.utc_bounds()
    return list(
        db.session.execute(
            select(RawCallback)
            .options(joinedload(RawCallback.till))
            .where(
                RawCallback.outcome == CallbackOutcome.ORPHAN,
                RawCallback.result_code == "0",
                RawCallback.received_at >= start,
                RawCallback.received_at < end,
                scope.callbacks(),
            )
            .order_by(RawCallback.received_at.desc(), RawCallback.id.desc())
            .limit(LIST_LIMIT)
        ).scalars()
    )
