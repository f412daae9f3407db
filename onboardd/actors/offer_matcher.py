"""The offer-matcher actor: links newly registered app users to the salons that imported them.

The host app inserts a user; a trigger writes a registration_events row and NOTIFYs
``onboardd_registration``. This actor LISTENs on a dedicated connection, and also polls every
``[offers] match_poll_s`` and catches up at start, so events missed while the daemon was down or
the connection was lost are still processed.

The LISTEN connection shows in pg_stat_activity as application_name ``onboardd-listen``. When it
is lost (pg_terminate_backend, a server restart) asyncpg reports it at once and the actor
subscribes again on a new one, retrying with a capped backoff while the server is down
(onboardd.actors.outage); a connection that died without a word (a silent network) fails the
probe run on it at least once per poll interval and is replaced. Every new subscription starts
with a catch-up pass, so a registration notified while nobody listened is matched.

Events are claimed with FOR UPDATE SKIP LOCKED in batches, so several daemons each process an
event exactly once; a batch is matched, linked, granted and marked processed in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import asyncpg
import structlog

from onboardd.actors import outage as db_outage
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
# How operators and tests find the LISTEN connection in pg_stat_activity.
LISTEN_APPLICATION_NAME: Final = "onboardd-listen"
# Longest wait for the LISTEN connection to answer its probe.
PROBE_TIMEOUT_S: Final = 2.0
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
    """Claim up to limit events and match them in one transaction; (events claimed, result).
    Each event's lag (creation to commit) is observed once the transaction has committed."""
    async with services.pool.acquire() as conn, conn.transaction():
        events = await db.claim_events(conn, limit)
        if not events:
            return 0, None
        candidates = build_candidates(services.cipher, events, services.cfg.offers.phone_region)
        result = await db.apply_matches(conn, candidates, [e.id for e in events])
    services.metrics.registrations_matched(e.created_at for e in events)
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
                    services.metrics.registrations_matched([event.created_at])
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
    """LISTEN on a connection held from the pool; re-subscribes after the connection is lost,
    and probes it every probe_every_s so a silently dead one is noticed too."""

    def __init__(self, pool: asyncpg.Pool, wake: asyncio.Event, probe_every_s: float) -> None:
        self._pool = pool
        self._wake = wake
        self._probe_every_s = probe_every_s
        self._probed_at = 0.0
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

    async def _answers(self) -> bool:
        """Probe the connection when the last probe is probe_every_s old; False when it does
        not answer in time (the caller drops it)."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._probed_at < self._probe_every_s:
            return True
        try:
            await self._conn.execute("SELECT 1", timeout=PROBE_TIMEOUT_S)
        except _CONNECTION_ERRORS as exc:
            log.warning("registration_listener_lost", error=repr(exc))
            return False
        self._probed_at = loop.time()
        return True

    async def ensure(self) -> None:
        """Subscribe if not subscribed (or the connection stopped answering); a new
        subscription triggers a catch-up pass."""
        if self.healthy and await self._answers():
            return
        await self.close(discard=self._conn is not None)
        conn = await self._pool.acquire()
        try:
            # Until the pool resets the connection (on release): how pg_stat_activity names it.
            await conn.execute(f"SET application_name = '{LISTEN_APPLICATION_NAME}'")
            await conn.add_listener(CHANNEL, self._on_notify)
            conn.add_termination_listener(self._on_terminated)
        except BaseException:
            await self._pool.release(conn)
            raise
        self._conn = conn
        self._probed_at = asyncio.get_running_loop().time()
        self.lost.clear()
        # Whatever was notified while unsubscribed is found by this pass.
        self._wake.set()
        log.info("registration_listener_subscribed", channel=CHANNEL)

    async def close(self, *, discard: bool = False) -> None:
        """Release the connection (the pool resets it, which unlistens); a lost or silent one
        is closed without a word to the server (discard), and the pool replaces it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            conn.remove_termination_listener(self._on_terminated)
        if discard:
            with contextlib.suppress(Exception):
                conn.terminate()
        elif not self._closed(conn):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.remove_listener(CHANNEL, self._on_notify), 5.0)
        with contextlib.suppress(Exception):
            await self._pool.release(conn, timeout=5.0)


async def run(services: Services, stopping: asyncio.Event) -> None:
    """Actor entry: catch up, then match on every notification, poll and re-subscription."""
    poll_s = services.cfg.offers.match_poll_s
    wake = asyncio.Event()
    wake.set()  # catch up on events left from before the start
    listener = _Listener(services.pool, wake, probe_every_s=poll_s)
    outage = db_outage.DatabaseWait("offer_matcher", cap_s=min(db_outage.RETRY_MAX_S, poll_s))
    try:
        while not stopping.is_set():
            try:
                await listener.ensure()
                wake.clear()
                await drain(services, stopping)
            except _CONNECTION_ERRORS as exc:
                await listener.close(discard=True)
                await outage.pause(exc, stopping)
                continue
            outage.recovered()
            await first_of(wake.wait(), stopping.wait(), listener.lost.wait(), poll_s=poll_s)
    finally:
        await asyncio.shield(listener.close())
