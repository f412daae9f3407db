"""The campaign builder's pure parts: what sending an audience will cost and how long it takes,
and the salon-local times an admin types (a date, or a date and time) as UTC instants."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

CHANNELS: Final = ("whatsapp", "sms", "both")


class Prices(msgspec.Struct, frozen=True):
    """Price of one SMS segment and of one WhatsApp message, in paisa."""

    sms_paisa_per_segment: int
    whatsapp_paisa_per_message: int


class Rates(msgspec.Struct, frozen=True):
    """Messages per second the dispatcher sends on each channel (per sender)."""

    whatsapp_per_s: float
    sms_per_s: float


class Estimate(msgspec.Struct, frozen=True):
    """Cost and duration of sending one message to each of ``messages`` customers.

    ``cost_paisa`` is the expected cost; ``upper_bound_paisa`` differs from it only for
    ``both``: WhatsApp for everybody plus an SMS for everybody (every customer falling back).
    ``whatsapp_paisa`` and ``sms_paisa`` are each channel's total as if every customer got it.
    """

    channel: str
    messages: int
    sms_segments: int
    whatsapp_paisa: int
    sms_paisa: int
    cost_paisa: int
    upper_bound_paisa: int
    seconds: float
    prices: Prices


def estimate(channel: str, messages: int, sms_segments: int, prices: Prices, rates: Rates
             ) -> Estimate:
    """messages x segments x price per segment (SMS), messages x price per message (WhatsApp),
    and the time at the first channel's rate. ``both`` is estimated at the WhatsApp price (the
    first try), with the SMS fallback for everybody as the upper bound."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}")
    if messages < 0:
        raise ValueError(f"messages must be 0 or more, got {messages}")
    if sms_segments < 1:
        raise ValueError(f"an SMS has at least one segment, got {sms_segments}")
    whatsapp = messages * prices.whatsapp_paisa_per_message if channel != "sms" else 0
    sms = messages * sms_segments * prices.sms_paisa_per_segment if channel != "whatsapp" else 0
    cost = sms if channel == "sms" else whatsapp
    rate = rates.sms_per_s if channel == "sms" else rates.whatsapp_per_s
    if rate <= 0:
        raise ValueError(f"a send rate must be greater than 0, got {rate}")
    return Estimate(channel=channel, messages=messages, sms_segments=sms_segments,
                    whatsapp_paisa=whatsapp, sms_paisa=sms, cost_paisa=cost,
                    upper_bound_paisa=whatsapp + sms, seconds=messages / rate, prices=prices)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def duration_text(seconds: float) -> str:
    """"under a minute", "about 7 minutes", "about 2 hours 5 minutes" (rounded up)."""
    if seconds < 60:
        return "under a minute"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return "about " + _plural(minutes, "minute")
    hours, rest = divmod(minutes, 60)
    return "about " + _plural(hours, "hour") + (f" {_plural(rest, 'minute')}" if rest else "")


class LocalTimeError(ValueError):
    """A typed date or time that cannot be used; the message says why, in words."""


def _zone(timezone: str) -> ZoneInfo:
    return ZoneInfo(timezone)


def _out_of_range(day: date) -> LocalTimeError:
    """A date at the very edge of the calendar (year 1 or 9999), which has no UTC instant."""
    return LocalTimeError(f"{day.isoformat()} is too far in the past or the future: give a "
                          "date such as 2026-05-01")


def local_datetime(text: str, timezone: str) -> datetime:
    """A `datetime-local` value ("2026-05-01T09:30") read in the salon's timezone, as UTC.
    A time the clocks skip (a daylight-saving gap) is refused rather than moved."""
    try:
        naive = datetime.fromisoformat(text.strip())
    except ValueError:
        raise LocalTimeError("give a date and time, e.g. 2026-05-01 09:30") from None
    if naive.tzinfo is not None:
        raise LocalTimeError("give the time as the salon's clock shows it, without a zone")
    zone = _zone(timezone)
    aware = naive.replace(tzinfo=zone)
    try:
        moment = aware.astimezone(UTC)
        back = moment.astimezone(zone).replace(tzinfo=None)
    except OverflowError:
        raise _out_of_range(naive.date()) from None
    if back != naive:
        raise LocalTimeError(f"{naive:%d %b %Y %H:%M} does not exist in {timezone} (the clocks "
                             "change then): pick another time")
    return moment


def local_midnight(text: str, timezone: str) -> datetime:
    """The start of a salon-local day ("2026-05-01"), as UTC."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise LocalTimeError("give a date, e.g. 2026-05-01") from None
    try:
        return datetime.combine(day, time(0, 0), tzinfo=_zone(timezone)).astimezone(UTC)
    except OverflowError:
        raise _out_of_range(day) from None


def _on_clock(moment: datetime, timezone: str) -> datetime:
    """The instant on the salon's clock; at the calendar's very edge (an instant the API took
    in year 1 or 9999 that the salon's clock cannot show) its UTC reading instead."""
    try:
        return moment.astimezone(_zone(timezone))
    except OverflowError:
        return moment.astimezone(UTC)


def local_input(moment: datetime, timezone: str) -> str:
    """An instant as a `datetime-local` value on the salon's clock ("2026-05-01T09:30")."""
    return _on_clock(moment, timezone).replace(tzinfo=None).isoformat(timespec="minutes")


def local_date_input(moment: datetime, timezone: str) -> str:
    """An instant's salon-local date as a `date` input value ("2026-05-01")."""
    return _on_clock(moment, timezone).date().isoformat()
