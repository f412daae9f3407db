"""Fixtures of the integration tests: a receiver of the simulator's status callbacks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from tests.integration.rig import make_rig  # noqa: F401  (a fixture of every integration test)
from tests.serving import served


@dataclass
class Receiver:
    """Collects status callbacks; answers ``fail_first`` of them with HTTP 500."""

    url: str = ""
    calls: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    fail_first: int = 0
    seen: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        """Record one callback."""
        self.seen += 1
        if self.seen <= self.fail_first:
            return web.Response(status=500)
        form = await request.post()
        params = {key: str(value) for key, value in form.items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        self.calls.append((str(request.url), params, signature))
        self.changed.set()
        return web.Response(text="")

    async def wait_for(self, count: int, timeout: float = 3.0) -> None:
        """Wait until ``count`` callbacks arrived."""
        async with asyncio.timeout(timeout):
            while len(self.calls) < count:
                self.changed.clear()
                await self.changed.wait()

    def statuses(self, sid: str | None = None) -> list[str]:
        """MessageStatus of every callback received (for one message)."""
        return [p["MessageStatus"] for _u, p, _s in self.calls if sid in (None, p["MessageSid"])]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A small aiohttp server that receives status callbacks."""
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/status", rec.handle)
    async with served(app) as base_url:
        rec.url = base_url + "/status"
        yield rec
