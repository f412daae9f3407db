"""A salon's sending window (onboardd.domain.sending_hours): parsing, openness, next change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onboardd.config import ConfigError, load
from onboardd.domain.sending_hours import (
    DAY_S,
    FALLBACK_TIMEZONE,
    SendingHours,
    SendingHoursError,
    describe_start,
    is_open,
    next_closing,
    next_opening,
    parse_hours,
    zone,
)

KOLKATA = ZoneInfo("Asia/Kolkata")
# Zones with daylight saving of an hour, of half an hour (Lord Howe), odd offsets.
ZONES = ["Asia/Kolkata", "Europe/London", "America/New_York", "Australia/Lord_Howe",
         "Asia/Kathmandu", "Pacific/Chatham", "America/St_Johns", "Europe/Berlin", "UTC"]


def h(start: str, end: str) -> SendingHours:
    return parse_hours(start, end)


def ist(hour: int, minute: int = 0, second: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=KOLKATA)


def test_a_day_window_is_open_from_start_until_end() -> None:
    window = h("09:00", "21:00")
    assert not is_open(window, KOLKATA, ist(8, 59, 59))
    assert is_open(window, KOLKATA, ist(9))
    assert is_open(window, KOLKATA, ist(20, 59, 59))
    assert not is_open(window, KOLKATA, ist(21))


def test_a_window_across_midnight_is_open_late_and_early() -> None:
    window = h("20:00", "08:00")
    assert window.crosses_midnight
    assert is_open(window, KOLKATA, ist(23))
    assert is_open(window, KOLKATA, ist(0))
    assert is_open(window, KOLKATA, ist(7, 59, 59))
    assert not is_open(window, KOLKATA, ist(8))
    assert not is_open(window, KOLKATA, ist(12))
    assert is_open(window, KOLKATA, ist(20))


def test_all_day_and_midnight_ends() -> None:
    assert h("00:00", "24:00").all_day
    assert h("00:00", "00:00:01").end_s == 1
    assert h("22:00", "00:00") == h("22:00", "24:00")  # an end of 00:00 is midnight
    assert next_closing(h("00:00", "24:00"), KOLKATA, ist(3)) is None


@pytest.mark.parametrize(("start", "end", "field", "says"), [
    ("9:00", "21:00", "sendingWindow.start", "expected HH:MM"),
    ("09:00", "21", "sendingWindow.end", "expected HH:MM"),
    (9, "21:00", "sendingWindow.start", "expected HH:MM"),
    ("09:60", "21:00", "sendingWindow.start", "up to 59"),
    ("24:00", "08:00", "sendingWindow.start", "00:00 to 23:59"),
    ("09:00", "24:01", "sendingWindow.end", "24:00 for midnight"),
    ("09:00", "09:00", "sendingWindow.end", "needs a length"),
    ("00:00", "00:00", "sendingWindow.end", "start 00:00 and end 24:00"),
])
def test_bad_windows_name_the_field(start: object, end: object, field: str, says: str) -> None:
    with pytest.raises(SendingHoursError) as caught:
        parse_hours(start, end)
    assert caught.value.field == field
    assert str(caught.value).startswith(field + ": ") and says in str(caught.value)


def test_next_opening_and_closing_in_india() -> None:
    window = h("09:00", "21:00")
    assert next_opening(window, KOLKATA, ist(22)) == ist(9, day=3)
    assert next_opening(window, KOLKATA, ist(3)) == ist(9)
    assert next_opening(window, KOLKATA, ist(10)) == ist(10)  # open: now
    assert next_closing(window, KOLKATA, ist(10)) == ist(21)
    late = h("20:00", "08:00")
    assert next_closing(late, KOLKATA, ist(23)) == ist(8, day=3)
    assert next_opening(late, KOLKATA, ist(8)) == ist(20)


def test_the_sentence_says_when_sending_starts() -> None:
    window = h("09:00", "21:00")
    assert describe_start(window, KOLKATA, ist(10), "Asia/Kolkata") is None
    assert describe_start(window, KOLKATA, ist(22), "Asia/Kolkata") == (
        "Sending starts at 09:00 (salon time, Asia/Kolkata) tomorrow: outside the sending "
        "window 09:00-21:00.")
    assert "at 09:00 (salon time, Asia/Kolkata) today" in (
        describe_start(window, KOLKATA, ist(6), "Asia/Kolkata") or "")


def test_an_unknown_zone_is_read_as_the_fallback() -> None:
    assert zone("Mars/Olympus") == ZoneInfo(FALLBACK_TIMEZONE)
    assert zone("Europe/London") == ZoneInfo("Europe/London")


def test_daylight_saving_skip_opens_at_the_jump() -> None:
    # London, 2026-03-29: 01:00 GMT jumps to 02:00 BST. A window 01:30-03:00 opens at the jump.
    london = ZoneInfo("Europe/London")
    window = h("01:30", "03:00")
    before = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 00:30 GMT
    assert next_opening(window, london, before) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    # A window wholly inside the skipped hour does not open that day.
    skipped = h("01:10", "01:50")
    assert next_opening(skipped, london, before) == datetime(2026, 3, 30, 0, 10, tzinfo=UTC)


def test_daylight_saving_repeat_opens_twice() -> None:
    # London, 2026-10-25: 02:00 BST goes back to 01:00 GMT; 01:00-02:00 happens twice.
    london = ZoneInfo("Europe/London")
    window = h("01:30", "02:00")
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 01:30 BST
    assert next_opening(window, london, first - timedelta(minutes=5)) == first
    closed = next_closing(window, london, first)
    assert closed == datetime(2026, 10, 25, 1, 0, tzinfo=UTC)  # 02:00 BST -> 01:00 GMT
    assert next_opening(window, london, closed) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


times_of_day = st.integers(min_value=0, max_value=DAY_S // 60).map(lambda m: m * 60)


@st.composite
def windows(draw: st.DrawFn) -> SendingHours:
    start = draw(st.integers(min_value=0, max_value=DAY_S - 1))
    end = draw(st.integers(min_value=1, max_value=DAY_S).filter(lambda e: e != start))
    return SendingHours(start, end)


instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31),
                        timezones=st.just(UTC))


def _closed_throughout(window: SendingHours, tz: ZoneInfo, start: datetime, end: datetime,
                       want_open: bool) -> bool:
    """Sampled every minute and at the second before ``end``: the state is never
    ``want_open`` in [start, end)."""
    t = start
    while t < end:
        if is_open(window, tz, t) == want_open:
            return False
        t += timedelta(minutes=1)
    last = end - timedelta(seconds=1)
    return last < start or is_open(window, tz, last) != want_open


@settings(max_examples=300, deadline=None)
@given(windows(), st.sampled_from(ZONES), instants)
def test_next_opening_is_the_first_open_second(window: SendingHours, name: str,
                                               at: datetime) -> None:
    tz = ZoneInfo(name)
    opening = next_opening(window, tz, at)
    assert opening >= at and is_open(window, tz, opening)
    assert opening - at <= timedelta(days=2)
    assert _closed_throughout(window, tz, at, opening, want_open=True)


@settings(max_examples=300, deadline=None)
@given(windows(), st.sampled_from(ZONES), instants)
def test_next_closing_is_the_first_closed_second(window: SendingHours, name: str,
                                                 at: datetime) -> None:
    tz = ZoneInfo(name)
    closing = next_closing(window, tz, at)
    if window.all_day:
        assert closing is None
        return
    assert closing is not None and closing >= at and not is_open(window, tz, closing)
    assert _closed_throughout(window, tz, at, closing, want_open=False)


@given(windows(), st.integers(min_value=0, max_value=DAY_S - 1))
def test_open_at_matches_the_definition(window: SendingHours, tod: int) -> None:
    start, end = window.start_s, window.end_s
    inside = start <= tod < end if start < end else (tod >= start or tod < end)
    assert window.open_at(tod) == inside


@pytest.mark.parametrize(("env", "line"), [
    ({"ONBOARDD_CAMPAIGNS_SENDING_WINDOW_START": "9"},
     "[campaigns] sending_window_start: expected HH:MM"),
    ({"ONBOARDD_CAMPAIGNS_SENDING_WINDOW_END": "09:00"},
     "[campaigns] sending_window_end: equals start (09:00)"),
])
def test_a_bad_default_window_stops_start_up_naming_the_key(env: dict[str, str],
                                                           line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(None, env)
    assert str(caught.value).startswith(line)


def test_the_shipped_default_window_is_nine_to_nine() -> None:
    assert load(None, {}).campaigns.sending_hours() == h("09:00", "21:00")
