"""Scheduler pass of the delivery area: late and stale orphan callbacks, status lookups for
accepted messages whose callbacks never came, and campaigns whose delivery wait ran out.

Cut-off sends (expired leases) are not looked at here: the one lease sweep
(``jobs.campaigns.sweep_leases``) owns them.
"""

from __future__ import annotations

from onboardd.db import delivery as db
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.twilio import reconcile

log = get_logger("delivery_jobs")


async def reconcile_delivery(services: Services) -> None:
    """Periodic pass: late orphans, stale orphans, overdue statuses, campaign completion."""
    wait_s = services.cfg.campaigns.delivery_wait_s
    await reconcile.feed(services, await db.orphans_with_known_sid(services.pool))
    for dropped in await db.drop_stale_orphans(services.pool, wait_s):
        log.warning("status_callback_unknown_sid", sid=dropped.sid, status=dropped.status,
                    hint="no invitation message carries this SID")
    if services.twilio_base_url:
        await reconcile.reconcile_messages(services, leases=False)
    for campaign_id in await db.complete_campaigns(services.pool, wait_s):
        log.info("campaign_completed", campaign_id=campaign_id)
