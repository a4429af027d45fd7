"""Times are stored in UTC and shown in Africa/Nairobi; days are Nairobi days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NAIROBI = ZoneInfo("Africa/Nairobi")
#: No payment of PesaDesk is older than this; it also keeps day arithmetic clear of year 1.
EARLIEST_DAY = date(2000, 1, 1)


def today_nairobi(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(NAIROBI).date()


def is_reportable_day(day: date, today: date) -> bool:
    """From EARLIEST_DAY to tomorrow (a day ahead of a slow clock, never more).

    A day outside cannot hold payments, and its bounds or its neighbours would overflow
    `date` (9999-12-31 has no next day, 0001-01-01 starts before UTC's year 1)."""
    return EARLIEST_DAY <= day <= today + timedelta(days=1)


def nairobi_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a Nairobi calendar day, as UTC instants."""
    start = datetime.combine(day, time.min, tzinfo=NAIROBI)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def to_nairobi(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(NAIROBI)
