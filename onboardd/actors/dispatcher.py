"""The dispatcher actor: leases due invitation messages and sends them through Twilio.

Per channel (one sender each) a claimer keeps a small local buffer filled from the database
(``FOR UPDATE SKIP LOCKED``, a fair share per sending campaign, leased with ``claimed_until`` to
this instance, each row under a new claim token) and a feeder starts one request per limiter
token, bounded by ``max_in_flight`` and by a hard cap of the sender's rate in any one second.
A channel sends only while this instance owns its sender (onboardd.cluster.membership: one
instance per sender across every daemon on the database, so the rate is the sender's, not the
instance's); it hands its buffer back when the sender goes elsewhere. The leases of what it
still holds are renewed, so a slow send is never taken over; what it gives up on (Twilio could
not be asked about a cut-off request) has its lease ended for the sweep. The database being
unreachable stops claiming, not the actor: the claimer backs off and sends in flight finish. Each
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
from collections.abc import Awaitable, Iterable
from datetime import datetime, timedelta
from typing import Final, TypeVar

from structlog.contextvars import bound_contextvars
from twilio.rest import Client

from onboardd.actors import sending
from onboardd.actors.reporting import REPORT_LINGER_S, Reporter
from onboardd.actors.sending import Channel, HandBack, RateLimited, utcnow
from onboardd.actors.waiting import drain_nudges, first_of, settle
from onboardd.cluster.membership import sender_key
from onboardd.db import campaigns as db
from onboardd.db.pool import CONNECTION_ERRORS
from onboardd.domain.campaigns import render
from onboardd.domain.campaigns.outcomes import SendWindow, make_limiter
from onboardd.domain.sending_hours import SendingHours, is_open, zone
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.twilio.account import new_client, status_callback_url

log = get_logger("dispatcher")

T = TypeVar("T")

# After the grace period ran out, how long handing the known outcomes to the recorder may take.
ABANDON_HANDOVER_S: Final = 1.0
# The one-second cap counts over a slightly longer window. It stamps each request as its bytes
# go to the socket; between there and the far side's own clock (the kernel, the network, the
# receiver's run queue on a loaded machine) the spacing can still shrink a little, which could
# otherwise push one request into the next second. Costs 4 % of the rate.
WIRE_MARGIN_S: Final = 0.04
# Leases of held messages are renewed this often, as a share of [campaigns] lease_s.
RENEW_SHARE: Final = 0.25


class Dispatcher:
    """One dispatcher instance; ``run`` until the stop event, then hand back or finish."""

    def __init__(self, services: Services) -> None:
        self.services = services
        cfg = services.cfg
        self.pool = services.pool
        whatsapp, sms = render.senders(cfg.twilio.whatsapp_number, cfg.twilio.sms_number)
        batch = cfg.campaigns.claim_batch
        self.membership = services.membership
        self.channels = {
            name: Channel(name, sender, rate, make_limiter(rate), batch,
                          SendWindow(rate, 1.0 + WIRE_MARGIN_S), sender_key(name, sender))
            for name, sender, rate in (("whatsapp", whatsapp, cfg.twilio.whatsapp_rate_per_s),
                                       ("sms", sms, cfg.twilio.sms_rate_per_s))
        }
        self.membership.busy = self._busy
        self.status_callback = status_callback_url(services)
        self.in_flight = asyncio.Semaphore(cfg.twilio.max_in_flight)
        self.active: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        # Messages whose request is in flight (their leases are renewed with the buffer's).
        self.sending: dict[str, db.ClaimedMessage] = {}
        self.db_down = False
        self.reporter = Reporter(services.queues.status)
        self.rng = random.Random()
        self.client: Client | None = None
        self.default_hours = cfg.campaigns.sending_hours()

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Claim and send until stop; then hand back unsent work and wait for durability."""
        self.client = new_client(self.services)
        # twilio imports its API modules on first use: do it now, not while the first request
        # holds a limiter slot (a late first request bunches up with the following ones).
        _ = self.client.messages
        try:
            self.active = await self._db("sending_ids", db.sending_ids(self.pool), set())
            async with asyncio.TaskGroup() as group:
                group.create_task(self._watch(stopping), name="dispatcher-watch")
                group.create_task(self.reporter.flush_loop(stopping), name="dispatcher-report")
                group.create_task(self._renew_loop(stopping), name="dispatcher-renew")
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
        cut_off = list(self.sending.values())
        for task in sends:
            task.cancel()
        await asyncio.gather(drain, *sends, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ABANDON_HANDOVER_S):
                await self.reporter.flush()
                # Their lease ends now, so that the sweep asks Twilio about them without waiting
                # for lease_s even if this instance lives on (the actor restarts).
                await self._db("expire", db.expire_lease(self.pool, cut_off), None)
        if self.reporter.outcomes:
            log.warning("outcomes_not_handed_over_at_stop", count=len(self.reporter.outcomes))
        if sends:
            log.warning("sends_abandoned_at_stop", count=len(sends),
                        hint="left under their lease; the lease sweep reconciles them")
        if self.client is not None:
            await self.client.http_client.close()

    async def _drain(self) -> None:
        """Hand back buffered messages, let in-flight sends finish, wait for their durability.
        The database may be down meanwhile: what cannot be handed back stays leased to this
        instance and is taken over once it has stopped."""
        try:
            for channel in self.channels.values():
                await self._hand_back(channel)
            while self.tasks:
                # Report as sends finish (the recorder is still running: it stops after us).
                await asyncio.wait(set(self.tasks), timeout=REPORT_LINGER_S * 20)
                await self.reporter.flush()
            await self.reporter.flush()
            if self.reporter.futures:
                grace = self.services.cfg.supervisor.shutdown_grace_s
                _done, late = await asyncio.wait(set(self.reporter.futures), timeout=grace)
                if late:
                    # Their work is queued: the recorder, stopping after us, still drains it.
                    log.warning("outcomes_not_durable_within_grace", batches=len(late))
        finally:
            if self.tasks:  # never close the client under a request in flight
                await asyncio.wait(set(self.tasks))
            if self.client is not None:
                await self.client.http_client.close()

    async def _db(self, what: str, write: Awaitable[T], default: T) -> T:
        """A database statement of the loops; while the database is unreachable it is skipped
        (logged once per outage) and ``default`` returned: the rows stay leased to us."""
        try:
            result = await write
        except CONNECTION_ERRORS as exc:
            if not self.db_down:
                log.warning("dispatcher_database_unavailable", during=what,
                            error=f"{type(exc).__name__}: {exc}")
            self.db_down = True
            return default
        if self.db_down:
            log.info("dispatcher_database_back")
            self.db_down = False
        return result

    async def _hand_back(self, channel: Channel, not_before: datetime | None = None,
                         also: Iterable[db.ClaimedMessage] = ()) -> None:
        """Release the channel's buffer (and ``also``) for any dispatcher to claim."""
        unsent = [*also, *channel.buffer]
        channel.buffer.clear()
        if unsent:
            await self._db("release", db.release(self.pool, unsent, not_before or utcnow()),
                           None)

    # -- control: active campaigns, pauses, lease renewal ------------------------------------

    def _busy(self, key: str) -> bool:
        """Whether the sender has work in hand here (buffered or in flight)."""
        channel = next((c for c in self.channels.values() if c.key == key), None)
        if channel is None:
            return False
        return bool(channel.buffer) or any(m.channel == channel.name
                                           for m in self.sending.values())

    async def _watch(self, stopping: asyncio.Event) -> None:
        """Follow which campaigns are sending (nudges from the API, else a poll)."""
        queue = self.services.queues.campaigns
        poll = self.services.cfg.campaigns.dispatch_poll_s
        while not stopping.is_set():
            await self.refresh()
            await first_of(queue.get(), stopping.wait(), poll_s=poll)
            drain_nudges(queue)

    async def refresh(self) -> None:
        """Reload the sending campaigns, hand back buffered messages of paused ones, and wake
        the claimers. (Completion is not ours: the recorder completes a campaign when it
        records its last settlement, the periodic delivery job when the delivery wait ran
        out.)"""
        active = await self._db("sending_ids", db.sending_ids(self.pool), None)
        if active is None:
            return
        self.active = active
        for channel in self.channels.values():
            dropped = [m for m in channel.buffer if m.campaign_id not in self.active]
            if dropped:
                channel.buffer = collections.deque(
                    m for m in channel.buffer if m.campaign_id in self.active)
                await self._db("release", db.release(self.pool, dropped, utcnow()), None)
            channel.need.set()

    async def _renew_loop(self, stopping: asyncio.Event) -> None:
        """Extend the leases of every message still held (buffered or in flight)."""
        lease_s = self.services.cfg.campaigns.lease_s
        while not stopping.is_set():
            await first_of(stopping.wait(), poll_s=lease_s * RENEW_SHARE)
            held = [*self.sending.values(),
                    *(m for c in self.channels.values() for m in c.buffer)]
            await self._db("renew", db.renew(self.pool, held, lease_s), None)

    # -- claiming ----------------------------------------------------------------------------

    async def _claim_loop(self, channel: Channel, stopping: asyncio.Event) -> None:
        """Keep the channel's buffer filled with leased messages while we own its sender."""
        cfg = self.services.cfg
        poll = cfg.campaigns.dispatch_poll_s
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await first_of(stopping.wait(), channel.need.wait(),
                                   self.membership.changed.wait())
            channel.need.clear()
            instance = self.membership.instance_id
            if (stopping.is_set() or channel.paused() or instance is None
                    or not self.membership.owns(channel.key)):
                continue
            want = min(channel.target - len(channel.buffer), cfg.campaigns.claim_batch)
            if want < max(1, min(channel.target, cfg.campaigns.claim_batch) // 4):
                continue
            claimed = await self._db("claim", db.claim(
                self.pool, channel=channel.name, limit=want, lease_s=cfg.campaigns.lease_s,
                whatsapp_sender=self.channels["whatsapp"].sender,
                sms_sender=self.channels["sms"].sender,
                resend_window_h=cfg.campaigns.resend_window_h, instance_id=instance,
                hours=self.default_hours), [])
            if not claimed:
                continue
            sendable: list[db.ClaimedMessage] = []
            for message in claimed:
                skip = sending.pre_skip(message)
                if skip is None:
                    sendable.append(message)
                else:
                    await self.reporter.report(skip)
            channel.buffer.extend(sending.round_robin(sendable))
            channel.filled.set()
            if len(claimed) == want:
                channel.need.set()  # probably more due: top up at once

    # -- sending -----------------------------------------------------------------------------

    async def _feed_loop(self, channel: Channel, stopping: asyncio.Event) -> None:
        """Start one send per limiter token, within the in-flight bound and the one-second cap,
        while this instance may send from the channel's sender."""
        loop = asyncio.get_running_loop()
        poll = self.services.cfg.campaigns.dispatch_poll_s
        while not stopping.is_set():
            pause = channel.paused_until - loop.time()
            if pause > 0:
                await first_of(stopping.wait(), poll_s=pause)
                continue
            delay = self.membership.send_delay(channel.key)
            if delay is None or delay > 0:
                if delay is None and channel.buffer:
                    # The sender is someone else's now (or we lost the database session).
                    await self._hand_back(channel)
                await first_of(stopping.wait(), self.membership.changed.wait(),
                               poll_s=poll if delay is None else delay)
                continue
            while channel.buffer and (channel.buffer[0].campaign_id not in self.active
                                      or not window_open(channel.buffer[0])):
                dropped = channel.buffer.popleft()
                await self._db("release", db.release(self.pool, [dropped], utcnow()), None)
            if not channel.buffer:
                channel.filled.clear()
                channel.need.set()
                await first_of(stopping.wait(), channel.filled.wait(), poll_s=poll)
                continue
            if len(channel.buffer) < channel.target // 2:
                channel.need.set()
            await self._start_one(channel, stopping)

    async def _start_one(self, channel: Channel, stopping: asyncio.Event) -> None:
        """Wait for a token and a free slot; start the next send unless the channel may no
        longer send."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        await channel.limiter.acquire()
        await self.in_flight.acquire()
        self.services.metrics.limiter_waited(channel.name, loop.time() - started)
        if (stopping.is_set() or channel.paused() or not channel.buffer
                or not self.membership.may_send(channel.key)):
            self.in_flight.release()
            return
        message = channel.buffer.popleft()
        self.sending[message.id] = message
        task = asyncio.create_task(self._send(channel, message), name=f"send-{message.id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, channel: Channel, message: db.ClaimedMessage) -> None:
        """One attempt for one message (its own task, so its log lines carry its ids); the
        outcome goes to the recorder."""
        assert self.client is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        with bound_contextvars(campaign_id=message.campaign_id, message_id=message.id):
            try:
                slot = sending.Slot(channel, functools.partial(self._may_send, channel, message))
                try:
                    result = await sending.attempt(self.services, self.client, channel,
                                                   message, self.status_callback, self.rng,
                                                   slot)
                finally:
                    slot.close()
                self.services.metrics.send_finished(channel.name, loop.time() - started)
                if isinstance(result, RateLimited):
                    self._pause_channel(channel, result.delay_s, message)
                elif isinstance(result, HandBack):
                    await self._db("release", db.release(self.pool, [message], utcnow()), None)
                elif result is not None:
                    await self.reporter.report(result)
                else:  # Twilio could not be asked: the sweep asks it again
                    await self._db("expire", db.expire_lease(self.pool, [message]), None)
            except Exception as exc:
                # The row stays leased: its lease ends now and the sweep reconciles it, so
                # nothing is resent blindly.
                log.error("send_crashed", error=repr(exc), exc_info=exc)
                await self._db("expire", db.expire_lease(self.pool, [message]), None)
            finally:
                self.sending.pop(message.id, None)
                self.in_flight.release()

    def _may_send(self, channel: Channel, message: db.ClaimedMessage) -> bool:
        """Asked right before a request is reserved and written: the sender is still ours and
        the salon's sending window still open (a request already written finishes)."""
        return self.membership.may_send(channel.key) and window_open(message)

    def _pause_channel(self, channel: Channel, delay_s: float,
                       message: db.ClaimedMessage) -> None:
        """Twilio said slow down: stop the channel, hand its buffer back until the pause ends."""
        loop = asyncio.get_running_loop()
        until = loop.time() + delay_s
        if until > channel.paused_until:
            channel.paused_until = until
            log.warning("channel_rate_limited", channel=channel.name, pause_s=round(delay_s, 2))
            self.services.metrics.rate_limit_paused(channel.name)
        not_before = utcnow() + timedelta(seconds=delay_s)
        task = asyncio.create_task(self._hand_back(channel, not_before, also=[message]),
                                   name="release")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


def window_open(message: db.ClaimedMessage) -> bool:
    """Whether the message's salon is inside its sending window now (as claimed; quiet hours,
    onboardd.domain.sending_hours)."""
    hours = SendingHours(message.window_start_s, message.window_end_s)
    return is_open(hours, zone(message.window_timezone), utcnow())


async def run(services: Services, stopping: asyncio.Event) -> None:
    """Actor entry."""
    await Dispatcher(services).run(stopping)
