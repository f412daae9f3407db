"""Wiring of `onboardd serve`: database, migrations, simulator, actors, web front, signals."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import AsyncIterator

from aiohttp import web

from onboardd.actors import readiness, register_actors
from onboardd.config import Config
from onboardd.first_run import banner, ensure_first_salon
from onboardd.logging import get_logger
from onboardd.runtime import open_services
from onboardd.sdnotify import notify
from onboardd.simulator.app import run_simulator
from onboardd.supervisor import CrashLoop, Supervisor
from onboardd.twilio import account as twilio_account
from onboardd.web.app import create_app
from onboardd.web.server import front_runner

log = get_logger("daemon")

# How long in-flight HTTP requests get to finish once shutdown starts.
HTTP_DRAIN_S = 5.0


@contextlib.asynccontextmanager
async def twilio_endpoint(cfg: Config) -> AsyncIterator[str]:
    """The base URL of the Twilio API to use: the configured one, or the built-in simulator
    (signing with the state directory's random token, see onboardd.twilio.account)."""
    if not cfg.simulated_twilio:
        if cfg.simulator.enabled:
            log.warning("simulator_enabled_ignored", reason="Twilio credentials are configured")
        yield cfg.twilio.api_base_url
        return
    async with run_simulator(twilio_account.simulator_settings(cfg), "127.0.0.1", 0) as base_url:
        log.warning("twilio_simulator_in_use", base_url=base_url,
                    hint="no Twilio credentials configured: messages go to the simulator")
        yield base_url


# CPython's cyclic collector runs a young-generation pass every 700 net allocations (default).
HEAP_THRESHOLDS = (50_000, 10, 10)


def settle_heap() -> None:
    """Once started: what start-up allocated (modules, config, the app, the services) is frozen
    out of the cyclic garbage collector, and its young-generation passes are made rarer.

    Every status callback waits for the recorder's commit, so each request in flight holds its
    coroutines, request, form and future for milliseconds: with the default threshold the
    collector ran a pass every few dozen callbacks (some 500 passes, 4 of them full ones, for
    20k callbacks in tests/bench/bench_webhooks.py: 30-40 us of CPU per callback, and each full
    pass over the whole heap stalled the loop for 50 ms or more, in Twilio's p99). Cyclic
    garbage is still collected, in passes about 70 times rarer that, with start-up frozen,
    scan only what came after it."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*HEAP_THRESHOLDS)


def warn_about_settings(cfg: Config) -> None:
    """Settings that work but weaken a guarantee: one warning each, at every start."""
    if not cfg.offers.check_requires_proof:
        log.warning("check_requires_proof_off",
                    hint="[offers] check_requires_proof = false: check-imported-customer tells "
                         "any caller whether any number is a salon's customer; have the host "
                         "app add the verified phone claim to its tokens, then remove the "
                         "setting")


async def serve(cfg: Config) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or an actor crash loop (exit 1)."""
    twilio_account.check_mode(cfg)  # before any database is touched
    warn_about_settings(cfg)
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shutdown.set)
    async with open_services(cfg) as services, twilio_endpoint(cfg) as twilio_url:
        services.twilio_base_url = twilio_url
        services.public_base_url = (cfg.http.public_base_url
                                    or f"http://{cfg.http.host}:{cfg.http.port}").rstrip("/")
        if cfg.embedded_db:
            await ensure_first_salon(services)
        supervisor = Supervisor(cfg.supervisor, services.stopping,
                                on_restart=services.metrics.actor_restarted)
        register_actors(supervisor, services)

        runner = front_runner(create_app(services, readiness(supervisor, services)), cfg.http,
                              shutdown_timeout=HTTP_DRAIN_S)
        await runner.setup()
        site = web.TCPSite(runner, cfg.http.host, cfg.http.port)
        actors = asyncio.create_task(supervisor.run(), name="supervisor")
        crashed = False
        try:
            await site.start()
            settle_heap()
            log.info("serving", host=cfg.http.host, port=cfg.http.port,
                     embedded_db=cfg.embedded_db, twilio=twilio_url)
            notify("READY=1")
            if cfg.embedded_db:
                print(await banner(services), flush=True)
            # A signal, or the supervisor's own stop after a crash loop (it stops the actors
            # gracefully, then raises CrashLoop): either way the web front stops first.
            waits = {asyncio.create_task(shutdown.wait(), name="shutdown-wait"),
                     asyncio.create_task(services.stopping.wait(), name="stopping-wait")}
            await asyncio.wait({actors, *waits}, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        finally:
            notify("STOPPING=1")
            log.info("shutting_down")
            await runner.cleanup()  # stop accepting, let in-flight requests finish
            # Then the actors finish or hand back claimed work; the status recorder drains last.
            services.stopping.set()
            try:
                await actors
            except CrashLoop as exc:
                log.critical("exiting_after_crash_loop", error=str(exc))
                crashed = True
        log.info("stopped", exit_code=int(crashed))
        return 1 if crashed else 0
