"""Scheduler jobs of the campaign area: start due campaigns, and the one sweep of expired send
leases."""

from __future__ import annotations

from typing import Final

from onboardd.db import campaigns as db
from onboardd.logging import get_logger
from onboardd.runtime import CampaignWake, Services, nudge
from onboardd.twilio import reconcile

log = get_logger("campaign_jobs")

DUE_PER_PASS: Final = 50
SWEEP_PER_PASS: Final = 500


async def start_due(services: Services) -> None:
    """Start every scheduled campaign whose time has come (also those missed while down)."""
    for campaign_id, salon_id in await db.due(services.pool, DUE_PER_PASS):
        try:
            await db.start(services.pool, campaign_id, salon_id, allowed=("scheduled",))
        except db.CampaignConflict:
            log.info("scheduled_campaign_waits", campaign_id=campaign_id, salon_id=salon_id,
                     reason="another campaign of the salon is sending")
            continue
        except db.EmptyAudience:
            await db.unschedule(services.pool, campaign_id)
            log.warning("scheduled_campaign_empty", campaign_id=campaign_id, salon_id=salon_id,
                        action="returned to draft")
            continue
        except (LookupError, db.WrongState):
            continue  # started, paused or deleted meanwhile
        log.info("scheduled_campaign_started", campaign_id=campaign_id, salon_id=salon_id)
        nudge(services.queues.campaigns, CampaignWake("campaign_changed", campaign_id))


async def sweep_leases(services: Services) -> None:
    """The one lease sweep: messages left 'sending' by a crash or a lost answer are accepted if
    Twilio has them, else retried; never resent before Twilio's Messages list was asked (a
    lookup that fails leaves the message leased for the next pass)."""
    report = await reconcile.reconcile_messages(services, statuses=False, limit=SWEEP_PER_PASS)
    if report.sends_found or report.sends_not_found:
        nudge(services.queues.campaigns, CampaignWake("leases_swept"))
