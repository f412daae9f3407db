"""kill -9 of the daemon in the middle of a campaign: after a restart every customer has been
messaged exactly once, as the simulator (running in this test process) recorded it."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from onboardd.auth import TokenCodec
from onboardd.pii import PiiCipher
from onboardd.simulator.settings import SimulatorSettings
from tests.campaign_support import add_customers, add_offer, phone, simulator, wait_for
from tests.conftest import simulated_twilio_env
from tests.e2e.daemon import Daemon

CUSTOMERS = 300


def daemon_env(db_url: str, state: Path, sim_url: str, sim: SimulatorSettings
               ) -> dict[str, str]:
    """Real-Twilio mode pointed at the external simulator, short leases for a quick recovery."""
    return simulated_twilio_env(
        db_url, state, sim_url, sim,
        ONBOARDD_TWILIO_WHATSAPP_RATE_PER_S="150",
        ONBOARDD_CAMPAIGNS_LEASE_S="3",
        ONBOARDD_CAMPAIGNS_SWEEP_INTERVAL_S="0.5",
        ONBOARDD_CAMPAIGNS_DISPATCH_POLL_S="0.2",
        ONBOARDD_LOG_LEVEL="warning",
    )


async def start(env: dict[str, str], cwd: Path) -> Daemon:
    daemon = Daemon(env, cwd)
    await asyncio.to_thread(daemon.wait_ready)
    return daemon


async def test_kill9_mid_campaign_then_restart_messages_everyone_once(
        db_url: str, tmp_path: Path, cipher: PiiCipher, tokens: TokenCodec) -> None:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        salon: str = await pool.fetchval(
            "INSERT INTO salons (name, app_download_link) VALUES ('Glamour', NULL) RETURNING id")
        phones = [phone(i) for i in range(CUSTOMERS)]
        await add_customers(pool, cipher, salon, phones)
        offer = await add_offer(pool, salon)
        async with simulator(latency_ms=30.0, rate_per_s=0.0, sent_after_ms=50.0,
                             delivered_after_ms=100.0, read_after_ms=150.0) as (sim_url, sim):
            env = daemon_env(db_url, tmp_path / "state", sim_url, sim.settings)
            first = await start(env, tmp_path)
            try:
                headers = {"Authorization": "Bearer " + tokens.encode(
                    "admin-1", "admin", [salon], 3600)}
                api = f"{first.base_url}/api/salons/{salon}/invitation-campaigns"
                async with aiohttp.ClientSession(headers=headers) as http:
                    made = await (await http.post(api, json={
                        "name": "Launch", "channel": "whatsapp", "welcomeOfferId": offer})).json()
                    sent = await http.post(f"{api}/{made['id']}/send")
                    assert sent.status == 202, await sent.text()

                async def partly_sent() -> bool:
                    return len(sim.store) >= CUSTOMERS // 4

                await wait_for(partly_sent, timeout_s=30, every_s=0.005)
            finally:
                first.kill()  # kill -9: no shutdown, requests in flight are cut off
            assert len(sim.store) < CUSTOMERS, "campaign finished before the kill"
            in_flight = await pool.fetchval(
                "SELECT count(*) FROM invitation_messages WHERE status = 'sending'")

            second = await start(env, tmp_path)
            try:
                async def finished() -> bool:
                    left = await pool.fetchval(
                        "SELECT count(*) FROM invitation_messages "
                        "WHERE status IN ('pending', 'sending')")
                    return bool(left == 0)

                await wait_for(finished, timeout_s=60, every_s=0.1)
            finally:
                code = await asyncio.to_thread(second.stop, signal.SIGTERM)
            assert code == 0, second.log()

            per_number = Counter(r.to.removeprefix("whatsapp:") for r in sim.store.all())
            assert set(per_number) == set(phones)
            assert max(per_number.values()) == 1, "a customer was messaged twice"
            rows: list[Any] = await pool.fetch(
                "SELECT m.status, m.twilio_message_sid, c.normalized_phone_enc "
                "FROM invitation_messages m JOIN imported_customers c "
                "ON c.id = m.imported_customer_id")
            by_number = {r.to.removeprefix("whatsapp:"): r.sid for r in sim.store.all()}
            assert len(rows) == CUSTOMERS
            for row in rows:
                number = cipher.decrypt(row["normalized_phone_enc"], "phone")
                assert row["twilio_message_sid"] == by_number[number]
            print(f"cut off mid-request at the kill: {in_flight}")
    finally:
        await pool.close()
