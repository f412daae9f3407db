"""A salon's sending window ("quiet hours"): when invitations may go out (pure: no I/O).

Times of day are seconds after the salon's local midnight, 0 to 86400 (24:00). The window is
the half-open ``[start, end)`` of local wall-clock time, on every day:

* ``start < end``: open from start until end (09:00-21:00);
* ``start > end``: it crosses midnight, open from start until midnight and from midnight
  until end (20:00-08:00 is open at 23:00 and at 07:59, closed at 08:00 and at 12:00);
* ``start == end`` is refused: a window has a length. ``00:00-24:00`` is open all day, and an
  end of ``00:00`` means midnight (``24:00``).

Wall-clock time is read for each instant in the salon's zone, so across a daylight-saving
change the window follows the local clock: on a day the clock skips an hour the window may
open at the jump; on a day an hour repeats, a window inside it opens twice.

The dispatcher's claim decides openness in SQL (``onboardd_sending_open``, migration 0017);
tests hold the two to the same answers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_S: Final = 86_400
# A salon whose timezone is not a known IANA name is read in this one (the salons table's own
# default); the settings endpoint says so.
FALLBACK_TIMEZONE: Final = "Asia/Kolkata"
# Enough to step over every offset change next_change can meet (at most a few a day).
_MAX_STEPS: Final = 16

_TIME_RE = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")


class SendingHoursError(ValueError):
    """One field is wrong; the message names it and the fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class SendingHours:
    """A daily window ``[start_s, end_s)`` of local time; see the module's rules."""

    start_s: int
    end_s: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_s < DAY_S:
            raise ValueError(f"start_s {self.start_s} is not in [0, {DAY_S})")
        if not 0 < self.end_s <= DAY_S:
            raise ValueError(f"end_s {self.end_s} is not in (0, {DAY_S}]")
        if self.start_s == self.end_s:
            raise ValueError("start_s equals end_s: a window has a length")

    @property
    def all_day(self) -> bool:
        """Open at every moment."""
        return self.start_s == 0 and self.end_s == DAY_S

    @property
    def crosses_midnight(self) -> bool:
        """Open from start until midnight and on from midnight until end."""
        return self.start_s > self.end_s

    def open_at(self, time_of_day_s: float) -> bool:
        """Whether a local time of day (seconds after midnight) is inside the window."""
        if self.crosses_midnight:
            return time_of_day_s >= self.start_s or time_of_day_s < self.end_s
        return self.start_s <= time_of_day_s < self.end_s

    def label(self) -> str:
        """``09:00-21:00`` (seconds only when set)."""
        return f"{format_time(self.start_s)}-{format_time(self.end_s)}"


def format_time(seconds: int) -> str:
    """``HH:MM``, or ``HH:MM:SS`` when the seconds are not zero; 86400 is ``24:00``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def parse_time(raw: object, field: str, *, is_end: bool) -> int:
    """``HH:MM`` (or ``HH:MM:SS``) as seconds after midnight; ``24:00`` only as an end, and an
    end of ``00:00`` means ``24:00``. SendingHoursError names ``field`` otherwise."""
    text = raw.strip() if isinstance(raw, str) else None
    match = _TIME_RE.match(text) if text is not None else None
    if match is None:
        raise SendingHoursError(field, f"expected HH:MM (24-hour, e.g. "
                                f"{'21:00' if is_end else '09:00'}), got {raw!r}")
    hours, minutes, secs = int(match[1]), int(match[2]), int(match[3] or 0)
    if minutes > 59 or secs > 59:
        raise SendingHoursError(field, f"{text!r} is not a time: minutes and seconds go "
                                "up to 59")
    total = hours * 3600 + minutes * 60 + secs
    if total == DAY_S and is_end:
        return DAY_S
    if total >= DAY_S:
        raise SendingHoursError(field, f"{text!r} is not a time of day: use 00:00 to 23:59"
                                + (", or 24:00 for midnight" if is_end else ""))
    return DAY_S if is_end and total == 0 else total


def parse_hours(start: object, end: object, prefix: str = "sendingWindow") -> SendingHours:
    """A window from its two texts; SendingHoursError naming ``prefix.start`` / ``prefix.end``."""
    start_s = parse_time(start, f"{prefix}.start", is_end=False)
    end_s = parse_time(end, f"{prefix}.end", is_end=True)
    # 00:00-00:00 is refused like 09:00-09:00; 00:00-24:00 is the whole day.
    if start_s == end_s or (start_s == 0 and str(end).strip() in ("00:00", "00:00:00")):
        raise SendingHoursError(f"{prefix}.end", f"equals start ({format_time(start_s)}): a "
                                "window needs a length; to send at any hour use start 00:00 "
                                "and end 24:00")
    return SendingHours(start_s, end_s)


def zone(name: str) -> ZoneInfo:
    """The salon's zone; an unknown name is read as FALLBACK_TIMEZONE."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(FALLBACK_TIMEZONE)


def known_zone(name: str) -> bool:
    """Whether ``name`` is an IANA zone this process knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _time_of_day(tz: ZoneInfo, at: datetime) -> float:
    local = at.astimezone(tz)
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


def is_open(hours: SendingHours, tz: ZoneInfo, at: datetime) -> bool:
    """Whether the window is open at the instant ``at`` (aware)."""
    return hours.all_day or hours.open_at(_time_of_day(tz, at))


def _offset(tz: ZoneInfo, ts: int) -> timedelta | None:
    return datetime.fromtimestamp(ts, tz).utcoffset()


def _next_change(hours: SendingHours, tz: ZoneInfo, at: datetime, *, want_open: bool
                 ) -> datetime:
    """The first instant at or after ``at`` (to the second) at which openness is ``want_open``.

    Between offset changes local time runs with the clock, so the answer is the next local
    ``start`` (or ``end``); an offset change on the way is found by bisection and the search
    starts again from it (the window may open or close at the jump itself)."""
    if is_open(hours, tz, at) == want_open:
        return at
    boundary = (hours.start_s if want_open else hours.end_s) % DAY_S
    t = math.ceil(at.timestamp())
    for _ in range(_MAX_STEPS):
        when = datetime.fromtimestamp(t, UTC)
        if is_open(hours, tz, when) == want_open:
            return when
        local = when.astimezone(tz)
        tod = local.hour * 3600 + local.minute * 60 + local.second
        candidate = t + ((boundary - tod) % DAY_S or DAY_S)
        before = _offset(tz, t)
        if _offset(tz, candidate) == before:
            t = candidate
            continue
        low, high = t, candidate  # offset(low) == before != offset(high)
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (mid, high) if _offset(tz, mid) == before else (low, mid)
        t = high
    raise ValueError(f"no change of the window {hours.label()} found after {at.isoformat()}")


def next_opening(hours: SendingHours, tz: ZoneInfo, at: datetime) -> datetime:
    """When sending can happen, at or after ``at``: ``at`` itself while the window is open,
    else the first second it is open."""
    return _next_change(hours, tz, at, want_open=True)


def next_closing(hours: SendingHours, tz: ZoneInfo, at: datetime) -> datetime | None:
    """When an open window next closes (``at`` when closed now); None when open all day."""
    if hours.all_day:
        return None
    return _next_change(hours, tz, at, want_open=False)


def clock_and_day(at: datetime, tz: ZoneInfo, now: datetime) -> tuple[str, str]:
    """``at`` on the salon's clock, and its day named from ``now``: ('09:00', 'tomorrow'),
    ('21:00', 'today') or ('09:00', 'on 2026-12-05'); seconds only when set."""
    local_now, local_at = now.astimezone(tz), at.astimezone(tz)
    days = (local_at.date() - local_now.date()).days
    day = {0: "today", 1: "tomorrow"}.get(days, f"on {local_at.date().isoformat()}")
    return local_at.strftime("%H:%M" if local_at.second == 0 else "%H:%M:%S"), day


def describe_start(hours: SendingHours, tz: ZoneInfo, at: datetime, timezone_name: str,
                   now: datetime | None = None) -> str | None:
    """A sentence for a salon admin about when sending from ``at`` on actually starts: None
    when the window is open then, else e.g. 'Sending starts at 09:00 (salon time,
    Asia/Kolkata) tomorrow: outside the sending window 09:00-21:00.' The day is named from
    ``now`` (default: ``at``)."""
    opening = next_opening(hours, tz, at)
    if opening == at:
        return None
    clock, day = clock_and_day(opening, tz, now or at)
    return (f"Sending starts at {clock} (salon time, {timezone_name}) {day}: outside the "
            f"sending window {hours.label()}.")
