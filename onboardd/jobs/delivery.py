"""Scheduler pass of the delivery area: late and stale orphan callbacks, reconciliation of
unfinished messages against Twilio's Messages list, campaign completion."""

from __future__ import annotations

from typing import Final

from onboardd.db import delivery as db
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.twilio import reconcile

log = get_logger("delivery_jobs")

# The periodic job leaves expired leases to the dispatcher's own sweep for this long.
LEASE_GRACE_S: Final = 300.0


async def reconcile_delivery(services: Services) -> None:
    """Periodic pass: late orphans, stale orphans, unfinished messages, campaign completion."""
    wait_s = services.cfg.campaigns.delivery_wait_s
    await reconcile.feed(services, await db.orphans_with_known_sid(services.pool))
    for sid, status in await db.drop_stale_orphans(services.pool, wait_s):
        log.warning("status_callback_unknown_sid", sid=sid, status=status,
                    hint="no invitation message carries this SID")
    if services.twilio_base_url:
        await reconcile.reconcile_messages(services, lease_grace_s=LEASE_GRACE_S)
    for campaign_id in await db.complete_campaigns(services.pool, wait_s):
        log.info("campaign_completed", campaign_id=campaign_id)
