"""The offer-matcher actor: links newly registered app users to the salons that imported them.

The host app inserts a user; a trigger writes a registration_events row and NOTIFYs
``onboardd_registration``. This actor LISTENs on a dedicated connection, and also polls every
``[offers] match_poll_s`` and catches up at start, so events missed while the daemon was down or
the connection was lost are still processed. Events are claimed with FOR UPDATE SKIP LOCKED in
batches, so several daemons each process an event exactly once; a batch is matched, linked,
granted and marked processed in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import asyncpg
import structlog

from onboardd.actors.waiting import first_of
from onboardd.db import offers as db
from onboardd.db.offers import RegistrationEvent
from onboardd.db.pool import CONNECTION_ERRORS as _CONNECTION_ERRORS
from onboardd.domain.matching import user_number
from onboardd.logging import get_logger
from onboardd.pii import PiiCipher
from onboardd.runtime import Services

log = get_logger("offer_matcher")

CHANNEL: Final = "onboardd_registration"
# Events per transaction: large enough for a burst of thousands in a few statements, small
# enough that one transaction stays in the tens of milliseconds.
MATCH_BATCH: Final = 500
RETRY_BASE_S: Final = 5.0
RETRY_MAX_S: Final = 3600.0

Candidate = tuple[int, str, bytes, datetime]


def build_candidates(cipher: PiiCipher, events: Sequence[RegistrationEvent],
                     phone_region: str) -> list[Candidate]:
    """(event, user, hash of the user's E.164 number, registered at) for each readable phone.

    A national-format phone is read with ``[offers] phone_region`` only (onboardd.domain.matching),
    never with another salon's region; a phone that cannot be read matches nothing.
    """
    out: list[Candidate] = []
    for event in events:
        e164 = user_number(event.phone, phone_region)
        if e164 is not None:
            out.append((event.id, event.user_id, cipher.phone_hash(e164), event.created_at))
    return out


async def _match_claimed(services: Services, limit: int) -> tuple[int, db.MatchResult | None]:
    """Claim up to limit events and match them in one transaction; (events claimed, result)."""
    async with services.pool.acquire() as conn, conn.transaction():
        events = await db.claim_events(conn, limit)
        if not events:
            return 0, None
        candidates = build_candidates(services.cipher, events, services.cfg.offers.phone_region)
        result = await db.apply_matches(conn, candidates, [e.id for e in events])
        return len(events), result


async def _one_by_one(services: Services, count: int) -> None:
    """After a batch failed: match its events singly so one bad event cannot block the rest.
    Each event is a unit of work: its lines carry its event and user ids as log context."""
    for _ in range(count):
        event: RegistrationEvent | None = None
        async with services.pool.acquire() as conn:
            with contextlib.ExitStack() as log_context:
                try:
                    async with conn.transaction():
                        events = await db.claim_events(conn, 1)
                        if not events:
                            return
                        event = events[0]
                        log_context.enter_context(structlog.contextvars.bound_contextvars(
                            event_id=event.id, user_id=event.user_id))
                        candidates = build_candidates(services.cipher, events,
                                                      services.cfg.offers.phone_region)
                        await db.apply_matches(conn, candidates, [event.id])
                except asyncpg.PostgresError as exc:
                    if isinstance(exc, _CONNECTION_ERRORS) or event is None:
                        raise
                    delay = await db.defer_event(conn, event.id, f"{type(exc).__name__}: {exc}",
                                                 RETRY_BASE_S, RETRY_MAX_S)
                    log.error("registration_event_failed", retry_in_s=delay,
                              error=f"{type(exc).__name__}: {exc}")


async def process_batch(services: Services, limit: int = MATCH_BATCH) -> int:
    """Match one batch of pending events; returns how many events it took."""
    try:
        claimed, result = await _match_claimed(services, limit)
    except asyncpg.PostgresError as exc:
        if isinstance(exc, _CONNECTION_ERRORS):
            raise
        log.warning("registration_batch_failed", error=f"{type(exc).__name__}: {exc}")
        await _one_by_one(services, limit)
        return limit
    if result is not None:
        level = log.info if claimed >= 100 else log.debug
        level("registrations_matched", events=claimed, linked=result.linked,
              granted=result.granted)
    return claimed


async def drain(services: Services, stopping: asyncio.Event) -> int:
    """Process batches until none is full (or stop); returns the events taken."""
    total = 0
    while not stopping.is_set():
        taken = await process_batch(services)
        total += taken
        if taken < MATCH_BATCH:
            break
    return total


class _Listener:
    """LISTEN on a connection held from the pool; re-subscribes after the connection is lost."""

    def __init__(self, pool: asyncpg.Pool, wake: asyncio.Event) -> None:
        self._pool = pool
        self._wake = wake
        self._conn: Any = None
        self.lost = asyncio.Event()

    def _on_notify(self, *_args: object) -> None:
        self._wake.set()

    def _on_terminated(self, *_args: object) -> None:
        self.lost.set()

    @staticmethod
    def _closed(conn: Any) -> bool:
        try:
            return bool(conn.is_closed())
        except asyncpg.InterfaceError:  # the pool already took a lost connection back
            return True

    @property
    def healthy(self) -> bool:
        """True while subscribed on an open connection."""
        return self._conn is not None and not self._closed(self._conn) and not self.lost.is_set()

    async def ensure(self) -> None:
        """Subscribe if not subscribed; a new subscription triggers a catch-up pass."""
        if self.healthy:
            return
        await self.close()
        conn = await self._pool.acquire()
        try:
            await conn.add_listener(CHANNEL, self._on_notify)
            conn.add_termination_listener(self._on_terminated)
        except BaseException:
            await self._pool.release(conn)
            raise
        self._conn = conn
        self.lost.clear()
        # Whatever was notified while unsubscribed is found by this pass.
        self._wake.set()
        log.info("registration_listener_subscribed", channel=CHANNEL)

    async def close(self) -> None:
        """Release the connection (the pool resets it, which unlistens)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            conn.remove_termination_listener(self._on_terminated)
        if not self._closed(conn):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.remove_listener(CHANNEL, self._on_notify), 5.0)
        with contextlib.suppress(Exception):
            await self._pool.release(conn, timeout=5.0)


async def run(services: Services, stopping: asyncio.Event) -> None:
    """Actor entry: catch up, then match on every notification, poll and re-subscription."""
    poll_s = services.cfg.offers.match_poll_s
    wake = asyncio.Event()
    wake.set()  # catch up on events left from before the start
    listener = _Listener(services.pool, wake)
    try:
        while not stopping.is_set():
            try:
                await listener.ensure()
                wake.clear()
                await drain(services, stopping)
            except _CONNECTION_ERRORS as exc:
                log.warning("registration_matcher_db_unavailable", error=repr(exc),
                            retry_in_s=poll_s)
                await listener.close()
                await first_of(stopping.wait(), poll_s=poll_s)
                continue
            await first_of(wake.wait(), stopping.wait(), listener.lost.wait(), poll_s=poll_s)
    finally:
        await asyncio.shield(listener.close())
