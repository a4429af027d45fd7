"""Times are stored in UTC and shown in Africa/Nairobi; days are Nairobi days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NAIROBI = ZoneInfo("Africa/Nairobi")


def today_nairobi(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(NAIROBI).date()


def nairobi_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a Nairobi calendar day, as UTC instants."""
    start = datetime.combine(day, time.min, tzinfo=NAIROBI)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def to_nairobi(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(NAIROBI)
