"""The simulator's aiohttp application and the context manager that serves it on a port."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from onboardd.logging import get_logger
from onboardd.simulator import api, control
from onboardd.simulator.settings import SimulatorSettings
from onboardd.simulator.state import STATE_KEY, STORE_KEY, SimState

log = get_logger("simulator")

_MESSAGES = "/2010-04-01/Accounts/{account_sid}/Messages"


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Run the callback dispatcher for the application's lifetime."""
    state = app[STATE_KEY]
    await state.dispatcher.start()
    try:
        yield
    finally:
        state.stopping.set()
        await state.dispatcher.stop()


async def _on_shutdown(app: web.Application) -> None:
    """Wake handlers that are hanging or sleeping so the server can stop promptly."""
    app[STATE_KEY].stopping.set()


def create_app(settings: SimulatorSettings) -> web.Application:
    """A fresh simulator app; its state is ``app[STATE_KEY]``, its store ``app[STORE_KEY]``."""
    app = web.Application()
    state = SimState(settings)
    app[STATE_KEY] = state
    app[STORE_KEY] = state.store
    app.router.add_post(_MESSAGES + ".json", api.create_message)
    app.router.add_get(_MESSAGES + ".json", api.list_messages)
    app.router.add_get(_MESSAGES + "/{sid}.json", api.fetch_message)
    app.router.add_get("/_sim/messages", control.sim_messages)
    app.router.add_get("/_sim/stats", control.sim_stats)
    app.router.add_post("/_sim/reset", control.sim_reset)
    app.router.add_get("/_sim/config", control.sim_get_config)
    app.router.add_post("/_sim/config", control.sim_patch_config)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_on_shutdown)
    return app


@asynccontextmanager
async def serve_app(app: web.Application, host: str, port: int) -> AsyncIterator[str]:
    """Serve a simulator app on host:port (0 picks a free port); yield its base URL."""
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=2.0, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        yield f"http://{shown}:{bound_port}"
    finally:
        app[STATE_KEY].stopping.set()
        await runner.cleanup()


@asynccontextmanager
async def run_simulator(
    settings: SimulatorSettings, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Start a simulator on host:port and yield its base URL; stop it and its tasks on exit."""
    async with serve_app(create_app(settings), host, port) as base_url:
        yield base_url


async def serve_forever(
    settings: SimulatorSettings, host: str = "127.0.0.1", port: int = 8090
) -> int:
    """``onboardd simulator``: serve on host:port until SIGINT/SIGTERM; exit code 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with run_simulator(settings, host, port) as base_url:
        # A process of its own measures arrivals: what it imported so far is frozen out of the
        # collector, and full collections (which grow with the message store, to a quarter of
        # a second at 20k messages) are rarer, so its own pauses do not bunch arrival stamps.
        gc.freeze()
        gc.set_threshold(50_000, 50, 1_000)
        log.info("simulator_serving", base_url=base_url, account_sid=settings.account_sid)
        await stop.wait()
    log.info("simulator_stopped")
    return 0
