"""The dispatcher actor: leases due invitation messages and sends them through Twilio.

Per channel (one sender each) a claimer keeps a small local buffer filled from the database
(``FOR UPDATE SKIP LOCKED``, a fair share per sending campaign, leased with ``claimed_until``)
and a feeder starts one request per limiter token, bounded by ``max_in_flight``. Each
attempt's result goes to the status recorder as a ``SendOutcome``, in batches; the recorder
makes it durable and resolves the batch's future. Nothing is sent twice blindly: a request
that may have reached Twilio (timeout, crash) is looked up in Twilio's Messages list first.

On stop it hands back its buffered messages, lets the sends in flight finish and waits until
their outcomes are durable: the status recorder is stopped only after the dispatcher returned.
If the grace period runs out first (the supervisor cancels it), the sends still in flight are
abandoned under their lease (the lease sweep asks Twilio about them) and the outcomes already
known are still handed to the recorder, which drains its queue after us.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import random
from datetime import timedelta
from typing import Final

from structlog.contextvars import bound_contextvars
from twilio.rest import Client

from onboardd.actors import sending
from onboardd.actors.sending import Channel, RateLimited, utcnow
from onboardd.actors.waiting import drain_nudges, first_of, settle
from onboardd.db import campaigns as db
from onboardd.domain.campaigns import render
from onboardd.domain.campaigns.outcomes import make_limiter
from onboardd.domain.status_events import SendOutcome, StatusWork
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.twilio.account import new_client, status_callback_url

log = get_logger("dispatcher")

# Outcomes handed to the recorder but not yet durable, at most (pushes back on sending).
MAX_UNDURABLE: Final = 5_000
# Outcomes per StatusWork, and how long a partial batch waits for company.
REPORT_BATCH: Final = 500
REPORT_LINGER_S: Final = 0.005
# After the grace period ran out, how long handing the known outcomes to the recorder may take.
ABANDON_HANDOVER_S: Final = 1.0


class Dispatcher:
    """One dispatcher instance; ``run`` until the stop event, then hand back or finish."""

    def __init__(self, services: Services) -> None:
        self.services = services
        cfg = services.cfg
        self.pool = services.pool
        whatsapp, sms = render.senders(cfg.twilio.whatsapp_number, cfg.twilio.sms_number)
        batch = cfg.campaigns.claim_batch
        self.channels = {
            "whatsapp": Channel("whatsapp", whatsapp, cfg.twilio.whatsapp_rate_per_s,
                                make_limiter(cfg.twilio.whatsapp_rate_per_s), batch),
            "sms": Channel("sms", sms, cfg.twilio.sms_rate_per_s,
                           make_limiter(cfg.twilio.sms_rate_per_s), batch),
        }
        self.status_callback = status_callback_url(services)
        self.in_flight = asyncio.Semaphore(cfg.twilio.max_in_flight)
        self.undurable = asyncio.Semaphore(MAX_UNDURABLE)
        self.active: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.outcomes: list[SendOutcome] = []
        self.has_outcomes = asyncio.Event()
        self.futures: set[asyncio.Future[None]] = set()
        self.rng = random.Random()
        self.client: Client | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Claim and send until stop; then hand back unsent work and wait for durability."""
        self.client = new_client(self.services)
        # twilio imports its API modules on first use: do it now, not while the first request
        # holds a limiter slot (a late first request bunches up with the following ones).
        _ = self.client.messages
        try:
            self.active = await db.sending_ids(self.pool)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._watch(stopping), name="dispatcher-watch")
                group.create_task(self._flush_loop(stopping), name="dispatcher-report")
                for channel in self.channels.values():
                    group.create_task(self._claim_loop(channel, stopping),
                                      name=f"dispatcher-claim-{channel.name}")
                    group.create_task(self._feed_loop(channel, stopping),
                                      name=f"dispatcher-feed-{channel.name}")
        finally:
            drain = asyncio.create_task(self._drain(), name="dispatcher-drain")
            await settle(drain, on_cancel=self._abandon)

    async def _abandon(self, drain: asyncio.Task[None]) -> None:
        """The grace period ran out: stop the drain and the sends in flight (their rows keep
        their lease, so the sweep reconciles them with Twilio), hand what is known to the
        recorder and close the client. Nothing of ours runs on after this returns."""
        drain.cancel()
        sends = list(self.tasks)
        for task in sends:
            task.cancel()
        await asyncio.gather(drain, *sends, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ABANDON_HANDOVER_S):
                await self._flush()
        if self.outcomes:
            log.warning("outcomes_not_handed_over_at_stop", count=len(self.outcomes))
        if sends:
            log.warning("sends_abandoned_at_stop", count=len(sends),
                        hint="left under their lease; the lease sweep reconciles them")
        if self.client is not None:
            await self.client.http_client.close()

    async def _drain(self) -> None:
        """Hand back buffered messages, let in-flight sends finish, wait for their durability."""
        try:
            for channel in self.channels.values():
                unsent = [m.id for m in channel.buffer]
                channel.buffer.clear()
                await db.release(self.pool, unsent, utcnow())
            while self.tasks:
                # Report as sends finish (the recorder is still running: it stops after us).
                await asyncio.wait(set(self.tasks), timeout=REPORT_LINGER_S * 20)
                await self._flush()
            await self._flush()
            if self.futures:
                grace = self.services.cfg.supervisor.shutdown_grace_s
                _done, late = await asyncio.wait(set(self.futures), timeout=grace)
                if late:
                    # Their work is queued: the recorder, stopping after us, still drains it.
                    log.warning("outcomes_not_durable_within_grace", batches=len(late))
        finally:
            if self.client is not None:
                await self.client.http_client.close()

    # -- control: active campaigns and pauses ------------------------------------------------

    async def _watch(self, stopping: asyncio.Event) -> None:
        """Follow which campaigns are sending (nudges from the API, else a poll)."""
        queue = self.services.queues.campaigns
        poll = self.services.cfg.campaigns.dispatch_poll_s
        while not stopping.is_set():
            await first_of(queue.get(), stopping.wait(), poll_s=poll)
            drain_nudges(queue)
            await self.refresh()

    async def refresh(self) -> None:
        """Reload the sending campaigns, hand back buffered messages of paused ones, and wake
        the claimers. (Completion is not ours: the recorder completes a campaign when it
        records its last settlement, the periodic delivery job when the delivery wait ran
        out.)"""
        self.active = await db.sending_ids(self.pool)
        for channel in self.channels.values():
            dropped = [m.id for m in channel.buffer if m.campaign_id not in self.active]
            if dropped:
                kept = [m for m in channel.buffer if m.campaign_id in self.active]
                channel.buffer = collections.deque(kept)
                await db.release(self.pool, dropped, utcnow())
            channel.need.set()

    # -- claiming ----------------------------------------------------------------------------

    async def _claim_loop(self, channel: Channel, stopping: asyncio.Event) -> None:
        """Keep the channel's buffer filled with leased messages."""
        cfg = self.services.cfg
        poll = cfg.campaigns.dispatch_poll_s
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await first_of(stopping.wait(), channel.need.wait())
            channel.need.clear()
            if stopping.is_set() or channel.paused():
                continue
            want = min(channel.target - len(channel.buffer), cfg.campaigns.claim_batch)
            if want < max(1, min(channel.target, cfg.campaigns.claim_batch) // 4):
                continue
            claimed = await db.claim(
                self.pool, channel=channel.name, limit=want, lease_s=cfg.campaigns.lease_s,
                whatsapp_sender=self.channels["whatsapp"].sender,
                sms_sender=self.channels["sms"].sender,
                resend_window_h=cfg.campaigns.resend_window_h)
            if not claimed:
                continue
            sendable: list[db.ClaimedMessage] = []
            for message in claimed:
                skip = sending.pre_skip(message)
                if skip is None:
                    sendable.append(message)
                else:
                    await self._report(skip)
            channel.buffer.extend(sending.round_robin(sendable))
            channel.filled.set()
            if len(claimed) == want:
                channel.need.set()  # probably more due: top up at once

    # -- sending -----------------------------------------------------------------------------

    async def _feed_loop(self, channel: Channel, stopping: asyncio.Event) -> None:
        """Start one send per limiter token, within the in-flight bound."""
        loop = asyncio.get_running_loop()
        while not stopping.is_set():
            pause = channel.paused_until - loop.time()
            if pause > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await stopping.wait()
                continue
            while channel.buffer and channel.buffer[0].campaign_id not in self.active:
                dropped = channel.buffer.popleft()
                await db.release(self.pool, [dropped.id], utcnow())
            if not channel.buffer:
                channel.filled.clear()
                channel.need.set()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.services.cfg.campaigns.dispatch_poll_s):
                        await first_of(stopping.wait(), channel.filled.wait())
                continue
            if len(channel.buffer) < channel.target // 2:
                channel.need.set()
            await channel.limiter.acquire()
            await self.in_flight.acquire()
            if stopping.is_set() or channel.paused() or not channel.buffer:
                self.in_flight.release()
                continue
            message = channel.buffer.popleft()
            task = asyncio.create_task(self._send(channel, message), name=f"send-{message.id}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _send(self, channel: Channel, message: db.ClaimedMessage) -> None:
        """One attempt for one message (its own task, so its log lines carry its ids); the
        outcome goes to the recorder."""
        assert self.client is not None
        with bound_contextvars(campaign_id=message.campaign_id, message_id=message.id):
            try:
                result = await sending.attempt(self.services, self.client, channel, message,
                                               self.status_callback, self.rng)
                if isinstance(result, RateLimited):
                    self._pause_channel(channel, result.delay_s, message)
                elif result is not None:
                    await self._report(result)
            except Exception as exc:
                # The row keeps its lease: the sweep reconciles it, nothing is resent blindly.
                log.error("send_crashed", error=repr(exc), exc_info=exc)
            finally:
                self.in_flight.release()

    def _pause_channel(self, channel: Channel, delay_s: float,
                       message: db.ClaimedMessage) -> None:
        """Twilio said slow down: stop the channel, hand its buffer back until the pause ends."""
        loop = asyncio.get_running_loop()
        until = loop.time() + delay_s
        if until > channel.paused_until:
            channel.paused_until = until
            log.warning("channel_rate_limited", channel=channel.name, pause_s=round(delay_s, 2))
        not_before = utcnow() + timedelta(seconds=delay_s)
        ids = [message.id, *(m.id for m in channel.buffer)]
        channel.buffer.clear()
        task = asyncio.create_task(db.release(self.pool, ids, not_before), name="release")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # -- reporting ---------------------------------------------------------------------------

    async def _report(self, outcome: SendOutcome) -> None:
        """Queue an outcome for the recorder (waits when too many are not yet durable)."""
        await self.undurable.acquire()
        self.outcomes.append(outcome)
        self.has_outcomes.set()

    async def _flush_loop(self, stopping: asyncio.Event) -> None:
        """Hand outcomes to the recorder in batches (group commit on its side)."""
        while not stopping.is_set():
            await first_of(stopping.wait(), self.has_outcomes.wait())
            if len(self.outcomes) < REPORT_BATCH:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(REPORT_LINGER_S):
                        await stopping.wait()
            await self._flush()

    async def _flush(self) -> None:
        """Put every queued outcome on the status queue."""
        while self.outcomes:
            batch, self.outcomes = self.outcomes[:REPORT_BATCH], self.outcomes[REPORT_BATCH:]
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            try:
                await self.services.queues.status.put(StatusWork(items=list(batch), done=done))
            except asyncio.CancelledError:
                self.outcomes[:0] = batch  # not handed over: keep it for the next flush
                raise
            self.futures.add(done)
            done.add_done_callback(functools.partial(self._durable, count=len(batch)))
        self.has_outcomes.clear()

    def _durable(self, fut: asyncio.Future[None], count: int) -> None:
        self.futures.discard(fut)
        for _ in range(count):
            self.undurable.release()
        if not fut.cancelled() and fut.exception() is not None:
            log.error("outcomes_not_recorded", count=count, error=repr(fut.exception()))


async def run(services: Services, stopping: asyncio.Event) -> None:
    """Actor entry."""
    await Dispatcher(services).run(stopping)
