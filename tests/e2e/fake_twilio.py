"""A Twilio API stand-in for end-to-end tests: a proxy in front of the simulator that records
every message request, counts how many are in flight at once, can slow them down and can
refuse chosen ones with a 429 — the daemon reaches it as "real Twilio" (credentials set,
ONBOARDD_TWILIO_API_BASE_URL pointing at it), so nothing of the daemon is patched."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import msgspec
from aiohttp import web

from tests.campaign_support import simulator
from tests.serving import served

ACCOUNT_SID = "AC" + "5e" * 16
AUTH_TOKEN = "fake-twilio-token-" + "t" * 24
WHATSAPP_SENDER = "+14155238886"
SMS_SENDER = "+15005550006"


@dataclass
class Refusal:
    """A Twilio error answer: HTTP status, Twilio code, optional Retry-After seconds."""

    status: int = 429
    code: int = 20429
    retry_after_s: int | None = None


@dataclass
class FakeTwilio:
    """The proxy's knobs and what it saw."""

    url: str = ""
    upstream: str = ""
    # Every message create request's form, in arrival order (refused ones included).
    requests: list[dict[str, str]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    delay_s: float = 0.0
    refuse: Callable[[dict[str, str]], Refusal | None] = lambda _form: None
    in_flight: int = 0
    max_in_flight: int = 0
    session: aiohttp.ClientSession | None = None

    def sent_to(self, number: str) -> list[dict[str, str]]:
        """Accepted requests to a number (bare E.164, with or without whatsapp:)."""
        refused = {id(f) for f in self.refused}
        return [f for f in self.requests if id(f) not in refused
                and f.get("To", "").removeprefix("whatsapp:") == number]

    def on_channel(self, channel: str) -> list[dict[str, str]]:
        """Requests of one channel ('whatsapp' or 'sms'), refused ones included."""
        wa = channel == "whatsapp"
        return [f for f in self.requests if f.get("To", "").startswith("whatsapp:") == wa]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Record, delay or refuse a message create; forward everything else."""
        body = await request.read()
        is_create = request.method == "POST" and request.path.endswith("/Messages.json")
        if not is_create:
            return await self._forward(request, body)
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.requests.append(form)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)  # the behaviour under test: a slow Twilio
            refusal = self.refuse(form)
            if refusal is not None:
                self.refused.append(form)
                headers = ({"Retry-After": str(refusal.retry_after_s)}
                           if refusal.retry_after_s is not None else None)
                payload = {"code": refusal.code, "message": "Too Many Requests",
                           "more_info": f"https://www.twilio.com/docs/errors/{refusal.code}",
                           "status": refusal.status}
                return web.Response(status=refusal.status, body=msgspec.json.encode(payload),
                                    content_type="application/json", headers=headers)
            return await self._forward(request, body)
        finally:
            self.in_flight -= 1

    async def _forward(self, request: web.Request, body: bytes) -> web.StreamResponse:
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("authorization", "content-type", "accept")}
        async with self.session.request(request.method, self.upstream + request.path_qs,
                                        data=body, headers=headers) as resp:
            payload = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() in ("retry-after",)}
            return web.Response(status=resp.status, body=payload, headers=out,
                                content_type=resp.content_type)


@contextlib.asynccontextmanager
async def fake_twilio(**sim_settings: object) -> AsyncIterator[FakeTwilio]:
    """The proxy on a free port, in front of a simulator accepting AUTH_TOKEN (no callbacks
    unless asked: message rows then stay 'queued' after acceptance)."""
    settings: dict[str, object] = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
                                   "callbacks_enabled": False, "rate_per_s": 0.0,
                                   "whatsapp_error_mode": "immediate"}
    settings.update(sim_settings)
    async with simulator(**settings) as (sim_url, _state):
        fake = FakeTwilio(upstream=sim_url.rstrip("/"))
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", fake.handle)
        async with served(app) as fake.url, aiohttp.ClientSession() as session:
            fake.session = session
            yield fake


def twilio_env(fake: FakeTwilio) -> dict[str, str]:
    """Environment that makes the daemon talk to the fake as to real Twilio."""
    return {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_WHATSAPP_NUMBER": WHATSAPP_SENDER, "TWILIO_SMS_NUMBER": SMS_SENDER,
            "ONBOARDD_TWILIO_API_BASE_URL": fake.url, "ONBOARDD_SIMULATOR_ENABLED": "false"}
