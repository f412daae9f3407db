"""The status-recorder actor: group commit of send outcomes and status callbacks.

Producers (the dispatcher, the status webhook, reconciliation) put ``StatusWork`` on the bounded
``services.queues.status``. The recorder takes whatever is queued (up to ``MAX_BATCH`` events)
and makes it durable in one transaction (onboardd.db.delivery.record_batch, ``inbox`` argument):
send outcomes are applied to their messages; status callbacks are appended to the status inbox
(migration 0019; callbacks alone are one INSERT; reconciliation's, StatusWork.apply_now, are
applied in the flush instead), which the status folder
(onboardd.actors.status_folder, woken through ``Services.inbox_wake``) then applies to the
messages. The recorder works on a connection it keeps while there is work
(db.delivery.FlushConnection, given back to the pool once the queue stays empty for a poll
interval). The batch size adapts to the load: when fewer events are queued than the previous
flush carried, the producers of that flush are probably about to send more, so it lingers up to
``LINGER_S`` for the batch to reach that size; a lone event after a quiet spell is flushed at
once. Every ``done`` future of the batch is resolved after the commit, or fails with the error
when the flush fails, so a webhook answers Twilio only once its callback is durable (and 5xx
otherwise, so Twilio retries). An outcome whose SID callbacks were waiting for (orphans) applies
them in its flush; a failed callback saying WhatsApp cannot reach the number re-queues a
WhatsApp message of a `both` campaign on SMS (onboardd.db.delivery), and whoever applied it
then wakes the dispatcher so the SMS goes out without waiting for its poll. On stop, after its
final drain, the recorder applies what it appended to the inbox last (``_final_fold``).

The supervisor runs the recorder as a *drain-last* actor: its stop event is set only after every
producer (dispatcher, scheduler jobs, ...) has returned, so on stop it drains the queue until it
is empty and returns; every future is resolved. A flush that has started finishes even when
the actor is cancelled (the grace period ran out); the futures of work still queued then fail
with an error, so nobody waits for them forever.

Poison events: when a flush fails because of its events (onboardd.db.parked.is_poison: a value
the database refuses, such as an over-long SID or an error code beyond int32), the recorder
applies that batch again one event at a time; each event that still fails is parked in
``status_events_parked`` (error and event minus PII) and logged once (``status_event_parked``),
and its future is settled as if applied, so it is never retried into a crash loop. Every other
event of the batch lands.

Database outages (onboardd.db.pool.unreachable: down, restarting, connection lost). What
happens to a batch then depends on who can send its events again:

- A send outcome (the dispatcher's, or reconciliation's from Twilio's Messages list) records what
  Twilio already did; nobody would send it again, and losing it leaves the message `sending`
  until a lease sweep looks it up at Twilio. So it is kept: the recorder retries the flush with
  a capped backoff (onboardd.actors.outage) until it lands, taking in what is queued meanwhile,
  and resolves its future only then. The dispatcher's bound on undurable outcomes makes it stop
  sending while they wait.
- A status callback's future fails at once with the error: the webhook answers Twilio 503 and
  Twilio sends the callback again; reconciliation's pass runs again at its interval.

Applying an outcome twice (its commit landed but the answer was lost) changes nothing: outcomes
apply only to a message still pending or in flight. On stop the retries go on until the
supervisor cancels the recorder at the end of the grace period; the futures still unresolved
then fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, TypeAlias

import asyncpg
import structlog

from onboardd.actors import status_folder
from onboardd.actors.outage import DatabaseWait
from onboardd.actors.waiting import run_to_end
from onboardd.db import delivery as db
from onboardd.db import parked as parked_db
from onboardd.db.pool import unreachable
from onboardd.domain.status_events import SendOutcome, StatusCallback, StatusWork, parked, safe_text
from onboardd.logging import get_logger
from onboardd.metrics import Metrics
from onboardd.runtime import Services

# Where a flush runs: the recorder's own connection, or any of the pool's.
FlushOn: TypeAlias = db.FlushConnection | asyncpg.Pool

log = get_logger("status_recorder")

MAX_BATCH = 500  # events per flush
LINGER_S = 0.003  # longest wait for a batch to reach the previous flush's size
STOP_FOLDS = 5  # folds of the status inbox at stop, at most (status_folder.FOLD_MAX rows each)


def _take_ready(queue: asyncio.Queue[StatusWork], batch: list[StatusWork], size: int) -> int:
    """Move queued work into batch without waiting until it holds MAX_BATCH events."""
    while size < MAX_BATCH:
        try:
            work = queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        batch.append(work)
        size += len(work.items)
    return size


async def _gather(queue: asyncio.Queue[StatusWork], batch: list[StatusWork], expected: int
                  ) -> list[StatusWork]:
    """Fill batch (holding its first work) with everything queued, plus what arrives within
    LINGER_S while it holds fewer than `expected` events."""
    size = _take_ready(queue, batch, len(batch[0].items))
    deadline = time.monotonic() + LINGER_S
    while size < min(expected, MAX_BATCH):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            async with asyncio.timeout(remaining):
                work = await queue.get()
        except TimeoutError:
            break
        batch.append(work)
        size = _take_ready(queue, batch, size + len(work.items))
    return batch


def _settle(work: StatusWork) -> None:
    if work.done is not None and not work.done.done():
        work.done.set_result(None)


def _for_inbox(work: StatusWork, item: SendOutcome | StatusCallback) -> StatusCallback | None:
    """The event if it goes to the status inbox: a callback, unless its producer wants it
    applied in the flush (StatusWork.apply_now)."""
    return item if isinstance(item, StatusCallback) and not work.apply_now else None


def _event_context(item: SendOutcome | StatusCallback) -> dict[str, Any]:
    """The log context of applying one event: the message of a send outcome, in its storable
    form (a refused event's id may be what the database refused)."""
    if isinstance(item, SendOutcome):
        return {"message_id": safe_text(item.message_id, masked=False)}
    return {}


def _count_applied(metrics: Metrics, items: list[SendOutcome | StatusCallback],
                   result: db.FlushResult) -> None:
    """Count what a committed flush applied: its send outcomes but those it ignored (by channel
    and outcome), and the callbacks that matched a message (by status)."""
    ignored = set(result.outcomes_ignored)
    metrics.outcomes_applied((item.channel, item.outcome) for item in items
                             if isinstance(item, SendOutcome) and item.message_id not in ignored)
    metrics.callbacks_applied(result.callback_statuses)


async def _park(services: Services, item: SendOutcome | StatusCallback, exc: Exception) -> None:
    """Keep an event the database refused in status_events_parked and log it, once (the
    message id, when there is one, is in the log context)."""
    event = parked(item, f"{type(exc).__name__}: {exc}")
    try:
        parked_id: int | None = await parked_db.park(services.pool, event)
    except Exception as park_exc:
        if not parked_db.is_poison(park_exc):
            raise  # the database is in trouble: the flush fails and its events are retried
        parked_id = None
    log.error("status_event_parked" if parked_id is not None else "status_event_dropped",
              parked_id=parked_id, kind=event.kind, sid=event.sid, error=event.error,
              hint="the other events of its flush were applied; see the status_events_parked "
              "table")


async def _one_by_one(services: Services, batch: list[StatusWork], conn: FlushOn
                      ) -> db.FlushResult:
    """Apply a batch one event at a time (arrival order), parking each event the database
    refuses; a work's future is settled once all its events are applied or parked."""
    total = db.FlushResult()
    for work in batch:
        for item in work.items:
            with structlog.contextvars.bound_contextvars(**_event_context(item)):
                try:
                    inboxed = _for_inbox(work, item)
                    applied = await db.record_batch(conn, [] if inboxed else [item],
                                                    services.cfg.campaigns.delivery_wait_s,
                                                    inbox=[inboxed] if inboxed else [])
                except Exception as exc:
                    if not parked_db.is_poison(exc):
                        raise
                    await _park(services, item, exc)
                else:
                    _count_applied(services.metrics, [item], applied)
                    total.absorb(applied)
        _settle(work)
    return total


async def _record(services: Services, batch: list[StatusWork], conn: FlushOn
                  ) -> db.FlushResult:
    """One group commit; when the events make it fail, the one-at-a-time fallback."""
    items: list[SendOutcome | StatusCallback] = []
    inbox: list[StatusCallback] = []
    for work in batch:
        for item in work.items:
            if inboxed := _for_inbox(work, item):
                inbox.append(inboxed)
            else:
                items.append(item)
    try:
        result = await db.record_batch(conn, items, services.cfg.campaigns.delivery_wait_s,
                                       inbox=inbox)
    except Exception as exc:
        if not parked_db.is_poison(exc):
            raise
        log.warning("status_flush_failed_applying_one_by_one", events=len(items),
                    error=safe_text(f"{type(exc).__name__}: {exc}"))
    else:
        _count_applied(services.metrics, items, result)
        return result
    return await _one_by_one(services, batch, conn)


def waits_out_outage(work: StatusWork) -> bool:
    """True for work kept through a database outage (it carries a send outcome); the other
    work's producer is told at once and sends it again (see the module docstring)."""
    return any(isinstance(item, SendOutcome) for item in work.items)


async def flush(services: Services, batch: list[StatusWork],
                conn: FlushOn | None = None) -> db.FlushResult:
    """Apply one batch (on `conn`, else on a connection of the pool) and settle its futures
    (result after commit or parking, exception when the database failed); when the database
    is unreachable, the futures of work that waits out an outage stay pending, for the caller
    to flush that work again. A failed flush gives `conn`'s connection back to the pool."""
    started = time.perf_counter()
    try:
        result = await _record(services, batch, conn or services.pool)
    except BaseException as exc:
        kept = unreachable(exc)
        for work in batch:
            if kept and waits_out_outage(work):
                continue
            if work.done is not None and not work.done.done():
                work.done.set_exception(exc if isinstance(exc, Exception) else
                                        RuntimeError("status recorder stopped"))
        if isinstance(conn, db.FlushConnection):
            with contextlib.suppress(Exception):  # the flush's own error is what counts
                await conn.release()
        raise
    services.metrics.recorder_flushed(sum(len(work.items) for work in batch),
                                      time.perf_counter() - started)
    for work in batch:
        _settle(work)
    if result.inboxed:
        services.inbox_wake.set()  # the status folder applies them
    if result.outcomes_ignored:
        log.info("outcomes_ignored", count=len(result.outcomes_ignored),
                 message_ids=result.outcomes_ignored[:20],
                 reason="message no longer pending or in flight")
    status_folder.announce_applied(services, result)
    return result


async def flush_durably(services: Services, batch: list[StatusWork], outage: DatabaseWait,
                        conn: db.FlushConnection | None = None) -> None:
    """Flush batch (a list the caller owns: it holds what is not flushed yet); while the
    database is unreachable, drop the work whose futures failed, take in what is queued, wait
    and flush again, until the kept work lands. Raises any other failure."""
    queue = services.queues.status
    while batch:
        try:
            await run_to_end(flush(services, batch, conn), "status-flush")
        except Exception as exc:
            if not unreachable(exc):
                raise
            batch[:] = [work for work in batch if waits_out_outage(work)]
            await outage.pause(exc, events=sum(len(work.items) for work in batch))
            _take_ready(queue, batch, sum(len(work.items) for work in batch))
            continue
        outage.recovered()
        batch.clear()


async def _final_drain(services: Services, taken: list[StatusWork], outage: DatabaseWait,
                       conn: db.FlushConnection) -> None:
    """Flush everything queued until the queue is empty (the producers have stopped).

    A flush that failed for another reason than an outage has failed its own futures; the rest
    is still flushed.
    """
    queue = services.queues.status
    while taken or not queue.empty():
        if not taken:
            taken.append(queue.get_nowait())
        _take_ready(queue, taken, sum(len(work.items) for work in taken))
        try:
            await flush_durably(services, taken, outage, conn)
        except Exception as exc:
            log.error("final_flush_failed", events=sum(len(w.items) for w in taken),
                      error=repr(exc), exc_info=exc)
            taken.clear()


async def _final_fold(services: Services) -> None:
    """Apply what the final drain appended to the status inbox (the status folder may have
    returned before it), at most STOP_FOLDS folds; what is left stays durable for the next
    instance to start, or any running one."""
    try:
        await status_folder.drain(services, max_folds=STOP_FOLDS)
    except Exception as exc:
        log.warning("status_inbox_left_at_stop", error=repr(exc),
                    hint="durable in the status inbox: the next instance to start (or any "
                    "running one) applies it")


def _fail_unrecorded(taken: list[StatusWork], queue: asyncio.Queue[StatusWork]) -> None:
    """Fail the futures of work that will not be recorded (the recorder was cancelled)."""
    events = 0
    while not queue.empty():
        taken.append(queue.get_nowait())
    for work in taken:
        if work.done is not None and not work.done.done():
            events += len(work.items)
            work.done.set_exception(RuntimeError("status recorder stopped before recording"))
    if events:
        log.error("status_events_not_recorded_at_stop", events=events,
                  hint="cancelled after the grace period; the reconcile job finds them later")


async def run(services: Services, stopping: asyncio.Event) -> None:
    """Actor entry: flush batches until stop, then drain the queue until it is empty."""
    queue = services.queues.status
    poll_s = services.cfg.supervisor.poll_interval_s
    stop_wait = asyncio.ensure_future(stopping.wait())
    expected = 1  # events in the previous flush
    taken: list[StatusWork] = []  # taken off the queue, not yet durable
    outage = DatabaseWait("status_recorder")
    conn = db.FlushConnection(services.pool)
    try:
        while not stopping.is_set():
            get = asyncio.ensure_future(queue.get())
            try:
                await asyncio.wait({get, stop_wait}, timeout=poll_s,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not get.done():
                    get.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await get
                if get.done() and not get.cancelled():
                    taken.append(get.result())
            if taken:
                await _gather(queue, taken, expected)
                expected = sum(len(work.items) for work in taken)
                await flush_durably(services, taken, outage, conn)
            elif not stopping.is_set():
                await conn.release()  # idle for a poll interval
        await _final_drain(services, taken, outage, conn)
        await conn.release()
        await _final_fold(services)
    except asyncio.CancelledError:
        _fail_unrecorded(taken, queue)
        raise
    finally:
        await conn.release()
        stop_wait.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stop_wait
