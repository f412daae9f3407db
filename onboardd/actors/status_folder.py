"""The status-folder actor: applies the status inbox to the messages.

A Twilio status callback is durable, and answered, once the status recorder has appended it to
``status_inbox`` (migration 0019). This actor applies those rows to invitation_messages, their
campaigns' counters and their customers' funnel facts (onboardd.db.status_inbox.fold: the
recorder's rules, unchanged), up to ``FOLD_MAX`` rows per transaction in id order, deleting the
rows it applied in the same transaction: each callback is applied exactly once, and a crash at
any point leaves it applied or still in the inbox.

When it folds: ``FOLD_LINGER_S`` after the recorder says it appended callbacks
(``Services.inbox_wake``), and while a fold finds a full batch, again at once; so under load each
fold takes in what arrived meanwhile (the batches grow with the load, and a message's several
callbacks often meet in one batch and cost one update), on a connection the folder keeps while
there is work (db.delivery.FlushConnection: no pool round trips per fold). Besides, every
``poll_interval_s``, and at start: rows another instance appended (it folds them itself, but it
may have died), or a stopped instance left. Several instances: one fold at a time cluster-wide
(a transaction-level advisory lock), so callbacks are applied in inbox order, without two folds
deadlocking on the same messages or campaign rows; a folder that finds the lock taken waits for
it and then folds what is left.

A callback whose SID no message carries yet is held in the inbox (its send result may be
committing in the recorder's transaction as the fold runs: onboardd.db.status_inbox); while some
are held the folder looks again every ``HELD_RECHECK_S`` and applies them once their SID is
known, or keeps them as orphans after ``HOLD_UNKNOWN_S``.

Database outages: the actor waits (onboardd.actors.outage) and folds again; nothing is lost,
since the rows stay. A fold that fails because of its rows (a value the database refuses while
applying it; the inbox's column types make this unlikely) is retried one row at a time, and a
row that still fails is parked in ``status_events_parked`` and deleted from the inbox, like an
event the recorder cannot store (onboardd.actors.status_recorder).

Stop: the folder folds once more and returns (a fold cancelled at the end of the grace period
rolls back). The recorder, stopped after it, folds what its final drain appended (a few folds at
most). Whatever is left stays durable in the inbox and is folded by the next instance to start,
or by any running one within its poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import TypeAlias

import asyncpg
import structlog

from onboardd.actors.outage import DatabaseWait
from onboardd.db import parked as parked_db
from onboardd.db import status_inbox as db
from onboardd.db.delivery import FlushConnection, FlushResult
from onboardd.db.pool import unreachable
from onboardd.domain.status_events import ParkedEvent, StatusCallback, parked
from onboardd.logging import get_logger
from onboardd.runtime import CampaignWake, Services, nudge

log = get_logger("status_folder")

FOLD_MAX = 2_000  # inbox rows per fold (one transaction)
# After a wake, how long the folder lets callbacks gather before it folds: under load a fold then
# carries tens to hundreds of rows (and a message's several callbacks often meet in it), instead
# of paying a transaction for each recorder flush; a status is applied within about this much
# plus one fold of its answer. (0.2 s rather than 0.05: PostgreSQL spent ~74 us a callback
# instead of ~84 in tests/bench/bench_webhooks.py, three runs of each.)
FOLD_LINGER_S = 0.2
# How long a callback whose SID no message carries yet stays held in the inbox (its send result
# may be committing as the fold runs) before it is kept as an orphan (onboardd.db.status_inbox),
# and how soon, while some are held, the folder looks again whether their SIDs are known.
HOLD_UNKNOWN_S = 30.0
HELD_RECHECK_S = 0.1

# Where a fold runs: the folder's own connection (kept while there is work), or the pool's.
FoldOn: TypeAlias = FlushConnection | asyncpg.Pool


def _parked_form(event: StatusCallback, exc: BaseException) -> ParkedEvent:
    """How a row the fold cannot apply is kept (as the recorder keeps an event it cannot
    store: no PII)."""
    return parked(event, f"{type(exc).__name__}: {exc}")


def _report(services: Services, fold: db.Fold, seconds: float) -> None:
    """Metrics and logs of one committed fold."""
    result = fold.result
    lag = None
    if fold.oldest_at is not None:
        lag = max(0.0, (datetime.now(UTC) - fold.oldest_at).total_seconds())
    services.metrics.inbox_folded(fold.taken, fold.left, seconds, lag)
    services.metrics.callbacks_applied(result.callback_statuses)
    announce_applied(services, result)


def announce_applied(services: Services, result: FlushResult) -> None:
    """What applying statuses changed, said once (by the folder or the recorder): callbacks
    kept for unknown SIDs, WhatsApp messages falling back to SMS (the dispatcher is woken for
    them), campaigns completed."""
    if result.orphaned_sids:
        log.info("callbacks_for_unknown_sids_kept", count=len(result.orphaned_sids),
                 sids=result.orphaned_sids[:20])
    if result.fell_back_sids:
        log.info("whatsapp_unreachable_fallback_to_sms", count=len(result.fell_back_sids),
                 sids=result.fell_back_sids[:20])
        # Wake the dispatcher's claimers: SMS retries are claimable now.
        nudge(services.queues.campaigns, CampaignWake("sms_fallback"))
    for campaign_id in result.completed_campaigns:
        with structlog.contextvars.bound_contextvars(campaign_id=campaign_id):
            log.info("campaign_completed")


async def _fold_once(services: Services, limit: int, conn: FoldOn) -> db.Fold:
    """One fold of at most `limit` rows; when the rows make it fail, they are folded one at a
    time, parking each that still fails. A failed fold gives `conn`'s connection back."""
    wait_s = services.cfg.campaigns.delivery_wait_s
    started = time.perf_counter()
    try:
        fold = await db.fold(conn, limit, wait_s, HOLD_UNKNOWN_S)
    except BaseException as exc:
        if isinstance(conn, FlushConnection):
            with contextlib.suppress(Exception):  # the fold's own error is what counts
                await conn.release()
        if not isinstance(exc, Exception) or not parked_db.is_poison(exc):
            raise
        log.warning("status_fold_failed_folding_one_by_one", error=repr(exc))
        return await _one_by_one(services, limit)
    _report(services, fold, time.perf_counter() - started)
    return fold


async def _one_by_one(services: Services, limit: int) -> db.Fold:
    total = db.Fold()
    for _ in range(limit):
        started = time.perf_counter()
        try:
            fold = await db.fold_one(services.pool, services.cfg.campaigns.delivery_wait_s,
                                     HOLD_UNKNOWN_S, _parked_form)
        except db.FoldFailed as failed:
            log.error("status_event_parked", inbox_id=failed.row_id, error=repr(failed.error),
                      hint="the other callbacks were applied; see the status_events_parked "
                      "table")
            total.taken += 1
            continue
        if not fold.taken:
            break
        _report(services, fold, time.perf_counter() - started)
        total.taken += fold.taken
        total.left, total.held = fold.left, fold.held
    return total


async def drain(services: Services, max_folds: int | None = None,
                conn: FoldOn | None = None) -> db.Fold:
    """Fold until a fold takes less than a full batch (the inbox was empty then, but for rows
    held for an unknown SID), or ``max_folds`` folds ran (on `conn`, else on connections of the
    pool); returns the rows folded and the rows held after the last fold. A fold cancelled
    midway rolls back: its rows stay in the inbox."""
    total = db.Fold()
    folds = 0
    while max_folds is None or folds < max_folds:
        fold = await _fold_once(services, FOLD_MAX, conn or services.pool)
        total.taken += fold.taken
        total.left, total.held = fold.left, fold.held
        folds += 1
        if fold.taken < FOLD_MAX:
            break
    return total


async def run(services: Services, stopping: asyncio.Event) -> None:
    """Actor entry: fold at start, when woken, every poll interval, and once more on stop."""
    wake = services.inbox_wake
    poll_s = services.cfg.supervisor.poll_interval_s
    outage = DatabaseWait("status_folder")
    conn = FlushConnection(services.pool)
    try:
        while True:
            wake.clear()
            try:
                drained = await drain(services, conn=conn)
            except Exception as exc:
                if not unreachable(exc):
                    raise
                if stopping.is_set():
                    return  # the rows stay durable in the inbox
                await outage.pause(exc, stopping)
                continue
            outage.recovered()
            if stopping.is_set():
                return
            if not drained.taken:
                await conn.release()  # nothing to do: idle until woken
            # Callbacks held for an unknown SID: look again soon (their send results commit
            # within moments, on this instance or another).
            wait_s = min(poll_s, HELD_RECHECK_S) if drained.held else poll_s
            if await _woken(wake, stopping, wait_s) and not stopping.is_set():
                # Let the batch grow: under load, what arrives meanwhile is folded with it.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), FOLD_LINGER_S)
    finally:
        await conn.release()


async def _woken(wake: asyncio.Event, stopping: asyncio.Event, timeout_s: float) -> bool:
    """Wait until woken, told to stop, or timeout_s passed; True unless it timed out."""
    waits = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stopping.wait())]
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
    return bool(done)
