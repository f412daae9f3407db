"""Scheduler jobs of the campaign area: start due campaigns, sweep expired send leases."""

from __future__ import annotations

import asyncio
from typing import Final

import structlog

from onboardd.actors.dispatcher import reconcile, utcnow
from onboardd.db import campaigns as db
from onboardd.domain.campaigns.render import senders
from onboardd.domain.status_events import SendOutcome
from onboardd.logging import get_logger
from onboardd.runtime import CampaignWake, Services, nudge
from onboardd.services import campaigns as campaign_service
from onboardd.services.errors import ServiceError
from onboardd.twilio.account import new_client
from onboardd.twilio.client import TwilioListError, TwilioTransportError
from onboardd.twilio.reconcile import feed

log = get_logger("campaign_jobs")

DUE_PER_PASS: Final = 50
SWEEP_PER_PASS: Final = 500
SWEEP_CONCURRENCY: Final = 8


async def start_due(services: Services) -> None:
    """Start every scheduled campaign whose time has come (also those missed while down)."""
    for due in await db.due(services.pool, DUE_PER_PASS):
        with structlog.contextvars.bound_contextvars(campaign_id=due.id, salon_id=due.salon_id):
            try:
                await campaign_service.start(services.pool, due.id, due.salon_id,
                                             allowed=("scheduled",))
            except ServiceError as exc:
                if exc.code == "campaign_already_sending":
                    log.info("scheduled_campaign_waits",
                             reason="another campaign of the salon is sending")
                elif exc.kind == "invalid":  # the audience matched nobody
                    await db.unschedule(services.pool, due.id)
                    log.warning("scheduled_campaign_empty", action="returned to draft")
                continue  # else started, paused or deleted meanwhile
            log.info("scheduled_campaign_started")
        nudge(services.queues.campaigns, CampaignWake("campaign_changed", due.id))


async def sweep_leases(services: Services) -> None:
    """Messages left 'sending' by a crash or a lost answer: accepted if Twilio has them, else
    retried. Never resent before Twilio's Messages list has been asked."""
    cfg = services.cfg
    expired = await db.claim_expired(services.pool, SWEEP_PER_PASS, cfg.campaigns.lease_s)
    if not expired:
        return
    client = new_client(services)
    gate = asyncio.Semaphore(SWEEP_CONCURRENCY)
    whatsapp_default, sms_default = senders(cfg.twilio.whatsapp_number, cfg.twilio.sms_number)

    async def one(message: db.ExpiredMessage) -> SendOutcome | None:
        sender = message.sender or (whatsapp_default if message.channel == "whatsapp"
                                    else sms_default)
        phone = services.cipher.decrypt(message.normalized_phone_enc, "phone")
        async with gate:
            try:
                sid = await reconcile(client, channel=message.channel, phone=phone,
                                      sender=sender, since=message.attempt_started_at,
                                      offer_code=message.offer_code)
            except (TwilioTransportError, TwilioListError) as exc:
                log.warning("sweep_deferred", message_id=message.id, error=str(exc))
                return None  # leased again: the next pass asks once more
        now = utcnow()
        if sid is not None:
            return SendOutcome(message_id=message.id, outcome="accepted", at=now,
                               channel=message.channel, sid=sid, sender=sender)
        return SendOutcome(message_id=message.id, outcome="retry", at=now,
                           channel=message.channel, sender=sender, next_attempt_at=now,
                           error_message="send interrupted; not found at Twilio")

    try:
        results = await asyncio.gather(*(one(m) for m in expired))
    finally:
        await client.http_client.close()
    outcomes = [o for o in results if o is not None]
    if not outcomes:
        return
    await feed(services, outcomes)  # bounded wait; the queued work is recorded regardless
    accepted = sum(1 for o in outcomes if o.outcome == "accepted")
    log.info("expired_leases_swept", accepted=accepted, retried=len(outcomes) - accepted)
    nudge(services.queues.campaigns, CampaignWake("leases_swept"))
