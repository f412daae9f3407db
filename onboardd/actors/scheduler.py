"""The scheduler actor: runs periodic jobs (due campaigns, expiries, lease sweeps, reconciles).

Each job is a coroutine over the services that does one bounded, idempotent pass. A failing
pass is logged and retried at its next interval: a database blip must not restart the actor.
Jobs are listed in ``onboardd.jobs.all_jobs``, one module per area.
"""

from __future__ import annotations

import asyncio
import time

from onboardd.actors.waiting import first_of
from onboardd.jobs import Job, all_jobs
from onboardd.logging import get_logger
from onboardd.runtime import Services

log = get_logger("scheduler")


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
    await run_jobs(services, stopping, all_jobs(services))
