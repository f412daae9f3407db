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


class DeliveryPass:
    """The periodic pass: late orphans, stale orphans, overdue statuses, campaign completion.

    It keeps where the status lookups stopped, so that successive passes go round every
    overdue message (at most ``limit`` lookups each) instead of asking about the same first
    ones again.
    """

    def __init__(self, limit: int = reconcile.BATCH) -> None:
        self.limit = limit
        self.after: str | None = None

    async def __call__(self, services: Services) -> None:
        wait_s = services.cfg.campaigns.delivery_wait_s
        await reconcile.feed(services, await db.orphans_with_known_sid(services.pool))
        for dropped in await db.drop_stale_orphans(services.pool, wait_s):
            log.warning("status_callback_unknown_sid", sid=dropped.sid, status=dropped.status,
                        hint="no invitation message carries this SID")
        if services.twilio_base_url:
            report = await reconcile.reconcile_messages(services, leases=False,
                                                        limit=self.limit, after=self.after)
            self.after = report.resume_after
        for campaign_id in await db.complete_campaigns(services.pool, wait_s):
            log.info("campaign_completed", campaign_id=campaign_id)
