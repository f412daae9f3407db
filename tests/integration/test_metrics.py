"""/metrics scraped while the actors work: its counters checked against the database."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any

import aiohttp

from onboardd.actors import offer_matcher
from onboardd.config import Config
from onboardd.config import Supervisor as SupervisorSettings
from onboardd.db.pool import create_pool
from onboardd.metrics import Metrics, pool_waiting
from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from onboardd.supervisor import ActorState, Supervisor
from tests.campaign_support import phone, wait_for
from tests.integration.rig import Rig
from tests.integration.test_importer import make_services, messy_csv, run_until_done, stage
from tests.integration.test_offer_matcher import add_salon, all_processed, register
from tests.metrics_support import Scrape, scrape

SENDER = "whatsapp:+14155238886"
SIM = {"callbacks_enabled": True, "sent_after_ms": 20.0, "delivered_after_ms": 50.0,
       "read_after_ms": 100.0}


async def _expected(rig: Rig, campaign: str) -> tuple[dict[str, float], dict[str, float]]:
    """What the messages counters must read, from the campaign's rows: (send outcomes by
    outcome, status callbacks by status)."""
    rows = await rig.pool.fetch(
        "SELECT channel, status, twilio_message_sid IS NOT NULL AS has_sid, "
        "sent_at IS NOT NULL AS sent, delivered_at IS NOT NULL AS delivered, "
        "read_at IS NOT NULL AS read FROM invitation_messages WHERE campaign_id = $1", campaign)
    assert {r["channel"] for r in rows} == {"whatsapp"}
    outcomes = collections.Counter("accepted" if r["has_sid"] else r["status"] for r in rows)
    callbacks: collections.Counter[str] = collections.Counter()
    for r in rows:
        callbacks.update(name for name in ("sent", "delivered", "read") if r[name])
        if r["has_sid"] and r["status"] in ("failed", "undelivered"):
            callbacks[r["status"]] += 1
    return dict(outcomes), dict(callbacks)


async def test_scrape_counts_every_message_by_channel_outcome_and_status(
        make_rig: Callable[..., Any], salon: str, cipher: PiiCipher) -> None:
    rig: Rig = await make_rig(sim=SIM | {"per_number": {
        phone(1): "undelivered", phone(2): "failed", phone(3): "63003"}})
    await rig.pool.execute(
        "INSERT INTO opt_outs (phone_hash, sender, source) VALUES ($1, $2, 'inbound')",
        cipher.phone_hash(phone(4)), SENDER)
    campaign = await rig.campaign(salon, [phone(i) for i in range(30)])
    await wait_for(lambda: rig.settled(campaign))
    async with aiohttp.ClientSession() as http:

        async def callbacks_done() -> bool:
            # Every callback the simulator scheduled was posted, answered and applied.
            _outcomes, callbacks = await _expected(rig, campaign)
            return (rig.sim.dispatcher.pending == 0
                    and rig.sim.stats.callbacks_posted == sum(callbacks.values())
                    and callbacks.get("read", 0) == 26)

        await wait_for(callbacks_done)
        found = await scrape(http, rig.services.public_base_url)
    outcomes, callbacks = await _expected(rig, campaign)
    assert outcomes == {"accepted": 28, "failed": 1, "skipped": 1}  # 63003 fails at once
    assert set(callbacks) == {"sent", "delivered", "read", "failed", "undelivered"}
    assert found.by("onboardd_send_outcomes_total", "outcome", channel="whatsapp") == outcomes
    assert found.by("onboardd_status_callbacks_total", "status") == callbacks
    # Each callback POST was timed, on its route; each event went through a timed flush.
    posted = rig.sim.stats.callbacks_posted
    assert posted == sum(callbacks.values())
    route = "/api/webhooks/twilio/status"
    assert found.value("onboardd_webhook_duration_seconds_count", route=route) == posted
    flushed = found.value("onboardd_recorder_flush_events_sum")
    assert flushed is not None and flushed >= 30 + posted
    assert found.value("onboardd_recorder_flush_duration_seconds_count") == found.value(
        "onboardd_recorder_flush_events_count")
    # Each callback went through the status inbox: applied by a timed fold, none left.
    assert found.value("onboardd_status_fold_events_sum") == posted
    assert found.value("onboardd_status_fold_duration_seconds_count") == found.value(
        "onboardd_status_fold_events_count")
    assert found.value("onboardd_status_inbox_rows") == 0
    # The queues and the pool are read at scrape time.
    assert found.value("onboardd_queue_capacity", queue="status") == 1000
    assert found.value("onboardd_queue_depth", queue="campaigns") is not None
    assert found.value("onboardd_db_pool_max") == 10
    assert found.value("onboardd_db_pool_waiting") == 0
    for family in ("onboardd_db_pool_connections", "onboardd_db_pool_in_use",
                   "onboardd_db_pool_idle", "onboardd_db_pool_min"):
        assert family in found.families


def test_each_metrics_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.rate_limit_paused("sms")
    assert Scrape(first.render().decode()).value(
        "onboardd_rate_limit_pauses_total", channel="sms") == 1
    assert Scrape(second.render().decode()).value(
        "onboardd_rate_limit_pauses_total", channel="sms") is None


async def test_actor_restarts_and_states() -> None:
    metrics = Metrics()
    stopping = asyncio.Event()
    runs: list[int] = []

    async def flaky(stop: asyncio.Event) -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")
        await stop.wait()

    async def steady(stop: asyncio.Event) -> None:
        await stop.wait()

    settings = SupervisorSettings(restart_max=5, backoff_initial_s=0.01, backoff_max_s=0.05)
    sup = Supervisor(settings, stopping, on_restart=metrics.actor_restarted)
    sup.add("flaky", flaky)
    sup.add("steady", steady)
    metrics.watch_actors(sup.states, [state.value for state in ActorState])
    before = Scrape(metrics.render().decode())
    assert before.by("onboardd_actor_state", "actor", state="starting") == {
        "flaky": 1, "steady": 1}
    assert before.value("onboardd_actor_restarts_total", actor="steady") == 0
    task = asyncio.create_task(sup.run())
    await wait_for(lambda: len(runs) == 3 and sup.all_running(), timeout_s=5, every_s=0.01)
    running = Scrape(metrics.render().decode())
    assert running.value("onboardd_actor_restarts_total", actor="flaky") == 2
    assert running.value("onboardd_actor_restarts_total", actor="steady") == 0
    assert running.by("onboardd_actor_up", "actor") == {"flaky": 1, "steady": 1}
    stopping.set()
    await asyncio.wait_for(task, 2)
    stopped = Scrape(metrics.render().decode())
    assert stopped.by("onboardd_actor_up", "actor") == {}
    assert stopped.by("onboardd_actor_state", "actor", state="stopped") == {
        "flaky": 1, "steady": 1}


async def test_pool_in_use_and_waiting(config: Config, db_url: str, cipher: PiiCipher,
                                       tokens: Any) -> None:
    pool = await create_pool(config, db_url, min_size=1, max_size=1)
    services = Services(cfg=config, pool=pool, cipher=cipher, tokens=tokens)
    try:
        held = await pool.acquire()
        waiter = asyncio.create_task(pool.fetchval("SELECT 1"))
        await wait_for(lambda: pool_waiting(pool) == 1, timeout_s=5, every_s=0.01)
        busy = Scrape(services.metrics.render().decode())
        assert (busy.value("onboardd_db_pool_in_use"), busy.value("onboardd_db_pool_idle"),
                busy.value("onboardd_db_pool_waiting"), busy.value("onboardd_db_pool_max")) == (
            1, 0, 1, 1)
        await pool.release(held)
        assert await waiter == 1
        calm = Scrape(services.metrics.render().decode())
        assert (calm.value("onboardd_db_pool_in_use"), calm.value("onboardd_db_pool_waiting")) \
            == (0, 0)
    finally:
        await pool.close()


def test_pool_waiting_is_left_out_when_the_internals_differ() -> None:
    assert pool_waiting(object()) is None


async def test_import_rows_counted_as_the_batch_processes(
        make_config: Callable[..., Config], db_url: str, cipher: PiiCipher, tokens: Any,
        salon: str) -> None:
    svc = await make_services(make_config(import_chunk_rows="10"), db_url, cipher, tokens)
    try:
        batch = await stage(svc, salon, messy_csv(95)[0])
        state = await run_until_done(svc, batch)
    finally:
        await svc.pool.close()
    assert state.status == "completed" and state.processed == 95
    found = Scrape(svc.metrics.render().decode())
    assert found.value("onboardd_import_rows_total") == 95


async def test_matcher_lag_observed_once_per_event(services: Services) -> None:
    pool = services.pool
    await add_salon(pool, "Glamour Studio")
    for i in range(7):
        await register(pool, f"+9198765000{i:02d}")
    stopping = asyncio.Event()
    task = asyncio.create_task(offer_matcher.run(services, stopping))
    try:
        await wait_for(lambda: all_processed(pool))
    finally:
        stopping.set()
        await task
    processed = await pool.fetchval(
        "SELECT count(*) FROM registration_events WHERE processed_at IS NOT NULL")
    found = Scrape(services.metrics.render().decode())
    assert found.value("onboardd_match_lag_seconds_count") == processed == 7
    lag = found.value("onboardd_match_lag_seconds_sum")
    assert lag is not None and lag >= 0
