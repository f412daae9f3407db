"""Quiet hours: a salon's sending window, read and changed, and what it means for a campaign
now (held messages, when sending starts, a warning for a send into a closed window).

The rules are onboardd.domain.sending_hours; the dispatcher's claim applies them in SQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from onboardd.db import salon_settings as db
from onboardd.domain.sending_hours import (
    SendingHours,
    SendingHoursError,
    describe_start,
    format_time,
    is_open,
    known_zone,
    next_closing,
    next_opening,
    parse_hours,
    zone,
)
from onboardd.logging import get_logger
from onboardd.runtime import CampaignWake, Services, nudge
from onboardd.services.errors import ServiceError, invalid_field

log = get_logger("sending_hours")


class SendingWindowView(msgspec.Struct, frozen=True, rename="camel"):
    """The window as the API shows it."""

    start: str
    end: str
    crosses_midnight: bool
    all_day: bool
    # "salon": set for this salon; "default": [campaigns] sending_window_start / _end.
    source: Literal["salon", "default"]


class SalonSettings(msgspec.Struct, frozen=True, rename="camel"):
    """GET/PATCH /api/salons/{salonId}/settings."""

    salon_id: str
    timezone: str
    # False: salons.timezone is no IANA name; the window is read in Asia/Kolkata instead.
    timezone_known: bool
    sending_window: SendingWindowView
    sending_now: bool
    next_opening_at: datetime | None
    next_closing_at: datetime | None
    updated_at: datetime | None
    updated_by: str | None


class Window(msgspec.Struct, frozen=True):
    """A salon's window in force, with its zone."""

    salon_id: str
    timezone: str
    hours: SendingHours
    source: Literal["salon", "default"]
    updated_at: datetime | None = None
    updated_by: str | None = None

    def open_at(self, at: datetime) -> bool:
        """Whether messages may go out at ``at``."""
        return is_open(self.hours, zone(self.timezone), at)

    def opens_at(self, at: datetime) -> datetime:
        """``at`` while open, else when the window next opens."""
        return next_opening(self.hours, zone(self.timezone), at)

    def start_note(self, at: datetime, now: datetime | None = None) -> str | None:
        """'Sending starts at 09:00 (salon time, ...) tomorrow: ...', None when open at ``at``
        (the day named from ``now``)."""
        return describe_start(self.hours, zone(self.timezone), at, self.timezone, now)

    def view(self) -> dict[str, Any]:
        """The window for a stats body or a page: times, zone, open now, next opening."""
        now = datetime.now(UTC)
        opening = self.opens_at(now)
        return {"start": format_time(self.hours.start_s), "end": format_time(self.hours.end_s),
                "timezone": self.timezone, "openNow": opening == now,
                "nextOpeningAt": None if opening == now else opening}


def _now() -> datetime:
    return datetime.now(UTC)


async def window(services: Services, salon_id: str) -> Window:
    """The salon's window in force (its own, else the configured default)."""
    row = await db.get(services.pool, salon_id)
    if row is None:
        raise ServiceError("not_found", f"no salon {salon_id!r}")
    if row.sending_window_start_s is not None and row.sending_window_end_s is not None:
        hours = SendingHours(row.sending_window_start_s, row.sending_window_end_s)
        return Window(salon_id, row.timezone, hours, "salon", row.updated_at, row.updated_by)
    return Window(salon_id, row.timezone, services.cfg.campaigns.sending_hours(), "default",
                  row.updated_at, row.updated_by)


def settings_view(found: Window, now: datetime | None = None) -> SalonSettings:
    """The settings body of a salon."""
    at = now or _now()
    tz = zone(found.timezone)
    opening = next_opening(found.hours, tz, at)
    sending_now = opening == at
    return SalonSettings(
        salon_id=found.salon_id, timezone=found.timezone,
        timezone_known=known_zone(found.timezone),
        sending_window=SendingWindowView(
            start=format_time(found.hours.start_s), end=format_time(found.hours.end_s),
            crosses_midnight=found.hours.crosses_midnight, all_day=found.hours.all_day,
            source=found.source),
        sending_now=sending_now,
        next_opening_at=None if sending_now else opening,
        next_closing_at=next_closing(found.hours, tz, at) if sending_now else None,
        updated_at=found.updated_at, updated_by=found.updated_by)


async def settings(services: Services, salon_id: str) -> SalonSettings:
    """GET: the salon's settings."""
    return settings_view(await window(services, salon_id))


async def set_window(services: Services, salon_id: str, start: str | None, end: str | None,
                     actor: str) -> SalonSettings:
    """PATCH: a new window ("HH:MM" texts), or both None for the configured default. The
    dispatcher is woken, so a window that opened is used at once."""
    if start is None or end is None:
        start_s: int | None = None
        end_s: int | None = None
    else:
        try:
            hours = parse_hours(start, end)
        except SendingHoursError as exc:
            raise invalid_field(exc.field, str(exc).partition(": ")[2]) from None
        start_s, end_s = hours.start_s, hours.end_s
    await window(services, salon_id)  # 404 for a salon that is gone
    await db.set_window(services.pool, salon_id, start_s, end_s, actor)
    log.info("sending_window_changed", salon_id=salon_id, actor=actor,
             window=None if start_s is None else f"{start}-{end}")
    nudge(services.queues.campaigns, CampaignWake("campaign_changed"))
    return await settings(services, salon_id)


async def send_warnings(services: Services, salon_id: str, at: datetime | None) -> list[str]:
    """Warnings for a campaign sent now (``at`` None) or scheduled at ``at``: one sentence
    when that moment is outside the salon's sending window."""
    found = await window(services, salon_id)
    now = _now()
    note = describe_start(found.hours, zone(found.timezone), at or now, found.timezone, now)
    if note is None:
        return []
    when = "The scheduled time" if at is not None else "Now"
    return [f"{when} is outside the salon's sending window: the campaign is accepted and its "
            f"messages wait. {note}"]
