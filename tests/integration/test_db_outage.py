"""A PostgreSQL restart under the actors, the pool and /readyz, on a dedicated server stopped
abruptly (pg_ctl stop -m immediate) and started again: nothing is lost or done twice, nothing
crashes, and each part is back within seconds of the database."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from aiohttp.test_utils import TestClient, TestServer
from structlog.testing import capture_logs

from onboardd.actors import importer, offer_matcher, status_recorder
from onboardd.auth import TokenCodec
from onboardd.config import load
from onboardd.db import imports as import_db
from onboardd.db.pool import unreachable
from onboardd.domain.status_events import SendOutcome, StatusWork
from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from onboardd.web.app import create_app
from onboardd.web.health import READYZ_DB_TIMEOUT_S
from tests.campaign_support import wait_for
from tests.conftest import daemon_env, services_for
from tests.integration.test_importer import assert_exact, messy_csv, stage
from tests.integration.test_offer_matcher import add_customer, add_offer, add_salon, register
from tests.integration.test_status_recorder import (
    T0,
    assert_counters_equal,
    cb,
    message_rows,
    new_sid,
    seed_campaign,
)
from tests.restartable_pg import RestartablePostgres, migrated_database, restartable_server
from tests.web.admin.conftest import sign_in

LISTENERS = ("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
             "AND application_name = 'onboardd-listen'")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartablePostgres]:
    """This module's own server: the session's shared one is never restarted."""
    with restartable_server(tmp_path_factory.mktemp("restartable-pg")) as pg:
        yield pg


@pytest.fixture
async def url(server: RestartablePostgres) -> AsyncIterator[str]:
    """A fresh, migrated database on the dedicated server."""
    if not server.running:
        await asyncio.to_thread(server.start)
    async with migrated_database(server, "o_" + uuid.uuid4().hex[:12]) as db_url:
        yield db_url


@contextlib.asynccontextmanager
async def services_on(url: str, state: Path, cipher: PiiCipher, tokens: TokenCodec,
                      **env: str) -> AsyncIterator[Services]:
    """Services on the database with ONBOARDD_* overrides."""
    cfg = load(None, daemon_env(url, state, **env))
    async with services_for(cfg, url, cipher, tokens, max_size=4) as svc:
        yield svc


@pytest.fixture
async def services(url: str, tmp_path: Path, cipher: PiiCipher, tokens: TokenCodec
                   ) -> AsyncIterator[Services]:
    """Services with small import chunks and a matcher that polls only every 10 minutes
    (only LISTEN wakes it within a test)."""
    async with services_on(url, tmp_path / "state", cipher, tokens,
                           ONBOARDD_IMPORT_CHUNK_ROWS="20",
                           ONBOARDD_OFFERS_MATCH_POLL_S="600") as svc:
        yield svc


@contextlib.asynccontextmanager
async def actor(run: Any, svc: Services) -> AsyncIterator[asyncio.Task[None]]:
    """Run one actor for the block; it must still be running (not crashed) at the end."""
    stopping = asyncio.Event()
    task = asyncio.create_task(run(svc, stopping))
    try:
        yield task
        assert not task.done(), task
    finally:
        stopping.set()
        await asyncio.wait_for(task, 30)


def waited(logs: list[dict[str, Any]], actor_name: str) -> bool:
    """The actor logged that it waits for the database."""
    return any(e["event"] == "database_unavailable_waiting" and e["actor"] == actor_name
               for e in logs)


async def test_recorder_keeps_send_outcomes_through_a_restart(
        server: RestartablePostgres, services: Services) -> None:
    salon = await add_salon(services.pool, "S")
    campaign, ids = await seed_campaign(services, salon, 30)
    loop = asyncio.get_running_loop()
    sids = [new_sid() for _ in ids]
    outcomes = [StatusWork(items=[SendOutcome(m, "accepted", T0, "whatsapp", sid=s)],
                           done=loop.create_future()) for m, s in zip(ids, sids, strict=True)]
    callback = StatusWork(items=[cb(sids[0], "delivered")], done=loop.create_future())
    with capture_logs() as logs:
        async with actor(status_recorder.run, services):
            await asyncio.to_thread(server.crash)
            for work in [*outcomes, callback]:
                services.queues.status.put_nowait(work)
            # The callback's producer (the webhook: Twilio retries after its 503) is told now.
            assert callback.done is not None
            with pytest.raises(Exception) as failed:  # noqa: PT011 (any "unreachable" error)
                await asyncio.wait_for(asyncio.shield(callback.done), 5)
            assert unreachable(failed.value)
            # The send outcomes are kept while the database is down ...
            await wait_for(lambda: waited(logs, "status_recorder"), timeout_s=5)
            assert not any(w.done is not None and w.done.done() for w in outcomes)
            await asyncio.to_thread(server.start)
            # ... and land once it is back: every future resolved without error.
            await asyncio.wait_for(asyncio.gather(*(w.done for w in outcomes if w.done)), 30)
    rows = await message_rows(services, campaign)
    assert {(r["status"], r["twilio_message_sid"]) for r in rows.values()} == {
        ("queued", sid) for sid in sids}
    await assert_counters_equal(services, campaign)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == []


async def test_recorder_stopped_while_the_database_is_down_fails_what_it_kept(
        server: RestartablePostgres, services: Services) -> None:
    salon = await add_salon(services.pool, "S")
    _campaign, ids = await seed_campaign(services, salon, 1)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    stopping = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(status_recorder.run(services, stopping))
        await asyncio.to_thread(server.crash)
        services.queues.status.put_nowait(StatusWork(
            items=[SendOutcome(ids[0], "accepted", T0, "whatsapp", sid=new_sid())], done=done))
        await wait_for(lambda: waited(logs, "status_recorder"), timeout_s=5)
        # Told to stop (drain-last: the producers are gone), it still tries to record ...
        stopping.set()
        await asyncio.sleep(0.3)  # the behaviour: a drain that cannot land keeps retrying
        assert not task.done() and not done.done()
        # ... until the supervisor cancels it when the grace period ran out.
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert isinstance(done.exception(), RuntimeError)
    assert [e["events"] for e in logs if e["event"] == "status_events_not_recorded_at_stop"
            ] == [1]


async def test_importer_resumes_its_batch_after_a_restart(
        server: RestartablePostgres, services: Services) -> None:
    rows = 8000
    salon = await add_salon(services.pool, "S")
    text, expected = messy_csv(rows)
    batch = await stage(services, salon, text)
    with capture_logs() as logs:
        async with actor(importer.run, services):
            async def started() -> bool:
                processed = await services.pool.fetchval(
                    "SELECT processed FROM customer_import_batches WHERE id = $1", batch)
                return bool(processed)

            await wait_for(started, timeout_s=30, every_s=0.005)
            await asyncio.to_thread(server.crash)
            await wait_for(lambda: waited(logs, "importer"), timeout_s=5)
            await asyncio.to_thread(server.start)

            async def finished() -> bool:
                state = await import_db.batch_status(services.pool, batch, salon)
                return state is not None and state.status != "processing"

            await wait_for(finished, timeout_s=60, every_s=0.05)
    state = await import_db.batch_status(services.pool, batch, salon)
    assert state is not None
    # Every row once: imported or an error, none twice, none missing.
    await assert_exact(services, state, expected, rows)


async def test_matcher_listens_again_after_a_restart(
        server: RestartablePostgres, services: Services, cipher: PiiCipher) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    await add_offer(pool, salon)
    await add_customer(pool, cipher, salon, "+919866666666")
    async with actor(offer_matcher.run, services):
        await wait_for(lambda: pool.fetchval(LISTENERS), timeout_s=10)
        await asyncio.to_thread(server.crash)
        await asyncio.to_thread(server.start)
        # The poll interval is 10 minutes: only a new subscription can deliver this.
        await wait_for(lambda: pool.fetchval(LISTENERS), timeout_s=15)
        await register(pool, "9866666666")

        async def matched() -> bool:
            return bool(await pool.fetchval(
                "SELECT count(*) FROM registration_events WHERE processed_at IS NOT NULL"))

        await wait_for(matched, timeout_s=10)
    assert await pool.fetchval("SELECT count(*) FROM welcome_offer_redemptions") == 1


async def test_silent_listen_connection_is_replaced_within_the_poll_interval(
        url: str, tmp_path: Path, cipher: PiiCipher, tokens: TokenCodec) -> None:
    poll_s = 1.0
    async with services_on(url, tmp_path / "state", cipher, tokens,
                           ONBOARDD_OFFERS_MATCH_POLL_S=str(poll_s)) as svc:
        pool = svc.pool
        async with actor(offer_matcher.run, svc):
            pid = await wait_for_value(lambda: pool.fetchval(LISTENERS))
            # Its backend stops answering without closing the socket (a silent network).
            silent = psutil.Process(pid)
            silent.send_signal(signal.SIGSTOP)
            try:
                started = time.monotonic()
                new_pid = await wait_for_value(
                    lambda: pool.fetchval(LISTENERS + " AND pid <> $1", pid), timeout_s=15)
                replaced_after = time.monotonic() - started
            finally:
                silent.send_signal(signal.SIGCONT)
            assert new_pid != pid
            # A bound, not a measurement: the next poll's probe times out and replaces it.
            assert replaced_after < poll_s + offer_matcher.PROBE_TIMEOUT_S + 3.0


async def wait_for_value(check: Any, timeout_s: float = 10.0) -> Any:
    """The first truthy value an async check returns (fails after timeout_s)."""
    found: list[Any] = []

    async def got() -> bool:
        value = await check()
        if value:
            found.append(value)
        return bool(value)

    await wait_for(got, timeout_s=timeout_s)
    return found[0]


async def test_pool_replaces_broken_connections_and_keeps_its_size(
        server: RestartablePostgres, services: Services) -> None:
    pool = services.pool
    size = pool.get_max_size()

    async def busy() -> list[int]:
        async def one() -> int:
            async with pool.acquire() as conn:
                pid: int = await conn.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.05)")
                return pid
        return await asyncio.gather(*(one() for _ in range(3 * size)))

    before = set(await busy())
    assert len(before) == size
    await asyncio.to_thread(server.crash)
    await asyncio.to_thread(server.start)
    # No query lands on a connection the restart broke: every one is new, none fails.
    after = set(await busy())
    assert after and not after & before
    assert pool.get_size() <= size
    ours = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'onboardd'")
    assert ours <= size


def _server_processes(server: RestartablePostgres) -> list[psutil.Process]:
    postmaster = psutil.Process(server.postmaster_pid())
    return [postmaster, *postmaster.children(recursive=True)]


async def test_readyz_is_503_at_once_while_down_and_within_its_bound_when_hung(
        server: RestartablePostgres, services: Services) -> None:
    async with TestClient(TestServer(create_app(services))) as client:
        assert (await client.get("/readyz")).status == 200

        async def readyz() -> tuple[int, dict[str, Any], float]:
            started = time.monotonic()
            resp = await client.get("/readyz")
            return resp.status, await resp.json(), time.monotonic() - started

        await asyncio.to_thread(server.crash)
        status, body, took = await readyz()
        assert status == 503 and failing_database(body).startswith("unreachable")
        assert took < READYZ_DB_TIMEOUT_S
        await asyncio.to_thread(server.start)
        assert (await client.get("/readyz")).status == 200

        # A server that does not answer at all (every process stopped, sockets open).
        processes = _server_processes(server)
        for process in processes:
            process.send_signal(signal.SIGSTOP)
        try:
            for _ in range(2):  # the second while the first one's query is still stuck
                status, body, took = await readyz()
                assert status == 503, body
                assert failing_database(body).startswith("unreachable")
                # A bound, not a measurement: without it /readyz waited 30 s here.
                assert took < READYZ_DB_TIMEOUT_S + 1.0
        finally:
            for process in processes:
                process.send_signal(signal.SIGCONT)
        await wait_for(lambda: _ready(client), timeout_s=40, every_s=0.2)


def failing_database(body: dict[str, Any]) -> str:
    """What a 503 of /readyz says of the database."""
    problem: str = body["error"]["details"]["failing"]["database"]
    return problem


async def _ready(client: TestClient[Any, Any]) -> bool:
    return (await client.get("/readyz")).status == 200


async def test_api_and_admin_pages_answer_503_while_down_and_work_again_after(
        server: RestartablePostgres, services: Services, tokens: TokenCodec) -> None:
    """A request the database cannot serve is 503 with Retry-After (never a 500): the API's in
    the one error shape, the admin UI's as a page in words; both work once it is back."""
    salon = await add_salon(services.pool, "Outage Salon")
    token = tokens.encode("admin-outage", "admin", [salon], 3600)
    api_path = f"/api/salons/{salon}/welcome-offers"
    headers = {"Authorization": "Bearer " + token}
    async with TestClient(TestServer(create_app(services))) as client:
        await sign_in(client, token)
        assert (await client.get(api_path, headers=headers)).status == 200
        await asyncio.to_thread(server.crash)
        try:
            api = await client.get(api_path, headers=headers)
            assert api.status == 503, await api.text()
            assert api.headers["Retry-After"] == "5"
            error = (await api.json())["error"]
            assert (error["code"], error["details"]) == (
                "unavailable", {"reason": "database_unreachable"})
            page = await client.get("/admin/offers", allow_redirects=False)
            assert page.status == 503
            assert "text/html" in page.headers["Content-Type"]
            assert page.headers["Retry-After"] == "5"
            text = await page.text()
            assert "Not available just now" in text and "Traceback" not in text
        finally:
            await asyncio.to_thread(server.start)
        await wait_for(lambda: _ok(client, api_path, headers), timeout_s=20, every_s=0.2)
        assert (await client.get("/admin/offers", allow_redirects=False)).status == 200


async def _ok(client: TestClient[Any, Any], path: str, headers: dict[str, str]) -> bool:
    return (await client.get(path, headers=headers)).status == 200
