"""Transactions that PostgreSQL may abort for a lock-order conflict, retried whole.

A deadlock or a serialization failure rolls the victim's transaction back entirely, so running
it again is safe; two writers that lock the same customer rows in different orders (a campaign
start assigning codes, the offer matcher linking registrations, an import) meet this under load.
Anything else, a ServiceError raised by the work included, passes through at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import asyncpg

from onboardd.logging import get_logger

log = get_logger("db")

T = TypeVar("T")

RETRYABLE: Final = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
TRIES: Final = 4


async def retried(run: Callable[[], Awaitable[T]], *, what: str, tries: int = TRIES,
                  pause_s: float = 0.05) -> T:
    """Await ``run()`` (one whole transaction, on a connection it takes itself); call it again,
    at most ``tries`` times in all, when PostgreSQL aborts it for a deadlock or a serialization
    failure, pausing ``pause_s`` times the attempt number in between."""
    for attempt in range(1, tries + 1):
        try:
            return await run()
        except RETRYABLE as exc:
            if attempt == tries:
                raise
            log.warning("transaction_retried", what=what, attempt=attempt,
                        error=type(exc).__name__)
            await asyncio.sleep(pause_s * attempt)
    raise AssertionError("unreachable")


async def in_transaction(pool: asyncpg.Pool, work: Callable[[asyncpg.Connection], Awaitable[T]],
                         *, what: str, tries: int = TRIES) -> T:
    """Run ``work`` in one transaction on a pooled connection, retried as ``retried`` says."""

    async def run() -> T:
        async with pool.acquire() as conn, conn.transaction():
            return await work(conn)

    return await retried(run, what=what, tries=tries)
