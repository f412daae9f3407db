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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from aiolimiter import AsyncLimiter
from twilio.rest import Client

from onboardd.actors.waiting import drain_nudges, first_of
from onboardd.db import campaigns as db
from onboardd.db import delivery as delivery_db
from onboardd.domain import delivery
from onboardd.domain.campaigns import render
from onboardd.domain.campaigns.outcomes import Decision, decide, make_limiter
from onboardd.domain.phones import mask_phone
from onboardd.domain.status_events import SendOutcome, StatusWork
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.twilio.account import address, new_client
from onboardd.twilio.client import (
    ListedMessage,
    TwilioListError,
    TwilioTimeout,
    TwilioUnreachable,
    list_messages,
    send_message,
)

log = get_logger("dispatcher")

STATUS_CALLBACK_PATH: Final = "/api/webhooks/twilio/status"
# Outcomes handed to the recorder but not yet durable, at most (pushes back on sending).
MAX_UNDURABLE: Final = 5_000
# Outcomes per StatusWork, and how long a partial batch waits for company.
REPORT_BATCH: Final = 500
REPORT_LINGER_S: Final = 0.005
# Local buffer per channel: this many seconds of sending at the channel's rate.
BUFFER_SECONDS: Final = 2.0
MIN_BUFFER: Final = 10
# Clock skew allowed when matching a listed message to the attempt that created it.
RECONCILE_SKEW: Final = timedelta(seconds=5)
RECONCILE_LIMIT: Final = 20
# After the grace period ran out, how long handing the known outcomes to the recorder may take.
ABANDON_HANDOVER_S: Final = 1.0


def utcnow() -> datetime:
    """Timezone-aware now."""
    return datetime.now(UTC)


def pick_reconciled(listed: Iterable[ListedMessage], since: datetime,
                    offer_code: str | None) -> ListedMessage | None:
    """The listed message an attempt started at ``since`` created, if any.

    Same To and From (the list was filtered by both), created after the attempt began, and,
    when Twilio shows a body, carrying the customer's own offer code (another salon using the
    same sender cannot be mistaken for ours).
    """
    earliest = since - RECONCILE_SKEW
    for message in listed:
        if message.date_created is not None and message.date_created < earliest:
            continue
        if message.body and offer_code and offer_code not in message.body:
            continue
        return message
    return None


async def reconcile(client: Client, *, channel: str, phone: str, sender: str,
                    since: datetime, offer_code: str | None) -> str | None:
    """The SID of the message a cut-off attempt created, or None when Twilio has none.

    Raises TwilioTransportError / TwilioListError when Twilio cannot be asked.
    """
    listed = await list_messages(client, to=address(channel, phone), from_=sender,
                                 date_sent_after=since - RECONCILE_SKEW, limit=RECONCILE_LIMIT)
    found = pick_reconciled(listed, since, offer_code)
    return None if found is None else found.sid


@dataclass
class _Channel:
    """One channel and its sender: limiter, local buffer, pause after a 429."""

    name: str
    sender: str
    rate: float
    limiter: AsyncLimiter
    buffer: collections.deque[db.ClaimedMessage] = field(default_factory=collections.deque)
    paused_until: float = 0.0
    need: asyncio.Event = field(default_factory=asyncio.Event)
    filled: asyncio.Event = field(default_factory=asyncio.Event)

    claim_batch: int = 200

    @property
    def target(self) -> int:
        """Messages to hold locally: a couple of seconds of sending, at most two claims."""
        return max(MIN_BUFFER, min(int(self.rate * BUFFER_SECONDS), 2 * self.claim_batch))


class Dispatcher:
    """One dispatcher instance; ``run`` until the stop event, then hand back or finish."""

    def __init__(self, services: Services) -> None:
        self.services = services
        cfg = services.cfg
        self.pool = services.pool
        whatsapp, sms = render.senders(cfg.twilio.whatsapp_number, cfg.twilio.sms_number)
        self.channels = {
            "whatsapp": _Channel("whatsapp", whatsapp, cfg.twilio.whatsapp_rate_per_s,
                                 make_limiter(cfg.twilio.whatsapp_rate_per_s)),
            "sms": _Channel("sms", sms, cfg.twilio.sms_rate_per_s,
                            make_limiter(cfg.twilio.sms_rate_per_s)),
        }
        for channel in self.channels.values():
            channel.claim_batch = cfg.campaigns.claim_batch
        base = services.public_base_url.rstrip("/")
        self.status_callback = base + STATUS_CALLBACK_PATH if base else None
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
            try:
                await asyncio.shield(drain)
            except asyncio.CancelledError:
                await self._abandon(drain)
                raise

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

    # -- control: active campaigns, pauses, completion ---------------------------------------

    async def _watch(self, stopping: asyncio.Event) -> None:
        """Follow which campaigns are sending (nudges from the API, else a poll)."""
        queue = self.services.queues.campaigns
        poll = self.services.cfg.campaigns.dispatch_poll_s
        while not stopping.is_set():
            await first_of(queue.get(), stopping.wait(), poll_s=poll)
            drain_nudges(queue)
            await self.refresh()

    async def refresh(self) -> None:
        """Reload the sending campaigns, hand back buffered messages of paused ones, complete
        drained ones, and wake the claimers."""
        self.active = await db.sending_ids(self.pool)
        for channel in self.channels.values():
            dropped = [m.id for m in channel.buffer if m.campaign_id not in self.active]
            if dropped:
                kept = [m for m in channel.buffer if m.campaign_id in self.active]
                channel.buffer = collections.deque(kept)
                await db.release(self.pool, dropped, utcnow())
            channel.need.set()
        wait_s = self.services.cfg.campaigns.delivery_wait_s
        for campaign_id in await delivery_db.complete_campaigns(self.pool, wait_s):
            log.info("campaign_completed", campaign_id=campaign_id)

    # -- claiming ----------------------------------------------------------------------------

    async def _claim_loop(self, channel: _Channel, stopping: asyncio.Event) -> None:
        """Keep the channel's buffer filled with leased messages."""
        cfg = self.services.cfg
        poll = cfg.campaigns.dispatch_poll_s
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await first_of(stopping.wait(), channel.need.wait())
            channel.need.clear()
            if stopping.is_set() or self._paused(channel):
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
                skip = _pre_skip(message)
                if skip is None:
                    sendable.append(message)
                else:
                    await self._report(skip)
            channel.buffer.extend(_round_robin(sendable))
            channel.filled.set()
            if len(claimed) == want:
                channel.need.set()  # probably more due: top up at once

    # -- sending -----------------------------------------------------------------------------

    def _paused(self, channel: _Channel) -> bool:
        return channel.paused_until > asyncio.get_running_loop().time()

    async def _feed_loop(self, channel: _Channel, stopping: asyncio.Event) -> None:
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
            if stopping.is_set() or self._paused(channel) or not channel.buffer:
                self.in_flight.release()
                continue
            message = channel.buffer.popleft()
            task = asyncio.create_task(self._send(channel, message), name=f"send-{message.id}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _send(self, channel: _Channel, message: db.ClaimedMessage) -> None:
        """One attempt for one message; its outcome goes to the recorder."""
        try:
            outcome = await self._attempt(channel, message)
            if outcome is not None:
                await self._report(outcome)
        except Exception as exc:
            # The row keeps its lease: the sweep reconciles it, nothing is resent blindly.
            log.error("send_crashed", message_id=message.id, error=repr(exc), exc_info=exc)
        finally:
            self.in_flight.release()

    async def _attempt(self, channel: _Channel, message: db.ClaimedMessage
                       ) -> SendOutcome | None:
        """Send and classify; None when the message was handed back or left to the sweep."""
        assert self.client is not None
        cfg = self.services.cfg
        phone = self.services.cipher.decrypt(message.normalized_phone_enc, "phone")
        offer = None
        if message.discount_type is not None and message.discount_value is not None:
            offer = render.OfferTerms(message.discount_type, message.discount_value,
                                      message.validity_days or cfg.offers.invitation_expiry_days)
        ctx = render.context(
            customer_name=message.customer_name, salon_name=message.salon_name, offer=offer,
            offer_code=message.offer_code or "", app_link=message.app_download_link,
            token=message.download_token or "",
            default_expiry_days=cfg.offers.invitation_expiry_days)
        out = render.outgoing(channel=channel.name, sender=channel.sender, phone=phone,
                              template=message.message_template,
                              content_sid=message.whatsapp_content_sid, ctx=ctx)
        started = utcnow()
        try:
            result = await send_message(
                self.client, from_=out.from_, to=out.to, body=out.body,
                content_sid=out.content_sid, content_variables=out.content_variables,
                status_callback=self.status_callback)
        except TwilioUnreachable:
            return self._after_refusal(channel, message, None, None, None, None)
        except TwilioTimeout:
            return await self._after_timeout(channel, message, phone, started)
        if result.accepted:
            return SendOutcome(message_id=message.id, outcome="accepted", at=utcnow(),
                               channel=channel.name, sid=result.sid, sender=channel.sender)
        return self._after_refusal(channel, message, result.http_status, result.error_code,
                                   result.error_message, result.retry_after_s)

    async def _after_timeout(self, channel: _Channel, message: db.ClaimedMessage, phone: str,
                             started: datetime) -> SendOutcome | None:
        """The request may have reached Twilio: look for it before any retry."""
        assert self.client is not None
        try:
            sid = await reconcile(self.client, channel=channel.name, phone=phone,
                                  sender=channel.sender, since=started,
                                  offer_code=message.offer_code)
        except (TwilioTimeout, TwilioUnreachable, TwilioListError) as exc:
            log.warning("reconcile_deferred", message_id=message.id, error=str(exc),
                        to=mask_phone(phone))
            return None  # still leased: the lease sweep asks Twilio again later
        if sid is not None:
            log.info("reconciled_after_timeout", message_id=message.id, sid=sid)
            return SendOutcome(message_id=message.id, outcome="accepted", at=utcnow(),
                               channel=channel.name, sid=sid, sender=channel.sender)
        return self._after_refusal(channel, message, None, None, "request timed out", None)

    def _after_refusal(self, channel: _Channel, message: db.ClaimedMessage,
                       http_status: int | None, code: int | None, text: str | None,
                       retry_after_s: float | None) -> SendOutcome | None:
        """Turn a refusal into an outcome (or a channel pause and a hand-back)."""
        cfg = self.services.cfg
        decision = decide(http_status=http_status, code=code, attempts=message.attempts + 1,
                          max_attempts=cfg.twilio.max_attempts, channel=channel.name,
                          campaign_channel=message.campaign_channel,
                          retry_after_s=retry_after_s,
                          rate_limit_pause_s=cfg.twilio.rate_limit_pause_s, rng=self.rng)
        if decision.action == "rate_limited":
            self._pause_channel(channel, decision.delay_s, message)
            return None
        return _outcome(message, channel.name, channel.sender, decision, code,
                        delivery.error_message(code, text or _http_text(http_status)))

    def _pause_channel(self, channel: _Channel, delay_s: float,
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


def _pre_skip(message: db.ClaimedMessage) -> SendOutcome | None:
    """Skip without sending: opted out of this sender, or invited by the salon recently."""
    if message.opted_out:
        return SendOutcome(message_id=message.id, outcome="skipped", at=utcnow(),
                           channel=message.channel, sender=message.sender,
                           skip_reason="opted_out", opted_out=True)
    if message.recently_invited:
        return SendOutcome(message_id=message.id, outcome="skipped", at=utcnow(),
                           channel=message.channel, sender=message.sender,
                           skip_reason="recently_invited")
    return None


def _http_text(status: int | None) -> str:
    return "no response from Twilio" if status is None else f"HTTP {status}"


def _outcome(message: db.ClaimedMessage, channel: str, sender: str, decision: Decision,
             code: int | None, text: str | None) -> SendOutcome:
    """The SendOutcome of a decision."""
    now = utcnow()
    if decision.action == "retry":
        return SendOutcome(message_id=message.id, outcome="retry", at=now, channel=channel,
                           sender=sender, error_code=code, error_message=text,
                           next_attempt_at=now + timedelta(seconds=decision.delay_s))
    if decision.action == "fallback":
        return SendOutcome(message_id=message.id, outcome="fallback", at=now, channel="sms",
                           sender=sender, error_code=code, error_message=text,
                           next_attempt_at=now)
    if decision.action == "skipped":
        return SendOutcome(message_id=message.id, outcome="skipped", at=now, channel=channel,
                           sender=sender, error_code=code, error_message=text,
                           skip_reason=decision.skip_reason, opted_out=decision.opted_out)
    return SendOutcome(message_id=message.id, outcome="failed", at=now, channel=channel,
                       sender=sender, error_code=code, error_message=text)


def _round_robin(messages: list[db.ClaimedMessage]) -> list[db.ClaimedMessage]:
    """Interleave campaigns so that no salon waits behind another's whole batch."""
    by_campaign: dict[str, collections.deque[db.ClaimedMessage]] = {}
    for message in messages:
        by_campaign.setdefault(message.campaign_id, collections.deque()).append(message)
    queues = list(by_campaign.values())
    ordered: list[db.ClaimedMessage] = []
    while queues:
        for queue in queues:
            ordered.append(queue.popleft())
        queues = [q for q in queues if q]
    return ordered


async def run(services: Services, stopping: asyncio.Event) -> None:
    """Actor entry."""
    await Dispatcher(services).run(stopping)
