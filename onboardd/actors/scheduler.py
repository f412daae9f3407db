"""The scheduler actor: runs periodic jobs (due campaigns, expiries, lease sweeps, reconciles).

Each job is a coroutine over the services that does one bounded, idempotent pass. A failing
pass is logged and retried at its next interval: a database blip must not restart the actor.
While the database is unreachable, the first failed pass of each job logs a warning and the
others are quiet, until a pass of that job succeeds again.
Jobs are listed in ``onboardd.jobs.all_jobs``, one module per area.
"""

from __future__ import annotations

import asyncio
import time

from onboardd.actors.waiting import first_of
from onboardd.db.pool import unreachable
from onboardd.jobs import Job, all_jobs
from onboardd.logging import get_logger
from onboardd.runtime import Services

log = get_logger("scheduler")


async def run_jobs(services: Services, stopping: asyncio.Event, job_list: list[Job]) -> None:
    """Run each job at its interval until stop; the first pass of every job runs at start."""
    next_due = {job.name: 0.0 for job in job_list}
    waiting: set[str] = set()  # jobs whose last pass found the database unreachable
    while not stopping.is_set():
        now = time.monotonic()
        for job in job_list:
            if next_due[job.name] > now:
                continue
            try:
                await job.run(services)
            except Exception as exc:
                if not unreachable(exc):
                    log.error("job_failed", job=job.name, error=repr(exc), exc_info=exc)
                elif job.name not in waiting:
                    waiting.add(job.name)
                    log.warning("job_waits_for_database", job=job.name, error=repr(exc))
            else:
                if job.name in waiting:
                    waiting.discard(job.name)
                    log.info("job_database_back", job=job.name)
            next_due[job.name] = time.monotonic() + job.interval_s
        wait = min(next_due.values(), default=now + 1.0) - time.monotonic()
        await first_of(stopping.wait(), poll_s=max(wait, 0.01))


async def run(services: Services, stopping: asyncio.Event) -> None:
    """Actor entry."""
    await run_jobs(services, stopping, all_jobs(services))
