"""Analytics rules with no I/O: the reporting window in a salon's timezone, the series bucket,
rates and averages as the API states them, the funnel and the conversion curve from counts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

import msgspec

from onboardd.domain.campaigns.audience import FUNNEL_STAGES

DEFAULT_DAYS: Final = 90
MAX_DAYS: Final = 731  # two years, a leap day included
DAY_BUCKET_MAX_DAYS: Final = 92  # longer ranges are reported by ISO week
CURVE_DAYS: Final = 30
RATE_DECIMALS: Final = 4

Bucket = Literal["day", "week"]


class AnalyticsError(ValueError):
    """A query parameter that cannot be used; names it and says the fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Window(msgspec.Struct, frozen=True):
    """The reporting range: whole days from..to (inclusive) in the salon's timezone."""

    first_day: date
    last_day: date
    timezone: str

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def start(self) -> datetime:
        """The first moment of first_day in the salon's timezone."""
        return datetime.combine(self.first_day, time(0), ZoneInfo(self.timezone))

    @property
    def end(self) -> datetime:
        """The first moment after last_day (exclusive end)."""
        return datetime.combine(self.last_day + timedelta(days=1), time(0),
                                ZoneInfo(self.timezone))

    @property
    def bucket(self) -> Bucket:
        return "day" if self.days <= DAY_BUCKET_MAX_DAYS else "week"

    @property
    def first_bucket(self) -> date:
        """The date of the first series point: first_day, or the Monday of its week."""
        if self.bucket == "day":
            return self.first_day
        return self.first_day - timedelta(days=self.first_day.weekday())


def bucket_dates(first: date, last: date, bucket: Bucket) -> list[date]:
    """The dates of the series points from `first` to `last`: every day, or every 7th."""
    step = timedelta(days=1 if bucket == "day" else 7)
    dates = []
    day = first
    while day <= last:
        dates.append(day)
        day += step
    return dates


def _parse_day(field: str, raw: str) -> date:
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise AnalyticsError(field, f"'{raw}' is not a date; use YYYY-MM-DD, "
                             "e.g. 2026-11-30") from None


def window(raw_from: str | None, raw_to: str | None, timezone: str, now: datetime) -> Window:
    """The window from the query's from/to (either may be missing): to defaults to today in the
    salon's timezone, from to DEFAULT_DAYS days ending on to."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    last = _parse_day("to", raw_to) if raw_to else today
    first = (_parse_day("from", raw_from) if raw_from
             else last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise AnalyticsError("from", f"{first.isoformat()} is after to ({last.isoformat()}); "
                             "give from on or before to")
    days = (last - first).days + 1
    if days > MAX_DAYS:
        raise AnalyticsError("from", f"the range is {days} days; at most {MAX_DAYS} (two years) "
                             "can be reported at once: move from closer to to")
    return Window(first, last, timezone)


def week_start(now: datetime, timezone: str) -> datetime:
    """The first moment of the current ISO week (Monday) in the salon's timezone."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    return datetime.combine(today - timedelta(days=today.weekday()), time(0), ZoneInfo(timezone))


def month_start(now: datetime, timezone: str) -> datetime:
    """The first moment of the current calendar month in the salon's timezone."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    return datetime.combine(today.replace(day=1), time(0), ZoneInfo(timezone))


def rate(part: int, whole: int) -> float:
    """part / whole as a fraction rounded to 4 decimals; 0 when whole is 0."""
    return round(part / whole, RATE_DECIMALS) if whole else 0.0


def days_1dp(value: float | None) -> float | None:
    """A mean number of days to 1 decimal (None stays None)."""
    return None if value is None else round(value, 1)


class FunnelStage(msgspec.Struct, frozen=True, rename="camel"):
    """One funnel stage: how many customers reached it, and the share of the previous stage
    and of the imported ones."""

    stage: str
    count: int
    rate_from_previous: float
    rate_from_imported: float


def funnel(reached: Sequence[int]) -> list[FunnelStage]:
    """The funnel from the number of customers that reached each stage (imported first)."""
    if len(reached) != len(FUNNEL_STAGES):
        raise ValueError(f"need {len(FUNNEL_STAGES)} counts, got {len(reached)}")
    imported = reached[0]
    out: list[FunnelStage] = []
    for i, (stage, count) in enumerate(zip(FUNNEL_STAGES, reached, strict=True)):
        previous = reached[i - 1] if i else count
        out.append(FunnelStage(stage, count, rate(count, previous), rate(count, imported)))
    return out


class CurvePoint(msgspec.Struct, frozen=True, rename="camel"):
    """By day N after their message, how many delivered customers had registered, and share."""

    day: int
    registered: int
    share: float


def conversion_curve(delivered: int, registered_on_day: Iterable[tuple[int, int]]
                     ) -> list[CurvePoint]:
    """The cumulative curve for days 0..CURVE_DAYS from (day, registrations that day) pairs;
    registrations after CURVE_DAYS are not on the curve."""
    per_day = [0] * (CURVE_DAYS + 1)
    for day, n in registered_on_day:
        if 0 <= day <= CURVE_DAYS:
            per_day[day] += n
    points: list[CurvePoint] = []
    total = 0
    for day, n in enumerate(per_day):
        total += n
        points.append(CurvePoint(day, total, rate(total, delivered)))
    return points
