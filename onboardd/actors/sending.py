"""One channel of the dispatcher and one send attempt on it: render, send, classify.

``attempt`` turns a leased message into what the dispatcher does next: a ``SendOutcome`` for
the recorder, a ``RateLimited`` pause of the whole channel, or None when the message stays
under its lease (Twilio could not be asked whether a cut-off request reached it: the lease
sweep asks later). A request that may have reached Twilio is looked up with the one rule of
onboardd.twilio.reconcile before any retry, so nobody is messaged twice.
"""

from __future__ import annotations

import asyncio
import collections
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiolimiter import AsyncLimiter
from twilio.rest import Client

from onboardd.db import campaigns as db
from onboardd.domain import delivery
from onboardd.domain.campaigns import render
from onboardd.domain.campaigns.outcomes import Decision, SendWindow, decide
from onboardd.domain.phones import mask_phone
from onboardd.domain.status_events import OutcomeKind, SendOutcome
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.twilio.client import (
    SendWithdrawn,
    TwilioListError,
    TwilioTimeout,
    TwilioTransportError,
    TwilioUnreachable,
    send_message,
)
from onboardd.twilio.reconcile import Attempt, find_send

log = get_logger("dispatcher")

# Local buffer per channel: this many seconds of sending at the channel's rate.
BUFFER_SECONDS: Final = 2.0
MIN_BUFFER: Final = 10


def utcnow() -> datetime:
    """Timezone-aware now."""
    return datetime.now(UTC)


@dataclass
class Channel:
    """One channel and its sender: limiter, hard one-second cap, local buffer, pause after a
    429. ``key`` names the sender for ownership (onboardd.cluster.membership)."""

    name: str
    sender: str
    rate: float
    limiter: AsyncLimiter
    claim_batch: int
    window: SendWindow
    key: str
    gate: asyncio.Lock = field(default_factory=asyncio.Lock)
    went_out: asyncio.Event = field(default_factory=asyncio.Event)
    buffer: collections.deque[db.ClaimedMessage] = field(default_factory=collections.deque)
    paused_until: float = 0.0
    need: asyncio.Event = field(default_factory=asyncio.Event)
    filled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def target(self) -> int:
        """Messages to hold locally: a couple of seconds of sending, at most two claims."""
        return max(MIN_BUFFER, min(int(self.rate * BUFFER_SECONDS), 2 * self.claim_batch))

    def paused(self) -> bool:
        """True while a 429's pause lasts."""
        return self.paused_until > asyncio.get_running_loop().time()


@dataclass(frozen=True, slots=True)
class RateLimited:
    """Twilio said slow down: pause the whole channel this long and hand the message back."""

    delay_s: float


@dataclass(frozen=True, slots=True)
class HandBack:
    """The request was not made (the sender is no longer ours): release the message."""


class Slot:
    """One request's place under its sender's one-second cap (``Channel.window``): reserved
    before the request is built, in order, where the waiting happens; stamped at the moment the
    request's bytes go to the socket; released if the request is not made. ``may_send`` says
    whether the sender is still this instance's, asked at both steps."""

    def __init__(self, channel: Channel, may_send: Callable[[], bool]) -> None:
        self.channel = channel
        self.may_send = may_send
        self.reserved = False

    async def reserve(self) -> bool:
        """Wait for a place and take it; False when the request must not be made."""
        channel, loop = self.channel, asyncio.get_running_loop()
        async with channel.gate:
            while (wait := channel.window.reserve_wait_s(loop.time())) != 0.0:
                if wait is None:  # only a reserved request going out frees a place
                    channel.went_out.clear()
                    await channel.went_out.wait()
                else:
                    await asyncio.sleep(wait)
            if not self.may_send():
                return False
            channel.window.reserve()
            self.reserved = True
            return True

    async def on_wire(self) -> None:
        """Right before the request is written: wait until the write fits (rarely: only when
        earlier writes came later than their reservations), then stamp it."""
        channel, loop = self.channel, asyncio.get_running_loop()
        while True:  # timed: other writes may land while this one sleeps
            wait = channel.window.write_wait_s(loop.time())
            if wait <= 0.0:
                break
            await asyncio.sleep(wait)
        if not self.may_send():
            raise SendWithdrawn("the sender is no longer this instance's")
        channel.window.record(loop.time())
        self._done()

    def close(self) -> None:
        """The attempt is over: a place reserved but never written is given back."""
        if self.reserved:
            self.channel.window.release()
            self._done()

    def _done(self) -> None:
        self.reserved = False
        self.channel.went_out.set()


async def attempt(services: Services, client: Client, channel: Channel,
                  message: db.ClaimedMessage, status_callback: str | None,
                  rng: random.Random, slot: Slot) -> SendOutcome | RateLimited | HandBack | None:
    """One request for one message, and what it means. ``slot`` holds the request's place
    under the sender's one-second cap, stamped as close to the wire as the process gets; the
    request is not made (HandBack) when the sender stopped being ours."""
    cfg = services.cfg
    phone = services.cipher.decrypt(message.normalized_phone_enc, "phone")
    offer = None
    if message.discount_type is not None and message.discount_value is not None:
        offer = render.OfferTerms(message.discount_type, message.discount_value,
                                  message.validity_days or cfg.offers.invitation_expiry_days)
    ctx = render.context(
        customer_name=message.customer_name, salon_name=message.salon_name, offer=offer,
        offer_code=message.offer_code or "", app_link=message.app_download_link,
        token=message.download_token or "",
        default_expiry_days=cfg.offers.invitation_expiry_days,
        whole_name=message.name_from_organisation)
    out = render.outgoing(channel=channel.name, sender=channel.sender, phone=phone,
                          template=message.message_template,
                          content_sid=message.whatsapp_content_sid, ctx=ctx)
    if not await slot.reserve():
        return HandBack()
    started = utcnow()
    try:
        result = await send_message(
            client, from_=out.from_, to=out.to, body=out.body,
            content_sid=out.content_sid, content_variables=out.content_variables,
            status_callback=status_callback, on_wire=slot.on_wire)
    except SendWithdrawn:
        return HandBack()
    except TwilioUnreachable:
        return refusal(services, channel, message, None, None, None, None, rng)
    except TwilioTimeout:
        cut_off = Attempt(to=out.to, sender=channel.sender, since=started,
                          offer_code=message.offer_code)
        return await _after_timeout(services, client, channel, message, cut_off, rng)
    if result.accepted:
        return _outcome(message, "accepted", at=utcnow(),
                        channel=channel.name, sid=result.sid, sender=channel.sender)
    return refusal(services, channel, message, result.http_status, result.error_code,
                   result.error_message, result.retry_after_s, rng)


async def _after_timeout(services: Services, client: Client, channel: Channel,
                         message: db.ClaimedMessage, cut_off: Attempt, rng: random.Random
                         ) -> SendOutcome | RateLimited | None:
    """The request may have reached Twilio: look for it before any retry."""
    try:
        found = await find_send(client, services.pool, cut_off)
    except (TwilioTransportError, TwilioListError) as exc:
        log.warning("reconcile_deferred", error=str(exc),
                    to=mask_phone(cut_off.to.removeprefix(render.WHATSAPP_PREFIX)))
        return None  # still leased: the lease sweep asks Twilio again later
    if found is not None:
        log.info("reconciled_after_timeout", sid=found.sid)
        return _outcome(message, "accepted", at=utcnow(),
                        channel=channel.name, sid=found.sid, sender=channel.sender)
    return refusal(services, channel, message, None, None, "request timed out", None, rng)


def refusal(services: Services, channel: Channel, message: db.ClaimedMessage,
            http_status: int | None, code: int | None, text: str | None,
            retry_after_s: float | None, rng: random.Random) -> SendOutcome | RateLimited:
    """What a refusal (or a request that certainly created nothing) means for the message."""
    cfg = services.cfg
    decision = decide(http_status=http_status, code=code, attempts=message.attempts + 1,
                      max_attempts=cfg.twilio.max_attempts, channel=channel.name,
                      campaign_channel=message.campaign_channel,
                      retry_after_s=retry_after_s,
                      rate_limit_pause_s=cfg.twilio.rate_limit_pause_s, rng=rng)
    if decision.action == "rate_limited":
        return RateLimited(decision.delay_s)
    return outcome_of(message, channel.name, channel.sender, decision, code,
                      delivery.error_message(code, text or _http_text(http_status)))


def _outcome(message: db.ClaimedMessage, outcome: OutcomeKind, *, at: datetime, channel: str,
             **fields: Any) -> SendOutcome:
    """An outcome of this message's attempt, under the claim it was made with."""
    return SendOutcome(message_id=message.id, claim_token=message.claim_token, outcome=outcome,
                       at=at, channel=channel, **fields)


def pre_skip(message: db.ClaimedMessage) -> SendOutcome | None:
    """Skip without sending: opted out of this sender, opted out of the salon (STOP, or the
    imported file said no), or invited by the salon recently."""
    if message.opted_out or message.customer_opted_out:
        # Only an opt-out of this sender is recorded as one (opt_outs); the customer's status
        # already says the rest.
        return _outcome(message, "skipped", at=utcnow(),
                        channel=message.channel, sender=message.sender,
                        skip_reason="opted_out", opted_out=message.opted_out)
    if message.recently_invited:
        return _outcome(message, "skipped", at=utcnow(),
                        channel=message.channel, sender=message.sender,
                        skip_reason="recently_invited")
    return None


def _http_text(status: int | None) -> str:
    return "no response from Twilio" if status is None else f"HTTP {status}"


def outcome_of(message: db.ClaimedMessage, channel: str, sender: str, decision: Decision,
               code: int | None, text: str | None) -> SendOutcome:
    """The SendOutcome of a decision."""
    now = utcnow()
    if decision.action == "retry":
        return _outcome(message, "retry", at=now, channel=channel,
                        sender=sender, error_code=code, error_message=text,
                        next_attempt_at=now + timedelta(seconds=decision.delay_s))
    if decision.action == "fallback":
        return _outcome(message, "fallback", at=now, channel="sms",
                        sender=sender, error_code=code, error_message=text,
                        next_attempt_at=now)
    if decision.action == "skipped":
        return _outcome(message, "skipped", at=now, channel=channel,
                        sender=sender, error_code=code, error_message=text,
                        skip_reason=decision.skip_reason, opted_out=decision.opted_out)
    return _outcome(message, "failed", at=now, channel=channel,
                    sender=sender, error_code=code, error_message=text)


def round_robin(messages: list[db.ClaimedMessage]) -> list[db.ClaimedMessage]:
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
