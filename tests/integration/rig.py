"""The dispatcher rig of the integration tests: services, a simulator, and the dispatcher, the
status recorder and the status folder running as in the daemon (the fixture ``make_rig`` builds
one)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from onboardd.actors import dispatcher, status_folder, status_recorder
from onboardd.config import Config
from onboardd.db.pool import create_pool
from onboardd.domain.templates import DEFAULT_TEMPLATE
from onboardd.pii import PiiCipher
from onboardd.runtime import CampaignWake, Services, nudge
from onboardd.services import campaigns as campaign_service
from onboardd.simulator.state import SimState
from onboardd.supervisor import Supervisor
from onboardd.twilio import account as twilio_account
from onboardd.web.app import create_app
from tests.campaign_support import add_customers, add_offer, simulator


class Rig:
    """Services, a simulator, and the dispatcher + recorder (+ the web app) running."""

    def __init__(self, services: Services, sim: SimState, sim_url: str,
                 stop: Callable[[], Awaitable[None]]) -> None:
        self.services = services
        self.sim = sim
        self.sim_url = sim_url
        self.stop = stop  # stop the actors as the daemon does (idempotent)

    @property
    def pool(self) -> Any:
        return self.services.pool

    async def campaign(self, salon: str, phones: list[str], *, channel: str = "whatsapp",
                       content_sid: str | None = None, start: bool = True) -> str:
        """Customers with these phones, and a campaign to them (started unless not)."""
        await add_customers(self.pool, self.services.cipher, salon, phones)
        return await self.new_campaign(salon, channel=channel, content_sid=content_sid,
                                       start=start)

    async def new_campaign(self, salon: str, *, channel: str = "whatsapp",
                           content_sid: str | None = None, start: bool = True) -> str:
        """A campaign with an offer to the salon's default audience (its pending customers);
        started and the dispatcher woken unless not."""
        offer = await add_offer(self.pool, salon)
        campaign_id: str = await self.pool.fetchval(
            "INSERT INTO invitation_campaigns (salon_id, name, channel, message_template, "
            "welcome_offer_id, whatsapp_content_sid, created_by) "
            "VALUES ($1, 'c', $2, $3, $4, $5, 'admin') RETURNING id",
            salon, channel, DEFAULT_TEMPLATE, offer, content_sid)
        if start:
            await campaign_service.start(self.pool, campaign_id, salon)
            nudge(self.services.queues.campaigns, CampaignWake("campaign_changed", campaign_id))
        return campaign_id

    async def by_phone(self, campaign_id: str) -> dict[str, Any]:
        rows = await self.pool.fetch(
            "SELECT m.*, c.status AS customer_status, c.offer_code, c.normalized_phone_enc "
            "FROM invitation_messages m JOIN imported_customers c "
            "ON c.id = m.imported_customer_id WHERE m.campaign_id = $1", campaign_id)
        return {self.services.cipher.decrypt(r["normalized_phone_enc"], "phone"): r
                for r in rows}

    async def settled(self, campaign_id: str) -> bool:
        left = await self.pool.fetchval(
            "SELECT count(*) FROM invitation_messages WHERE campaign_id = $1 "
            "AND status IN ('pending', 'sending')", campaign_id)
        return bool(left == 0)

    def sim_to(self, number: str) -> list[Any]:
        return [r for r in self.sim.store.all() if r.to.removeprefix("whatsapp:") == number]


@pytest.fixture
async def make_rig(make_config: Callable[..., Config], db_url: str, cipher: PiiCipher,
                   tokens: Any) -> AsyncIterator[Callable[..., Any]]:
    stack = contextlib.AsyncExitStack()

    async def build(sim: dict[str, Any] | None = None, **overrides: str) -> Rig:
        settings = {"whatsapp_error_mode": "immediate", "callbacks_enabled": False,
                    "rate_per_s": 0.0} | (sim or {})
        defaults = {"campaigns_dispatch_poll_s": "0.05", "twilio_request_timeout_s": "1",
                    "campaigns_lease_s": "30"}
        cfg = make_config(**(defaults | overrides))
        # The simulator accepts the state directory's token, as the daemon's own does.
        settings["auth_token"] = twilio_account.auth_token(cfg)
        url, state = await stack.enter_async_context(simulator(**settings))
        pool = await create_pool(cfg, db_url, min_size=1, max_size=10)
        stack.push_async_callback(pool.close)
        services = Services(cfg=cfg, pool=pool, cipher=cipher, tokens=tokens)
        services.twilio_base_url = url
        server = await stack.enter_async_context(TestServer(create_app(services)))
        services.public_base_url = str(server.make_url("")).rstrip("/")
        # As in the daemon: the recorder is stopped only after the dispatcher returned.
        supervisor = Supervisor(cfg.supervisor, services.stopping)
        supervisor.add("membership", services.membership.run, drain_last=True)
        supervisor.add("dispatcher", functools.partial(dispatcher.run, services))
        supervisor.add("status_recorder", functools.partial(status_recorder.run, services),
                       drain_last=True)
        supervisor.add("status_folder", functools.partial(status_folder.run, services),
                       drain_last=True)
        task = asyncio.create_task(supervisor.run())

        async def stop() -> None:
            services.stopping.set()
            await task

        stack.push_async_callback(stop)
        return Rig(services, state, url, stop)

    try:
        yield build
    finally:
        await stack.aclose()
