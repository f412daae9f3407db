"""The simulator's mutable state: current settings, store, counters and callback dispatcher."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import random
import secrets
from typing import Any

import msgspec
from aiohttp import web

from onboardd.simulator.callbacks import CallbackDispatcher
from onboardd.simulator.ratelimit import TokenBucket
from onboardd.simulator.settings import SimulatorSettings
from onboardd.simulator.stats import Stats
from onboardd.simulator.store import MessageStore

# Settings /_sim/config neither shows nor changes.
FIXED_OVER_HTTP = frozenset({"account_sid", "auth_token"})


def _basic(account_sid: str, auth_token: str) -> str:
    raw = f"{account_sid}:{auth_token}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class SimState:
    """Everything one simulator instance knows; handlers reach it through ``STATE_KEY``."""

    def __init__(self, settings: SimulatorSettings) -> None:
        if not settings.auth_token:  # never a guessable default: invent one for this instance
            settings = msgspec.structs.replace(settings, auth_token=secrets.token_urlsafe(32))
        self.initial = settings
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.store = MessageStore()
        self.stats = Stats()
        self.bucket = TokenBucket(settings.rate_per_s)
        self.stopping = asyncio.Event()
        self.dispatcher = CallbackDispatcher(lambda: self.settings, lambda: self.stats)
        self._auth = _basic(settings.account_sid, settings.auth_token)

    def apply(self, settings: SimulatorSettings) -> None:
        """Switch to new behaviour knobs (the callback worker count stays as started)."""
        if settings.rate_per_s != self.settings.rate_per_s:
            self.bucket = TokenBucket(settings.rate_per_s)
        if settings.seed != self.settings.seed:
            self.rng = random.Random(settings.seed)
        self.settings = settings
        self._auth = _basic(settings.account_sid, settings.auth_token)

    def patch(self, changes: dict[str, Any]) -> SimulatorSettings:
        """Apply a JSON merge patch (``per_number`` merges, a null value removes a number).

        The credentials are not behaviour: they cannot be changed over HTTP."""
        merged = msgspec.structs.asdict(self.settings)
        for key, value in changes.items():
            if key in FIXED_OVER_HTTP:
                raise ValueError(f"{key}: cannot be changed over HTTP; restart the simulator "
                                 "with another setting")
            if key == "per_number" and isinstance(value, dict):
                numbers = dict(merged["per_number"])
                for number, behaviour in value.items():
                    if behaviour is None:
                        numbers.pop(number, None)
                    else:
                        numbers[number] = behaviour
                merged["per_number"] = numbers
            else:
                merged[key] = value
        settings = msgspec.convert(merged, SimulatorSettings)
        self.apply(settings)
        return settings

    def reset(self) -> None:
        """Forget messages, counters and pending callbacks; restore the starting settings."""
        self.store.clear()
        self.stats = Stats()
        self.dispatcher.clear()
        self.settings = self.initial
        self.rng = random.Random(self.initial.seed)
        self.bucket = TokenBucket(self.initial.rate_per_s)
        self._auth = _basic(self.initial.account_sid, self.initial.auth_token)

    def auth_ok(self, header: str | None) -> bool:
        """True when the Authorization header carries the configured SID and token."""
        return header is not None and hmac.compare_digest(header, self._auth)

    async def pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the simulator stops first; True when it is stopping."""
        if seconds <= 0:
            return self.stopping.is_set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.stopping.wait()
        return self.stopping.is_set()


STATE_KEY = web.AppKey("onboardd_simulator_state", SimState)
STORE_KEY = web.AppKey("onboardd_simulator_store", MessageStore)
