"""A live onboardd for the browser: the daemon's own wiring (services, the built-in Twilio
simulator, every actor under the supervisor, the front's HTTP server) in the test's event loop,
on a real port, against a fresh copy of the migrated test database.

It is `onboardd.daemon.serve` without its signal handlers and banner, so a page the browser
drives reaches the same importer, dispatcher, status recorder and offer matcher as in
production, and the simulator's status callbacks come back to the app's webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from onboardd.actors import readiness, register_actors
from onboardd.config import load
from onboardd.daemon import HTTP_DRAIN_S, twilio_endpoint
from onboardd.runtime import Services, open_services
from onboardd.supervisor import Supervisor
from onboardd.web.app import create_app
from onboardd.web.server import front_runner
from tests.conftest import daemon_env, fresh_database

SALON_NAME = "Glamour Studio"
ADMIN = "admin-1"

# Quick enough for a journey to finish in seconds; everything else is the daemon's defaults.
FAST = {
    "campaigns_dispatch_poll_s": "0.05",
    "simulator_sent_after_ms": "50",
    "simulator_delivered_after_ms": "150",
    "simulator_read_after_ms": "400",
}


@dataclass
class Live:
    """The running app: its address, its services, the salon signed-in admins look at."""

    base_url: str
    services: Services
    salon: str

    @property
    def pool(self) -> Any:
        return self.services.pool

    def token(self, salons: list[str] | None = None, ttl_s: int = 3600,
              sub: str = ADMIN) -> str:
        """An admin JWT of the host app (the one the banner's link carries) for these salons
        (the live salon by default)."""
        return self.services.tokens.encode(sub, "admin", salons or [self.salon], ttl_s)

    def url(self, path: str) -> str:
        return self.base_url + path


@contextlib.asynccontextmanager
async def live_app(pg_uri: str, template: str, state_dir: Path, **overrides: str
                   ) -> AsyncIterator[Live]:
    """Start a live onboardd on a fresh database; `overrides` are ONBOARDD_* keys in lower
    case without the prefix (e.g. simulator_delivered_after_ms="0")."""
    async with contextlib.AsyncExitStack() as stack:
        db_url = await stack.enter_async_context(fresh_database(pg_uri, template))
        extra = {f"ONBOARDD_{k.upper()}": v for k, v in (FAST | overrides).items()}
        cfg = load(None, daemon_env(db_url, state_dir, **extra))
        services = await stack.enter_async_context(open_services(cfg))
        services.twilio_base_url = await stack.enter_async_context(twilio_endpoint(cfg))
        salon: str = await services.pool.fetchval(
            "INSERT INTO salons (name, app_download_link, timezone) VALUES ($1, $2, $3) "
            "RETURNING id", SALON_NAME, "https://app.example.com/glamour", "Asia/Kolkata")

        supervisor = Supervisor(cfg.supervisor, services.stopping,
                                on_restart=services.metrics.actor_restarted)
        register_actors(supervisor, services)

        runner = front_runner(create_app(services, readiness(supervisor, services)), cfg.http,
                              shutdown_timeout=HTTP_DRAIN_S)
        await runner.setup()
        actors: list[asyncio.Task[None]] = []

        async def stop() -> None:  # as the daemon does: the front first, then the actors
            await runner.cleanup()
            services.stopping.set()
            await asyncio.gather(*actors)

        stack.push_async_callback(stop)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        base_url = f"http://{host}:{port}"
        # Before the actors start (the dispatcher reads it once): status callbacks, links and
        # the Origin check all use the address the browser sees.
        services.public_base_url = base_url
        actors.append(asyncio.create_task(supervisor.run(), name="supervisor"))
        yield Live(base_url, services, salon)
