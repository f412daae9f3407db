"""The analytics rules with no database: window, bucket, rates, funnel, curve, stage audience."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from onboardd.domain import analytics as rules
from onboardd.domain.campaigns.audience import (
    Audience,
    AudienceError,
    audience_params,
    check_audience,
)

NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)  # 2 Dec 01:30 in India


def test_default_window_is_the_last_90_days_ending_today_in_the_salon_timezone() -> None:
    win = rules.window(None, None, "Asia/Kolkata", NOW)
    assert (win.first_day, win.last_day, win.days) == (date(2026, 9, 4), date(2026, 12, 2), 90)
    assert rules.window(None, None, "UTC", NOW).last_day == date(2026, 12, 1)
    assert win.start == datetime(2026, 9, 4, tzinfo=ZoneInfo("Asia/Kolkata"))
    assert win.end - win.start == timedelta(days=90)


def test_to_alone_moves_the_default_from_with_it() -> None:
    win = rules.window(None, "2026-03-31", "UTC", NOW)
    assert (win.first_day, win.last_day) == (date(2026, 1, 1), date(2026, 3, 31))


def test_a_day_across_a_dst_change_is_23_hours_long() -> None:
    win = rules.window("2026-03-08", "2026-03-08", "America/New_York", NOW)
    # Same-zone datetimes subtract as wall clocks in Python; the instants are 23 h apart.
    assert win.end.astimezone(UTC) - win.start.astimezone(UTC) == timedelta(hours=23)


@pytest.mark.parametrize(("days", "bucket"), [(1, "day"), (92, "day"), (93, "week"),
                                              (731, "week")])
def test_bucket_is_day_up_to_92_days(days: int, bucket: str) -> None:
    first = date(2025, 1, 1)
    last = first + timedelta(days=days - 1)
    win = rules.window(first.isoformat(), last.isoformat(), "UTC", NOW)
    assert win.bucket == bucket
    assert win.first_bucket == (first if bucket == "day" else date(2024, 12, 30))


@pytest.mark.parametrize(("raw_from", "raw_to", "field"), [
    ("2026-1-01", None, "from"), ("01/02/2026", None, "from"), ("2026-02-29", None, "from"),
    (None, "2026-12-32", "to"), ("2026-06-02", "2026-06-01", "from"),
    ("2024-01-01", "2026-01-02", "from"),
])
def test_bad_window_names_the_parameter(raw_from: str | None, raw_to: str | None,
                                        field: str) -> None:
    with pytest.raises(rules.AnalyticsError) as caught:
        rules.window(raw_from, raw_to, "UTC", NOW)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_two_years_is_the_longest_range() -> None:
    assert rules.window("2024-01-01", "2025-12-31", "UTC", NOW).days == 731


def test_week_and_month_start_in_the_salon_timezone() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    # Tuesday 1 Dec 20:00 UTC is Wednesday 2 Dec in India: the week began Monday 30 Nov.
    assert rules.week_start(NOW, "Asia/Kolkata") == datetime(2026, 11, 30, tzinfo=kolkata)
    assert rules.month_start(NOW, "Asia/Kolkata") == datetime(2026, 12, 1, tzinfo=kolkata)
    late = datetime(2026, 11, 30, 19, 0, tzinfo=UTC)  # 1 Dec 00:30 in India
    assert rules.month_start(late, "Asia/Kolkata").month == 12
    assert rules.month_start(late, "UTC").month == 11


def test_rates_round_to_4_decimals_and_are_0_without_a_denominator() -> None:
    assert rules.rate(2, 3) == 0.6667
    assert rules.rate(0, 0) == 0.0
    assert rules.rate(5, 5) == 1.0
    assert rules.days_1dp(3.46875) == 3.5
    assert rules.days_1dp(None) is None


def test_funnel_rates_from_previous_and_from_imported() -> None:
    stages = rules.funnel([1000, 800, 720, 180, 90])
    assert [s.stage for s in stages] == ["imported", "invited", "delivered", "registered",
                                         "firstBooking"]
    assert [s.rate_from_previous for s in stages] == [1.0, 0.8, 0.9, 0.25, 0.5]
    assert [s.rate_from_imported for s in stages] == [1.0, 0.8, 0.72, 0.18, 0.09]
    assert [s.rate_from_previous for s in rules.funnel([0, 0, 0, 0, 0])] == [0.0] * 5
    with pytest.raises(ValueError, match="5 counts"):
        rules.funnel([1, 2])


def test_conversion_curve_is_cumulative_and_ignores_late_registrations() -> None:
    curve = rules.conversion_curve(5, [(0, 1), (1, 1), (11, 1), (45, 1)])
    assert len(curve) == 31
    assert [p.registered for p in curve[:12]] == [1] + [2] * 10 + [3]
    assert curve[-1].registered == 3 and curve[-1].share == 0.6
    assert all(p.share == 0 for p in rules.conversion_curve(0, []))


def test_a_stage_audience_is_checked_and_numbered_for_sql() -> None:
    audience = check_audience(Audience(status=["invited", "invited"], campaign_id="c1",
                                       funnel_stage="delivered", min_days_since_invite=7))
    params = audience_params(audience)
    assert params.args() == (["invited"], None, None, "c1", 2, 7)


@pytest.mark.parametrize(("audience", "field"), [
    (Audience(funnel_stage="registered"), "audience.funnelStage"),
    (Audience(funnel_stage="firstBooking"), "audience.funnelStage"),
    (Audience(funnel_stage="opened"), "audience.funnelStage"),
    (Audience(min_days_since_invite=-1), "audience.minDaysSinceInvite"),
    (Audience(min_days_since_invite=366), "audience.minDaysSinceInvite"),
    (Audience(campaign_id=" "), "audience.campaignId"),
])
def test_a_wrong_stage_audience_names_the_field(audience: Audience, field: str) -> None:
    with pytest.raises(AudienceError) as caught:
        check_audience(audience)
    assert caught.value.field == field


def test_bucket_dates_cover_the_window_by_day_or_by_monday() -> None:
    bucket_dates = rules.bucket_dates
    assert bucket_dates(date(2024, 5, 30), date(2024, 6, 2), "day") == [
        date(2024, 5, 30), date(2024, 5, 31), date(2024, 6, 1), date(2024, 6, 2)]
    assert bucket_dates(date(2024, 5, 27), date(2024, 6, 11), "week") == [
        date(2024, 5, 27), date(2024, 6, 3), date(2024, 6, 10)]
    assert bucket_dates(date(2024, 6, 2), date(2024, 6, 1), "day") == []
