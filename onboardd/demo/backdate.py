"""The one place that rewrites timestamps: the demo's steps are moved into the past.

No API can say "this happened six weeks ago", so after each step has really happened (through
the API, within seconds) the rows it wrote are moved to the step's story time. A step's rows
move by one interval, so their order and the seconds between them stay as they were (sent
before delivered before read); only timestamps written during the step's real window move.
Registrations and bookings get one time each from the story, chosen after the customer's
invitation arrived. The SQL is in sql/queries/demo.sql.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import asyncpg
import msgspec

from onboardd.db.queries import query


class Window(msgspec.Struct, frozen=True):
    """The real time a step took, and the story time it is moved to."""

    began: dt.datetime
    ended: dt.datetime
    story: dt.datetime

    @property
    def shift(self) -> dt.timedelta:
        """How far the step moves back."""
        return self.began - self.story


async def import_batch(pool: asyncpg.Pool, salon_id: str, batch_id: str, window: Window
                       ) -> None:
    """The upload, confirmation and import of a batch, and the customers it created."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(query("demo_shift_batch"), batch_id, window.began, window.ended,
                           window.shift)
        await conn.execute(query("demo_shift_customers"), salon_id, window.began, window.ended,
                           window.shift)


async def offer(pool: asyncpg.Pool, offer_id: str, window: Window) -> None:
    """The welcome offer's creation."""
    await pool.execute(query("demo_shift_offer"), offer_id, window.began, window.ended,
                       window.shift)


async def campaign(pool: asyncpg.Pool, salon_id: str, campaign_id: str, window: Window) -> None:
    """A campaign from draft to completed: its messages and the customers it invited."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(query("demo_shift_campaign"), campaign_id, window.began,
                           window.ended, window.shift)
        await conn.execute(query("demo_shift_messages"), campaign_id, window.began,
                           window.ended, window.shift)
        await conn.execute(query("demo_shift_customers"), salon_id, window.began, window.ended,
                           window.shift)


async def registrations(pool: asyncpg.Pool, salon_id: str,
                        registered: Mapping[str, dt.datetime]) -> None:
    """Users (id -> story time) registered then: the user, the event, the customer's link and
    the offer grant (which keeps its validity from the registration)."""
    users, times = list(registered), list(registered.values())
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(query("demo_set_grants"), users, times, salon_id)
        await conn.execute(query("demo_set_registered"), users, times, salon_id)
        await conn.execute(query("demo_set_users"), users, times)
        await conn.execute(query("demo_set_registration_events"), users, times)


async def bookings(pool: asyncpg.Pool, salon_id: str, booked: Mapping[str, dt.datetime]
                   ) -> None:
    """Bookings (id -> story time) of the salon, and the redemption each one used."""
    await pool.execute(query("demo_set_bookings"), list(booked), list(booked.values()),
                       salon_id)
