"""Every periodic job of the daemon, one module per area; the scheduler actor runs ``all_jobs``.

A job is a coroutine over the services that does one bounded, idempotent pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple

from onboardd.jobs import campaigns, delivery, imports, offers
from onboardd.runtime import Services


class Job(NamedTuple):
    """A periodic pass: name, interval, and the coroutine doing one pass."""

    name: str
    interval_s: float
    run: Callable[[Services], Awaitable[None]]


def all_jobs(services: Services) -> list[Job]:
    """Every periodic job, with its interval from the config."""
    cfg = services.cfg.campaigns
    return [
        Job("start_due_campaigns", cfg.due_poll_s, campaigns.start_due),
        Job("send_leases", cfg.sweep_interval_s, campaigns.sweep_leases),
        Job("reconcile_delivery", cfg.reconcile_interval_s, delivery.DeliveryPass()),
        Job("offer_expiry", offers.EXPIRY_INTERVAL_S, offers.expire_offers),
        Job("import_preview_expiry", imports.INTERVAL_S, imports.expire_previews),
    ]
