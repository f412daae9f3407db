"""Seeding helpers for the campaign tests: customers, offers, campaigns, the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg

from onboardd.pii import PiiCipher
from onboardd.simulator.app import create_app, serve_app
from onboardd.simulator.settings import SimulatorSettings
from onboardd.simulator.state import STATE_KEY, SimState


def phone(i: int) -> str:
    """A distinct, valid Indian mobile number."""
    return f"+9198{i:08d}"


async def add_customers(pool: asyncpg.Pool, cipher: PiiCipher, salon_id: str,
                        phones: list[str], status: str = "pending",
                        batch_id: str | None = None) -> list[str]:
    """Insert imported customers (set-based); their ids in order."""
    names = [f"Customer{i} Test" for i in range(len(phones))]
    rows = await pool.fetch(
        """INSERT INTO imported_customers
               (salon_id, import_batch_id, customer_name, phone_enc, normalized_phone_enc,
                phone_hash, status)
           SELECT $1, $2, n, e, e, h, $6
           FROM unnest($3::text[], $4::text[], $5::bytea[]) WITH ORDINALITY AS u(n, e, h, o)
           ORDER BY o
           RETURNING id""",
        salon_id, batch_id, names, [cipher.encrypt(p, "phone") for p in phones],
        [cipher.phone_hash(p) for p in phones], status)
    return [r["id"] for r in rows]


async def add_offer(pool: asyncpg.Pool, salon_id: str, *, active: bool = True,
                    discount_type: str = "fixed", value: int = 10000) -> str:
    """A welcome offer (₹100 fixed by default)."""
    offer_id: str = await pool.fetchval(
        """INSERT INTO welcome_offers (salon_id, name, discount_type, discount_value,
                                       validity_days, is_active)
           VALUES ($1, 'Welcome', $2, $3, 30, $4) RETURNING id""",
        salon_id, discount_type, value, 1 if active else 0)
    return offer_id


async def add_salon(pool: asyncpg.Pool, name: str = "Other Salon") -> str:
    salon_id: str = await pool.fetchval(
        "INSERT INTO salons (name, app_download_link) VALUES ($1, NULL) RETURNING id", name)
    return salon_id


@contextlib.asynccontextmanager
async def simulator(**settings: object) -> AsyncIterator[tuple[str, SimState]]:
    """A simulator on a free port: (base URL, its state)."""
    app = create_app(SimulatorSettings(**settings))  # type: ignore[arg-type]
    async with serve_app(app, "127.0.0.1", 0) as url:
        yield url, app[STATE_KEY]


async def wait_for(predicate: Callable[[], bool | Awaitable[bool]], timeout_s: float = 15.0,
                   every_s: float = 0.05) -> None:
    """Poll a predicate (plain or async) until true; fail after timeout_s.

    The timeout is a bound, not a measurement: tests synchronise on a condition instead of
    sleeping a fixed time and hoping the system got there."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        outcome = predicate()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(every_s)
