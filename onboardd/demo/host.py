"""What the demo writes as the host app would, and what it reads to find the salon.

The host app owns ``users`` and ``bookings``: a registration is an INSERT INTO users (the
trigger then tells onboardd's offer-matcher), a booking an INSERT INTO bookings. No API of
onboardd creates either, so the demo writes them here, with the SQL of sql/queries/demo.sql.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

import asyncpg
import msgspec

from onboardd.db.queries import query

# The salon the embedded first run creates (onboardd/first_run.py).
DEMO_SALON_NAME: Final = "Demo Salon"


class SalonChoiceError(Exception):
    """No salon can be chosen; the message says how to name one."""


class Salon(msgspec.Struct, frozen=True):
    """The salon the demo fills."""

    id: str
    name: str
    timezone: str


async def clock(pool: asyncpg.Pool) -> dt.datetime:
    """The database's current time (the clock every stored timestamp comes from)."""
    now: dt.datetime = await pool.fetchval(query("demo_clock"))
    return now


async def find_salon(pool: asyncpg.Pool, salon_id: str | None) -> Salon:
    """--salon, else the only salon, else the one named 'Demo Salon'."""
    if salon_id is not None:
        row = await pool.fetchrow(query("demo_salon_by_id"), salon_id)
        if row is None:
            raise SalonChoiceError(f"no salon with id {salon_id!r} in the configured database "
                                   "(onboardd salon list shows them)")
        return Salon(row["id"], row["name"], row["timezone"])
    row = await pool.fetchrow(query("demo_default_salon"), DEMO_SALON_NAME)
    if row is None:
        raise SalonChoiceError('the database has no salon: create one with onboardd salon add '
                               '"My Salon", or pass --salon ID')
    if row["salons"] > 1 and row["name"] != DEMO_SALON_NAME:
        raise SalonChoiceError(f"the database has {row['salons']} salons and none is named "
                               f"{DEMO_SALON_NAME!r}: pass --salon ID (onboardd salon list)")
    return Salon(row["id"], row["name"], row["timezone"])


async def register_users(pool: asyncpg.Pool, people: Sequence[tuple[str, str]]
                         ) -> dict[str, str]:
    """Insert users (phone, name) as the host app does on sign-up; {phone: user id}."""
    if not people:
        return {}
    rows = await pool.fetch(query("demo_insert_users"), [p for p, _ in people],
                            [n for _, n in people])
    return {row["phone"]: row["id"] for row in rows}


async def book(pool: asyncpg.Pool, salon_id: str, bookings: Sequence[tuple[str, int]]
               ) -> dict[str, str]:
    """Insert bookings (user id, amount in paisa) of the salon; {user id: booking id}."""
    if not bookings:
        return {}
    rows = await pool.fetch(query("demo_insert_bookings"), salon_id,
                            [u for u, _ in bookings], [a for _, a in bookings])
    return {row["user_id"]: row["id"] for row in rows}
