"""PostgreSQL stopped abruptly (pg_ctl stop -m immediate) and started again while a daemon
(a subprocess) sends a campaign, imports a file and matches registrations: the daemon stays up,
/readyz is 503 during the outage and 200 after it, every customer is messaged exactly once (as
the simulator recorded it), the import completes exactly once and every registration is matched
once. The server is this test's own (tests/restartable_pg.py), never the session's."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest

from onboardd.auth import TokenCodec
from onboardd.pii import PiiCipher
from onboardd.simulator.settings import SimulatorSettings
from tests.campaign_support import add_customers, add_offer, add_salon, phone, simulator, wait_for
from tests.conftest import simulated_twilio_env
from tests.e2e.daemon import Daemon
from tests.integration.test_importer import messy_csv
from tests.restartable_pg import RestartablePostgres, migrated_database, restartable_server

CUSTOMERS = 300  # messaged by the campaign
REGISTRATIONS = 2000  # app users, half before the restart, half after
IMPORT_ROWS = 10_000
OUTAGE_S = 3.0  # how long the server stays down


def daemon_env(db_url: str, state: Path, sim_url: str, sim: SimulatorSettings
               ) -> dict[str, str]:
    """Real-Twilio mode against the external simulator; a campaign that lasts ~5 s, an import
    in small chunks, short leases and polls (as in the kill -9 test) for a quick recovery."""
    return simulated_twilio_env(
        db_url, state, sim_url, sim,
        ONBOARDD_TWILIO_WHATSAPP_RATE_PER_S="60",
        ONBOARDD_CAMPAIGNS_LEASE_S="3",
        ONBOARDD_CAMPAIGNS_SWEEP_INTERVAL_S="0.5",
        ONBOARDD_CAMPAIGNS_DISPATCH_POLL_S="0.2",
        ONBOARDD_IMPORT_CHUNK_ROWS="25",
        ONBOARDD_OFFERS_MATCH_POLL_S="1",
        ONBOARDD_SUPERVISOR_POLL_INTERVAL_S="0.5",
        ONBOARDD_LOG_LEVEL="info",
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartablePostgres]:
    with restartable_server(tmp_path_factory.mktemp("restart-pg")) as pg:
        yield pg


@pytest.fixture
async def url(server: RestartablePostgres) -> AsyncIterator[str]:
    async with migrated_database(server, "r_" + uuid.uuid4().hex[:12]) as db_url:
        yield db_url


class Watch:
    """Samples /readyz and the simulator's sends every 50 ms: (seconds, readyz, sends)."""

    def __init__(self, daemon: Daemon, sends: Any) -> None:
        self.daemon = daemon
        self.sends = sends
        self.samples: list[tuple[float, int, int]] = []
        self.started = time.monotonic()

    async def run(self) -> None:
        while True:
            status, _ = await asyncio.to_thread(self.daemon.get, "/readyz", 5.0)
            self.samples.append((time.monotonic() - self.started, status, self.sends()))
            await asyncio.sleep(0.05)

    def now(self) -> float:
        return time.monotonic() - self.started

    def first(self, after: float, ready: bool | None = None, sends_above: int | None = None
              ) -> float | None:
        """The first sample time after `after` with /readyz 200 (ready) or more sends."""
        for at, status, sends in self.samples:
            if at < after:
                continue
            if ready is not None and (status == 200) == ready:
                return at
            if sends_above is not None and sends > sends_above:
                return at
        return None


@contextlib.asynccontextmanager
async def watching(watch: Watch) -> AsyncIterator[Watch]:
    task = asyncio.create_task(watch.run())
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def log_events(daemon: Daemon) -> Counter[str]:
    """How often each event name appears in the daemon's JSON log."""
    events: Counter[str] = Counter()
    for line in daemon.log().splitlines():
        with contextlib.suppress(msgspec.DecodeError):
            record = msgspec.json.decode(line)
            if isinstance(record, dict) and "event" in record:
                events[str(record["event"])] += 1
    return events


async def test_postgres_restart_mid_campaign_import_and_matching(
        server: RestartablePostgres, url: str, tmp_path: Path, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    assert pool is not None
    try:
        salon = await add_salon(pool, "Glamour")
        phones = [phone(i) for i in range(CUSTOMERS)]
        await add_customers(pool, cipher, salon, phones)
        offer = await add_offer(pool, salon)
        # The registrations match another salon's customers (not in the campaign's audience).
        members = await add_salon(pool, "Members")
        await add_offer(pool, members)
        member_phones = [phone(100_000 + i) for i in range(REGISTRATIONS)]
        await add_customers(pool, cipher, members, member_phones, status="invited")
        importing = await add_salon(pool, "Importing")
        csv_text, expected = messy_csv(IMPORT_ROWS)
        headers = {"Authorization": "Bearer " + tokens.encode(
            "admin-1", "admin", [salon, importing], 3600)}

        async with simulator(latency_ms=30.0, rate_per_s=0.0, sent_after_ms=50.0,
                             delivered_after_ms=100.0, read_after_ms=150.0) as (sim_url, sim):
            daemon = Daemon(daemon_env(url, tmp_path / "state", sim_url, sim.settings),
                            tmp_path)
            try:
                await asyncio.to_thread(daemon.wait_ready)
                async with aiohttp.ClientSession(base_url=daemon.base_url,
                                                 headers=headers) as http, \
                        watching(Watch(daemon, lambda: len(sim.store))) as watch:
                    batch = await _start_import(http, importing, csv_text)
                    await _start_campaign(http, salon, offer)
                    await _register(pool, member_phones[:REGISTRATIONS // 2])

                    async def all_under_way() -> bool:
                        processed = await pool.fetchval(
                            "SELECT processed FROM customer_import_batches WHERE id = $1", batch)
                        return len(sim.store) >= CUSTOMERS // 4 and processed > 0

                    await wait_for(all_under_way, timeout_s=30, every_s=0.01)
                    await pool.close()  # the test's own connections die with the server too
                    crashed_at = watch.now()
                    await asyncio.to_thread(server.crash)
                    sent_at_crash = len(sim.store)
                    await asyncio.sleep(OUTAGE_S)
                    # server.start returns once the server accepts connections, so a probe
                    # just before back_at may already see it up: "down" ends here.
                    restarting_at = watch.now()
                    await asyncio.to_thread(server.start)
                    back_at = watch.now()
                    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
                    assert pool is not None
                    await _register(pool, member_phones[REGISTRATIONS // 2:])

                    async def done() -> bool:
                        left = await pool.fetchval(
                            "SELECT (SELECT count(*) FROM invitation_messages "
                            "        WHERE status IN ('pending', 'sending'))"
                            " + (SELECT count(*) FROM registration_events "
                            "    WHERE processed_at IS NULL)"
                            " + (SELECT count(*) FROM customer_import_batches "
                            "    WHERE status = 'processing')")
                        return bool(left == 0)

                    await wait_for(done, timeout_s=90, every_s=0.1)
                    finished_at = watch.now()
                    await wait_for(lambda: watch.first(finished_at, ready=True) is not None,
                                   timeout_s=10)
                assert daemon.proc.poll() is None, "the daemon exited:\n" + daemon.log()
            finally:
                code = await asyncio.to_thread(daemon.stop, signal.SIGTERM)
            events = log_events(daemon)
            assert code == 0, daemon.log()

            # /readyz: 503 while the server was down, 200 once it was back.
            during = [s for at, s, _ in watch.samples if crashed_at + 0.5 < at < restarting_at]
            assert during and set(during) == {503}, during
            ready_again = watch.first(back_at, ready=True)
            resumed = watch.first(back_at, sends_above=sent_at_crash)
            assert ready_again is not None and resumed is not None
            print(f"outage {back_at - crashed_at:.1f}s; after the server was back: /readyz 200 "
                  f"in {ready_again - back_at:.2f}s, sending again in {resumed - back_at:.2f}s, "
                  f"all done in {finished_at - back_at:.1f}s; sent before the crash "
                  f"{sent_at_crash}/{CUSTOMERS}; log: "
                  + ", ".join(f"{name}={events[name]}" for name in (
                      "database_unavailable_waiting", "actor_waiting_for_database",
                      "actor_crashed", "outcomes_not_recorded", "send_crashed"))
                  )

            # Every customer messaged exactly once, and the database agrees with Twilio.
            per_number = Counter(r.to.removeprefix("whatsapp:") for r in sim.store.all())
            assert set(per_number) == set(phones)
            assert max(per_number.values()) == 1, "a customer was messaged twice"
            by_number = {r.to.removeprefix("whatsapp:"): r.sid for r in sim.store.all()}
            rows = await pool.fetch(
                "SELECT m.twilio_message_sid, c.normalized_phone_enc FROM invitation_messages m "
                "JOIN imported_customers c ON c.id = m.imported_customer_id")
            assert len(rows) == CUSTOMERS
            for row in rows:
                number = cipher.decrypt(row["normalized_phone_enc"], "phone")
                assert row["twilio_message_sid"] == by_number[number]
        await _assert_imported_once(pool, batch, expected)
        await _assert_matched_once(pool, members)
        assert events["outcomes_not_recorded"] == 0
        assert events["actor_crash_loop"] == 0
    finally:
        await pool.close()


async def _start_import(http: aiohttp.ClientSession, salon: str, csv_text: str) -> str:
    body = aiohttp.FormData()
    body.add_field("file", csv_text.encode(), filename="customers.csv",
                   content_type="application/octet-stream")
    resp = await http.post(f"/api/salons/{salon}/customers/import", data=body)
    preview = await resp.json()
    assert resp.status == 201, preview
    batch: str = preview["batchId"]
    resp = await http.post(f"/api/salons/{salon}/customers/import/{batch}/confirm")
    assert resp.status == 202, await resp.text()
    return batch


async def _start_campaign(http: aiohttp.ClientSession, salon: str, offer: str) -> None:
    api = f"/api/salons/{salon}/invitation-campaigns"
    made = await (await http.post(api, json={
        "name": "Launch", "channel": "whatsapp", "welcomeOfferId": offer})).json()
    sent = await http.post(f"{api}/{made['id']}/send")
    assert sent.status == 202, await sent.text()


async def _register(pool: asyncpg.Pool, phones: list[str]) -> None:
    """App users sign up, as the host app inserts them (national numbers)."""
    await pool.executemany("INSERT INTO users (phone) VALUES ($1)",
                           [(p.removeprefix("+91"),) for p in phones])


async def _assert_imported_once(pool: asyncpg.Pool, batch: str, expected: dict[str, int]
                                ) -> None:
    state = await pool.fetchrow(
        "SELECT status, processed, total_records, successful_imports, failed_imports, "
        "duplicate_skipped FROM customer_import_batches WHERE id = $1", batch)
    assert state is not None
    assert (state["status"], state["processed"], state["total_records"]) == (
        "completed", IMPORT_ROWS, IMPORT_ROWS)
    assert (state["successful_imports"], state["failed_imports"],
            state["duplicate_skipped"]) == (
        expected["imported"], expected["failed"], expected["duplicates"])
    stored = await pool.fetch(
        "SELECT source_row FROM imported_customers WHERE import_batch_id = $1", batch)
    numbers = [r["source_row"] for r in stored]
    assert len(numbers) == len(set(numbers)) == expected["imported"]


async def _assert_matched_once(pool: asyncpg.Pool, salon: str) -> None:
    assert await pool.fetchval(
        "SELECT count(*) FROM registration_events WHERE processed_at IS NULL") == 0
    links = await pool.fetch(
        "SELECT linked_user_id, count(*) AS n FROM imported_customers "
        "WHERE salon_id = $1 AND linked_user_id IS NOT NULL GROUP BY linked_user_id", salon)
    assert len(links) == REGISTRATIONS and {r["n"] for r in links} == {1}
    grants = await pool.fetch(
        "SELECT user_id, count(*) AS n FROM welcome_offer_redemptions GROUP BY user_id")
    assert len(grants) == REGISTRATIONS and {r["n"] for r in grants} == {1}
