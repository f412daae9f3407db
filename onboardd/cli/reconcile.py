"""`onboardd reconcile [--campaign ID] [--wait-s S]`: reconciliation from a shell, with its own
status recorder: the lease sweep and the status lookups of onboardd.twilio.reconcile, then
campaign completion; prints what it found as JSON."""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import msgspec

from onboardd.actors import status_recorder
from onboardd.config import Config
from onboardd.db import delivery as db
from onboardd.runtime import open_services
from onboardd.twilio.reconcile import BATCH, ReconcileReport, reconcile_messages

# How long `onboardd reconcile` waits for the standalone simulator to answer.
SIM_PROBE_S = 3.0
# The report's counters, summed over the passes and printed.
COUNTS = ("examined", "statuses_found", "sends_found", "sends_not_found", "lookups_failed")


async def _simulator_reachable(base_url: str) -> bool:
    """Whether a standalone simulator answers its control endpoint at base_url."""
    timeout = aiohttp.ClientTimeout(total=SIM_PROBE_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, \
                session.get(base_url + "/_sim/stats") as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


def _add(total: ReconcileReport, report: ReconcileReport) -> None:
    for name in COUNTS:
        setattr(total, name, getattr(total, name) + getattr(report, name))


async def run_reconcile(cfg: Config, campaign_id: str | None, delivery_wait_s: float | None) -> int:
    """`onboardd reconcile`: one pass with its own status recorder; prints what it found.

    Exit 0, 1 when some lookups failed, 2 when in simulator mode (no Twilio credentials) no
    standalone simulator (`onboardd simulator`) answers on [simulator] host/port: the simulator
    built into `serve` listens on a random port only the daemon knows (its scheduler reconciles
    on its own).
    """
    base_url = cfg.twilio.api_base_url
    if cfg.simulated_twilio:
        base_url = f"http://{cfg.simulator.host}:{cfg.simulator.port}"
        if not await _simulator_reachable(base_url):
            print(f"onboardd reconcile: no Twilio credentials configured, and no simulator at "
                  f"{base_url}; in simulator mode reconcile needs `onboardd simulator` running "
                  f"on [simulator] host/port (the one inside `serve` is not reachable)",
                  file=sys.stderr)
            return 2
    async with open_services(cfg) as services:
        services.twilio_base_url = base_url
        stopping = asyncio.Event()
        recorder = asyncio.create_task(status_recorder.run(services, stopping),
                                       name="status_recorder")
        try:
            total = ReconcileReport()
            # Expired leases first: each pass re-leases what it looked at, so the next one
            # sees only the rest. Then the overdue statuses, page by page through the cursor.
            while True:
                report = await reconcile_messages(services, statuses=False,
                                                  campaign_id=campaign_id)
                _add(total, report)
                if report.examined < BATCH:
                    break
            after: str | None = None
            while True:
                report = await reconcile_messages(services, leases=False, campaign_id=campaign_id,
                                                  delivery_wait_s=delivery_wait_s, after=after)
                _add(total, report)
                after = report.resume_after
                if after is None:
                    break
            completed = await db.complete_campaigns(services.pool, cfg.campaigns.delivery_wait_s)
        finally:
            stopping.set()
            await recorder
    counts = {name: getattr(total, name) for name in COUNTS}
    print(msgspec.json.encode({**counts, "campaigns_completed": completed}).decode())
    return 1 if total.lookups_failed else 0
