"""The campaign builder's pure parts: the cost and time estimate, salon-local times, and the
[pricing] configuration they read."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from onboardd.config import ConfigError, load
from onboardd.domain.campaigns.builder import (
    LocalTimeError,
    Prices,
    Rates,
    duration_text,
    estimate,
    local_date_input,
    local_datetime,
    local_input,
    local_midnight,
)

ROOT = Path(__file__).resolve().parents[2]
PRICES = Prices(sms_paisa_per_segment=30, whatsapp_paisa_per_message=80)
RATES = Rates(whatsapp_per_s=80.0, sms_per_s=100.0)


def test_sms_is_messages_times_segments_times_price() -> None:
    e = estimate("sms", 1000, 2, PRICES, RATES)
    assert (e.sms_paisa, e.whatsapp_paisa) == (1000 * 2 * 30, 0)
    assert e.cost_paisa == e.upper_bound_paisa == 60_000
    assert e.seconds == 10.0  # 1000 messages at 100 a second


def test_whatsapp_is_per_message_whatever_the_segments() -> None:
    e = estimate("whatsapp", 1000, 3, PRICES, RATES)
    assert (e.whatsapp_paisa, e.sms_paisa) == (80_000, 0)
    assert e.cost_paisa == e.upper_bound_paisa == 80_000
    assert e.seconds == 12.5


def test_both_is_whatsapp_with_every_sms_fallback_as_the_upper_bound() -> None:
    e = estimate("both", 1000, 2, PRICES, RATES)
    assert e.cost_paisa == 80_000
    assert e.sms_paisa == 60_000
    assert e.upper_bound_paisa == 140_000
    assert e.seconds == 12.5  # at the WhatsApp rate
    assert e.prices == PRICES


def test_nobody_costs_nothing_and_bad_inputs_are_refused() -> None:
    assert estimate("both", 0, 1, PRICES, RATES).upper_bound_paisa == 0
    with pytest.raises(ValueError, match="channel"):
        estimate("telegram", 1, 1, PRICES, RATES)
    with pytest.raises(ValueError, match="segment"):
        estimate("sms", 1, 0, PRICES, RATES)
    with pytest.raises(ValueError, match="messages"):
        estimate("sms", -1, 1, PRICES, RATES)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "under a minute"), (59.9, "under a minute"), (60, "about 1 minute"),
    (61, "about 2 minutes"), (3600, "about 1 hour"), (3660, "about 1 hour 1 minute"),
    (7500, "about 2 hours 5 minutes"),
])
def test_duration_text(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_local_times_are_read_on_the_salon_clock() -> None:
    assert local_datetime("2030-01-15T09:30", "Asia/Kolkata") == datetime(2030, 1, 15, 4, 0,
                                                                           tzinfo=UTC)
    assert local_datetime("2030-07-01T09:00", "Europe/London") == datetime(2030, 7, 1, 8, 0,
                                                                            tzinfo=UTC)
    assert local_midnight("2030-01-15", "Asia/Kolkata") == datetime(2030, 1, 14, 18, 30,
                                                                    tzinfo=UTC)
    moment = datetime(2030, 1, 15, 4, 0, tzinfo=UTC)
    assert local_input(moment, "Asia/Kolkata") == "2030-01-15T09:30"
    assert local_date_input(datetime(2030, 1, 14, 19, 0, tzinfo=UTC), "Asia/Kolkata") == \
        "2030-01-15"


def test_bad_and_skipped_local_times_are_refused_in_words() -> None:
    with pytest.raises(LocalTimeError, match="date and time"):
        local_datetime("tomorrow", "Asia/Kolkata")
    with pytest.raises(LocalTimeError, match="without a zone"):
        local_datetime("2030-01-15T09:30+05:30", "Asia/Kolkata")
    with pytest.raises(LocalTimeError, match="does not exist in Europe/London"):
        local_datetime("2030-03-31T01:30", "Europe/London")  # the clocks skip 01:00-02:00
    with pytest.raises(LocalTimeError, match="give a date"):
        local_midnight("15/01/2030", "Asia/Kolkata")


@pytest.mark.parametrize(("read", "text", "timezone"), [
    (local_midnight, "0001-01-01", "Asia/Kolkata"),  # before year 1 in UTC
    (local_datetime, "0001-01-01T00:00", "Asia/Kolkata"),
    (local_datetime, "9999-12-31T23:59", "America/New_York"),  # after year 9999 in UTC
])
def test_dates_at_the_calendars_edge_are_refused_in_words(
        read: Callable[[str, str], datetime], text: str, timezone: str) -> None:
    with pytest.raises(LocalTimeError, match="too far in the past or the future: give a "
                                             "date such as 2026-05-01"):
        read(text, timezone)


def test_instants_at_the_calendars_edge_still_fill_the_inputs() -> None:
    """An instant the API took (importedAfter year 1) the salon's clock cannot show."""
    start = datetime(1, 1, 1, tzinfo=UTC)
    assert local_date_input(start, "America/New_York") == "0001-01-01"
    assert local_input(start, "America/New_York") == "0001-01-01T00:00"
    assert local_input(datetime(9999, 12, 31, 23, 0, tzinfo=UTC), "Asia/Kolkata") == \
        "9999-12-31T23:00"


def test_pricing_defaults_env_overrides_and_bad_values() -> None:
    cfg = load(ROOT / "onboardd.toml", {})
    assert (cfg.pricing.sms_paisa_per_segment, cfg.pricing.whatsapp_paisa_per_message) == (25,
                                                                                         100)
    cfg = load(None, {"ONBOARDD_PRICING_SMS_PAISA_PER_SEGMENT": "30"})
    assert cfg.pricing.sms_paisa_per_segment == 30
    for env, message in [
        ({"ONBOARDD_PRICING_SMS_PAISA_PER_SEGMENT": "-1"},
         "[pricing] sms_paisa_per_segment: must be 0 or more"),
        ({"ONBOARDD_PRICING_WHATSAPP_PAISA_PER_MESSAGE": "cheap"},
         "[pricing] whatsapp_paisa_per_message: Expected `int`"),
    ]:
        with pytest.raises(ConfigError) as info:
            load(None, env)
        assert message in str(info.value) and "\n" not in str(info.value)
    production = load(ROOT / "config" / "production.toml", {
        "ONBOARDD_DATABASE_URL": "postgresql://u:p@db/x",
        "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"})
    assert production.pricing.sms_paisa_per_segment >= 0
