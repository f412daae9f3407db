"""The time window of a salon's PII access log query: `from` and `to` as dates (whole days in the
salon's timezone, both included) or as instants (ISO 8601 with a UTC offset; `to` excluded)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

# Without `from`, the window is the 30 days before `to`.
DEFAULT_DAYS: Final = 30
_DATE_CHARS: Final = 10
_MAX_CHARS: Final = 40
# Years a bound may name (far enough for any log, near enough that no arithmetic overflows).
_YEARS: Final = range(1900, 9000)


class BadParameter(ValueError):
    """A query parameter that cannot be read: which one, and how to write it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.reason = message


Bound = date | datetime


def parse_bound(parameter: str, raw: str) -> Bound:
    """A date (YYYY-MM-DD) or an instant with its UTC offset (2026-11-30T18:00:00+05:30,
    2026-11-30T12:30:00Z)."""
    hint = ("use a date (YYYY-MM-DD, e.g. 2026-11-30) or a time with its UTC offset "
            "(e.g. 2026-11-30T18:00:00+05:30 or 2026-11-30T12:30:00Z)")
    if len(raw) > _MAX_CHARS or not raw.isascii():
        raise BadParameter(parameter, f"not a date or time; {hint}")
    try:
        value: Bound = (date.fromisoformat(raw) if len(raw) == _DATE_CHARS
                        else datetime.fromisoformat(raw))
    except ValueError:
        raise BadParameter(parameter, f"'{raw}' is not a date or time; {hint}") from None
    if value.year not in _YEARS:
        raise BadParameter(parameter, f"'{raw}' is out of range: give a year from "
                           f"{_YEARS.start} to {_YEARS.stop - 1}")
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        raise BadParameter(parameter, f"'{raw}' has no UTC offset, so the moment it names "
                           f"depends on where it is read; {hint}")
    return value


def window(raw_from: Bound | None, raw_to: Bound | None, timezone: str,
           now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the query: dates cover whole days in the salon's timezone (`to`
    included); `to` defaults to now, `from` to DEFAULT_DAYS days before `to`."""
    zone = ZoneInfo(timezone)
    if raw_to is None:
        end = now
    elif isinstance(raw_to, datetime):
        end = raw_to
    else:
        end = datetime.combine(raw_to + timedelta(days=1), time(0), zone)
    if raw_from is None:
        start = end - timedelta(days=DEFAULT_DAYS)
    elif isinstance(raw_from, datetime):
        start = raw_from
    else:
        start = datetime.combine(raw_from, time(0), zone)
    if start >= end:
        raise BadParameter("from", f"{start.isoformat()} is not before to ({end.isoformat()}); "
                           "give from before to")
    return start, end
