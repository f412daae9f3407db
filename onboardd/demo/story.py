"""The demo's calendar and its people's choices (pure: no I/O, seeded).

Everything really happens within a minute; the story places it over the past ``days``: the
import on the first day, the offer the same day, the launch campaign a few days later, a
reminder half-way, registrations trickling in after each invitation (most within days) and
bookings after registration, before the welcome offer expires.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Final
from zoneinfo import ZoneInfo

import msgspec

# A shorter story has no room for a launch, a reminder and reactions to both.
MIN_DAYS: Final = 7
# Which day each step lies on, as a fraction of the span, and its local time of day.
IMPORT_TIME: Final = dt.time(11, 0)
OFFER_AFTER: Final = dt.timedelta(hours=2)
LAUNCH_AT: Final = (0.05, dt.time(10, 30))
REMINDER_AT: Final = (0.5, dt.time(18, 0))
# People sign up while awake; the salon takes bookings while it is open (local hours).
AWAKE: Final = (7, 23)
OPEN: Final = (10, 20)
# Registrations: this share of the invited customers, about two thirds after the launch.
REGISTER_SHARE: Final = (0.27, 0.33)
FIRST_WAVE: Final = 0.65
BOOK_SHARE: Final = 0.5
# Nobody registers the minute the message arrives, nor books the minute they register.
MIN_REACTION: Final = dt.timedelta(minutes=7)
QUIET_END: Final = dt.timedelta(minutes=30)
# What a booking costs (paisa): services a salon sells, all above the offer's minimum.
MENU: Final[tuple[tuple[str, int], ...]] = (
    ("Haircut and styling", 80_000),
    ("Hair spa", 180_000),
    ("Facial", 220_000),
    ("Manicure and pedicure", 140_000),
    ("Global hair colour", 350_000),
    ("Keratin treatment", 450_000),
    ("Bridal trial makeup", 300_000),
    ("Threading and waxing", 60_000),
)


class Calendar(msgspec.Struct, frozen=True):
    """When each step of the story happened, and the salon's time zone."""

    start: dt.datetime
    offer: dt.datetime
    launch: dt.datetime
    reminder: dt.datetime
    end: dt.datetime
    zone: str


def _local(day: dt.date, at: dt.time, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, at, tzinfo=zone).astimezone(dt.UTC)


def calendar(now: dt.datetime, days: int, zone: str = "Asia/Kolkata") -> Calendar:
    """The story's dates: the first import at 11:00 local time no more than `days` back from
    `now`, the launch campaign a few days later, the reminder half-way."""
    if days < MIN_DAYS:
        raise ValueError(f"days must be at least {MIN_DAYS}, got {days}")
    tz = ZoneInfo(zone)
    first_day = (now - dt.timedelta(days=days)).astimezone(tz).date()
    start = _local(first_day, IMPORT_TIME, tz)
    if start < now - dt.timedelta(days=days):
        first_day += dt.timedelta(days=1)
        start = _local(first_day, IMPORT_TIME, tz)
    (launch_share, launch_time), (reminder_share, reminder_time) = LAUNCH_AT, REMINDER_AT
    launch_day = first_day + dt.timedelta(days=max(1, round(days * launch_share)))
    reminder_day = first_day + dt.timedelta(days=max(2, round(days * reminder_share)))
    return Calendar(start=start, offer=start + OFFER_AFTER,
                    launch=_local(launch_day, launch_time, tz),
                    reminder=min(_local(reminder_day, reminder_time, tz), now - QUIET_END * 2),
                    end=now - QUIET_END, zone=zone)


def within_hours(at: dt.datetime, hours: tuple[int, int], until: dt.datetime, zone: str,
                 rng: random.Random) -> dt.datetime:
    """`at` when it falls within the local `hours`, else a random moment within them on the
    next such day, if that is still before `until` (else `at`)."""
    local = at.astimezone(ZoneInfo(zone))
    opens, closes = hours
    if opens <= local.hour < closes:
        return at
    day = local.date() + dt.timedelta(days=1 if local.hour >= closes else 0)
    moved = (dt.datetime.combine(day, dt.time(opens), tzinfo=local.tzinfo)
             + dt.timedelta(seconds=rng.uniform(0, (closes - opens) * 3600)))
    return moved.astimezone(dt.UTC) if moved < until else at


def registration_target(invited: int, rng: random.Random) -> tuple[int, int]:
    """How many invited customers register (first wave, second wave)."""
    total = round(invited * rng.uniform(*REGISTER_SHARE))
    first = round(total * FIRST_WAVE)
    return first, total - first


def pick(candidates: Sequence[str], count: int, rng: random.Random) -> list[str]:
    """`count` of the candidates (all of them when there are fewer), in a seeded order."""
    ordered = sorted(candidates)
    return rng.sample(ordered, min(count, len(ordered)))


def reaction_time(after: dt.datetime, until: dt.datetime, rng: random.Random) -> dt.datetime:
    """A moment between `after` and `until`: most people act within days, a few much later."""
    window = until - after - MIN_REACTION
    if window <= dt.timedelta(0):
        # No room: a quick reaction, still after the cause (order beats the deadline).
        return after + max(until - after, dt.timedelta(minutes=2)) / 2
    share = min(rng.expovariate(1 / 0.18), 0.97)
    return after + MIN_REACTION + window * share


def registrations(delivered: dict[str, dt.datetime], until: dt.datetime, zone: str,
                  rng: random.Random) -> dict[str, dt.datetime]:
    """When each customer (id -> when their invitation arrived) registers, while awake."""
    return {cid: within_hours(reaction_time(at, until, rng), AWAKE, until, zone, rng)
            for cid, at in sorted(delivered.items())}


class Booking(msgspec.Struct, frozen=True):
    """A registered customer's first booking, where the welcome offer is applied."""

    customer_id: str
    at: dt.datetime
    service: str
    amount_in_paisa: int


def bookings(registered: dict[str, dt.datetime], count: int, validity_days: int,
             until: dt.datetime, zone: str, rng: random.Random) -> list[Booking]:
    """`count` of the registered customers book while the salon is open, before their offer
    expires and before `until`."""
    out = []
    for cid in pick(list(registered), count, rng):
        at = registered[cid]
        deadline = min(at + dt.timedelta(days=validity_days) - dt.timedelta(hours=1), until)
        service, amount = rng.choice(MENU)
        when = within_hours(reaction_time(at, deadline, rng), OPEN, deadline, zone, rng)
        out.append(Booking(cid, when, service, amount))
    return sorted(out, key=lambda b: b.at)


def booked_count(registered: int) -> int:
    """About half of those who register book with the offer."""
    return round(registered * BOOK_SHARE)
