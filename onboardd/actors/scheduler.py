"""The scheduler actor: runs periodic jobs (due campaigns, expiries, lease sweeps, reconciles).

Each job is a coroutine over the services that does one bounded, idempotent pass. A failing
pass is logged and retried at its next interval: a database blip must not restart the actor.
Jobs are listed in ``jobs()``; each area contributes its own job functions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from onboardd import offers_jobs, reconcile
from onboardd.actors import campaign_jobs, importer
from onboardd.actors.waiting import first_of
from onboardd.logging import get_logger
from onboardd.services import Services

log = get_logger("scheduler")


class Job(NamedTuple):
    """A periodic pass: name, interval, and the coroutine doing one pass."""

    name: str
    interval_s: float
    run: Callable[[Services], Awaitable[None]]


def jobs(services: Services) -> list[Job]:
    """Every periodic job of the daemon (areas add theirs here)."""
    found: list[Job] = [
        # -- scheduler jobs: one line per job, keep this marker --
        Job("start_due_campaigns", services.cfg.campaigns.due_poll_s, campaign_jobs.start_due),
        Job("send_leases", services.cfg.campaigns.sweep_interval_s, campaign_jobs.sweep_leases),
        Job("reconcile_delivery", services.cfg.campaigns.reconcile_interval_s, reconcile.job),
        Job("offer_expiry", offers_jobs.EXPIRY_INTERVAL_S, offers_jobs.expire_offers),
        Job("import_preview_expiry", 600.0, importer.expire_previews),
    ]
    return found


async def run_jobs(services: Services, stopping: asyncio.Event, job_list: list[Job]) -> None:
    """Run each job at its interval until stop; the first pass of every job runs at start."""
    next_due = {job.name: 0.0 for job in job_list}
    while not stopping.is_set():
        now = time.monotonic()
        for job in job_list:
            if next_due[job.name] > now:
                continue
            try:
                await job.run(services)
            except Exception as exc:
                log.error("job_failed", job=job.name, error=repr(exc), exc_info=exc)
            next_due[job.name] = time.monotonic() + job.interval_s
        wait = min(next_due.values(), default=now + 1.0) - time.monotonic()
        await first_of(stopping.wait(), poll_s=max(wait, 0.01))


async def run(services: Services, stopping: asyncio.Event) -> None:
    """Actor entry."""
    await run_jobs(services, stopping, jobs(services))
