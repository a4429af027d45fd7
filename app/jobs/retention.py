"""Retention: stored raw callbacks are kept PESADESK_CALLBACK_RETENTION_DAYS (400 by default),
long enough for a year's disputes and audits, then deleted in small batches."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update

from app.extensions import db
from app.models import PaymentEvent, RawCallback
from app.models.types import db_now

BATCH = 1000


def purge_callbacks(now: datetime | None = None) -> dict[str, int]:
    """Delete raw callbacks older than the retention period. A payment's timeline keeps its
    events (what each callback said is in the event's data); only the link to the raw body
    goes."""
    days = current_app.config["CALLBACK_RETENTION_DAYS"]
    if days <= 0:
        return {"deleted": 0}
    cutoff = (now or db_now()) - timedelta(days=days)
    deleted = 0
    while True:
        ids = (
            db.session.execute(
                select(RawCallback.id).where(RawCallback.received_at < cutoff).limit(BATCH)
            )
            .scalars()
            .all()
        )
        if not ids:
            break
        db.session.execute(
            update(PaymentEvent)
            .where(PaymentEvent.raw_callback_id.in_(ids))
            .values(raw_callback_id=None)
            .execution_options(synchronize_session=False)
        )
        db.session.execute(
            delete(RawCallback)
            .where(RawCallback.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        deleted += len(ids)
    return {"deleted": deleted}
