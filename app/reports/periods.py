"""Ranges of Nairobi days for the owner's pages, and SQL that buckets UTC times by Nairobi day."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Date, Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from app.i18n import N_
from app.timeutil import EARLIEST_DAY, nairobi_day_bounds

#: Charts and day-by-day tables cover at most this many days (a leap year).
MAX_CHART_DAYS = 366


class Preset(enum.StrEnum):
    TODAY = "today"
    YESTERDAY = "yesterday"
    LAST_7_DAYS = "7d"
    THIS_MONTH = "month"
    RANGE = "range"


#: English msgids for the preset buttons
PRESET_LABELS = {
    Preset.TODAY: N_("Today"),
    Preset.YESTERDAY: N_("Yesterday"),
    Preset.LAST_7_DAYS: N_("Last 7 days"),
    Preset.THIS_MONTH: N_("This month"),
}


@dataclass(frozen=True)
class Period:
    """Nairobi days from `start` to `end`, both included."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def single_day(self) -> bool:
        return self.start == self.end

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[first instant, instant after the last day) in UTC."""
        return nairobi_day_bounds(self.start)[0], nairobi_day_bounds(self.end)[1]

    def previous(self) -> Period:
        """The period of the same length just before this one (for "compared with")."""
        length = timedelta(days=self.days)
        start = max(self.start - length, EARLIEST_DAY)
        return Period(start, max(self.start - timedelta(days=1), start))

    def each_day(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]


def preset_period(preset: Preset, today: date) -> Period:
    if preset is Preset.YESTERDAY:
        day = today - timedelta(days=1)
        return Period(day, day)
    if preset is Preset.LAST_7_DAYS:
        return Period(today - timedelta(days=6), today)
    if preset is Preset.THIS_MONTH:
        return Period(today.replace(day=1), today)
    return Period(today, today)


_NOT_A_DATE = N_("“%(value)s” is not a date; showing today.")
_END_BEFORE_START = N_("The end date is before the start date; showing today.")
_OUT_OF_RANGE = N_("Choose days from %(earliest)s to today; showing today.")


@dataclass(frozen=True)
class Choice:
    """What the owner asked for, as understood: the period, the preset, and any complaint."""

    period: Period
    preset: Preset
    #: an English msgid and its parameters, when the request could not be honoured
    error: tuple[str, dict[str, str]] | None = None


def _day(text: str) -> date:
    return date.fromisoformat(text.strip())


def choose_period(args: Mapping[str, str], today: date) -> Choice:
    """Read `range` (a preset) or `from`/`to` (ISO dates) from a query string; never raises."""
    raw_from, raw_to = (args.get("from") or "").strip(), (args.get("to") or "").strip()
    if not raw_from and not raw_to:
        try:
            preset = Preset(args.get("range") or Preset.TODAY)
        except ValueError:
            preset = Preset.TODAY
        if preset is Preset.RANGE:
            preset = Preset.TODAY
        return Choice(preset_period(preset, today), preset)
    fallback = Period(today, today)
    try:
        start = _day(raw_from) if raw_from else None
        end = _day(raw_to) if raw_to else None
    except ValueError:
        bad = raw_from if not _parses(raw_from) else raw_to
        return Choice(fallback, Preset.TODAY, (_NOT_A_DATE, {"value": bad[:40]}))
    start = start or end
    end = end or start
    assert start is not None and end is not None  # one of them was given
    if not (EARLIEST_DAY <= start <= today + timedelta(days=1)) or not (
        EARLIEST_DAY <= end <= today + timedelta(days=1)
    ):
        return Choice(fallback, Preset.TODAY, (_OUT_OF_RANGE, {"earliest": str(EARLIEST_DAY)}))
    if end < start:
        return Choice(fallback, Preset.TODAY, (_END_BEFORE_START, {}))
    period = Period(start, end)
    for preset in (Preset.TODAY, Preset.YESTERDAY, Preset.LAST_7_DAYS, Preset.THIS_MONTH):
        if preset_period(preset, today) == period:
            return Choice(period, preset)
    return Choice(period, Preset.RANGE)


def _parses(text: str) -> bool:
    if not text:
        return True
    try:
        _day(text)
    except ValueError:
        return False
    return True


# --- Nairobi days and hours in SQL -----------------------------------------------------------
# Africa/Nairobi has been UTC+3 without daylight saving since 1942 (EARLIEST_DAY is 2000), so
# SQLite can shift by three hours; PostgreSQL is told the zone by name.


class nairobi_day(FunctionElement):  # noqa: N801 - used like a SQL function
    """The Nairobi calendar day of a UTC timestamp column."""

    type = Date()
    inherit_cache = True


class nairobi_hour(FunctionElement):  # noqa: N801 - used like a SQL function
    """The Nairobi hour (0–23) of a UTC timestamp column."""

    type = Integer()
    inherit_cache = True


@compiles(nairobi_day, "postgresql")
def _pg_day(element, compiler, **kw) -> str:  # noqa: ANN001
    return (
        f"CAST(({compiler.process(element.clauses, **kw)} AT TIME ZONE 'Africa/Nairobi') AS DATE)"
    )


@compiles(nairobi_day, "sqlite")
def _sqlite_day(element, compiler, **kw) -> str:  # noqa: ANN001
    return f"date({compiler.process(element.clauses, **kw)}, '+3 hours')"


@compiles(nairobi_hour, "postgresql")
def _pg_hour(element, compiler, **kw) -> str:  # noqa: ANN001
    column = compiler.process(element.clauses, **kw)
    return f"CAST(EXTRACT(HOUR FROM ({column} AT TIME ZONE 'Africa/Nairobi')) AS INTEGER)"


@compiles(nairobi_hour, "sqlite")
def _sqlite_hour(element, compiler, **kw) -> str:  # noqa: ANN001
    return f"CAST(strftime('%H', {compiler.process(element.clauses, **kw)}, '+3 hours') AS INTEGER)"


def as_date(value: object) -> date:
    """A day as the database hands it back (SQLite: text)."""
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
