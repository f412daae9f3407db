"""Scheduler passes for welcome offers: expire old grants and unanswered invitations, and
forget the code-claim counters of keys quiet for ``[offers] claim_memory_s``."""

from __future__ import annotations

from typing import Final

from onboardd.db import offers as db
from onboardd.db import throttle as throttle_db
from onboardd.logging import get_logger
from onboardd.runtime import Services

log = get_logger("offers_jobs")

EXPIRY_INTERVAL_S: Final = 60.0
# Rows per statement: keeps each UPDATE's locks and WAL small; a pass loops until done.
SWEEP_SLICE: Final = 5000


async def expire_offers(services: Services) -> None:
    """One pass of both sweeps (validation already treats a past expiry as expired)."""
    redemptions = invitations = 0
    while not services.stopping.is_set():
        done = await db.expire_redemptions(services.pool, SWEEP_SLICE)
        redemptions += done
        if done < SWEEP_SLICE:
            break
    days = services.cfg.offers.invitation_expiry_days
    while not services.stopping.is_set():
        done = await db.expire_invitations(services.pool, days, SWEEP_SLICE)
        invitations += done
        if done < SWEEP_SLICE:
            break
    forgotten = 0
    while not services.stopping.is_set():
        done = await throttle_db.prune(services.pool, services.cfg.offers.claim_memory_s,
                                       SWEEP_SLICE)
        forgotten += done
        if done < SWEEP_SLICE:
            break
    if redemptions or invitations:
        log.info("offers_expired", redemptions=redemptions, invitations=invitations)
    if forgotten:
        log.debug("claim_counters_pruned", keys=forgotten)
