"""Scheduler jobs of the campaign area: start due campaigns, and the one sweep of expired send
leases."""

from __future__ import annotations

from typing import Final

import structlog

from onboardd.db import campaigns as db
from onboardd.logging import get_logger
from onboardd.runtime import CampaignWake, Services, nudge
from onboardd.services import campaigns as campaign_service
from onboardd.services.errors import ServiceError
from onboardd.twilio import reconcile

log = get_logger("campaign_jobs")

DUE_PER_PASS: Final = 50
SWEEP_PER_PASS: Final = 500


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
                elif exc.kind == "invalid":  # it cannot be sent as it stands: back to draft
                    await db.unschedule(services.pool, due.id)
                    if exc.details.get("field") == "audience":
                        log.warning("scheduled_campaign_empty", action="returned to draft")
                    else:
                        log.warning("scheduled_campaign_invalid", action="returned to draft",
                                    reason=exc.message)
                continue  # else started, paused or deleted meanwhile
            log.info("scheduled_campaign_started")
        nudge(services.queues.campaigns, CampaignWake("campaign_changed", due.id))


async def sweep_leases(services: Services) -> None:
    """The one lease sweep: messages left 'sending' by a crash or a lost answer are accepted if
    Twilio has them, else retried; never resent before Twilio's Messages list was asked (a
    lookup that fails leaves the message leased for the next pass)."""
    report = await reconcile.reconcile_messages(services, statuses=False, limit=SWEEP_PER_PASS)
    if report.sends_found or report.sends_not_found:
        nudge(services.queues.campaigns, CampaignWake("leases_swept"))
