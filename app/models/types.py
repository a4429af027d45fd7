"""Column helpers shared by the models: UTC timestamps that stay aware on SQLite too."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite hands back naive values, so re-attach UTC on load."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite has no timezone type; store naive UTC so comparisons stay textual-consistent.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def db_now() -> datetime:
    """The database's clock, as an aware UTC instant.

    Decisions that compare a stored time with "now" (give up on a push, query it now) use
    this, and the times they compare are stamped with it: a scheduler on a host whose clock
    runs ahead of the web workers' must not give up on a push that is still in flight.
    SQLite runs inside our own process, so its clock is this host's (still read from SQLite,
    not from Python, so that a test can move Python's clock alone).
    """
    from sqlalchemy import func, select, text

    from app.extensions import db

    if db.engine.dialect.name == "postgresql":
        # statement_timestamp(), not now(): now() is frozen at the start of the transaction.
        value = db.session.execute(select(func.statement_timestamp())).scalar_one()
        return value.astimezone(UTC)
    stamp = db.session.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
