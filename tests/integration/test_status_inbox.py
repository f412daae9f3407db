"""The status inbox on a real database: a status callback is durable (and answered) once it is an
inbox row, and the status folder applies each row exactly once, in inbox order, whatever fails or
runs beside it: a fold cut off midway, two instances folding at once, a stop, an erase."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from onboardd.actors import status_folder, status_recorder
from onboardd.db import delivery as delivery_db
from onboardd.db import status_inbox as inbox_db
from onboardd.db.delivery import FlushConnection
from onboardd.db.pool import create_pool
from onboardd.domain.status_events import SendOutcome, StatusCallback, StatusWork
from onboardd.runtime import Services
from onboardd.services import customers as customers_service
from onboardd.web.app import create_app
from tests.campaign_support import wait_for
from tests.integration.test_status_recorder import (
    accept_all,
    assert_counters_equal,
    cb,
    message_rows,
    new_sid,
    seed_campaign,
)
from tests.status_inbox_support import fold_inbox, inbox_drained, inbox_rows
from tests.web.test_webhooks import STATUS, post_signed, status_form


@contextlib.asynccontextmanager
async def running(services: Services, *actors: Any) -> AsyncIterator[None]:
    """These actors (entry coroutines of onboardd.actors) running until the block ends."""
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(actor.run(services, stopping)) for actor in actors]
    try:
        yield
    finally:
        stopping.set()
        await asyncio.gather(*tasks)


async def append(services: Services, events: list[StatusCallback]) -> None:
    """Callbacks made durable in the inbox, not applied: what the recorder's flush does with
    webhook callbacks (here without a recorder, which would also fold them when it stops)."""
    result = await delivery_db.record_batch(services.pool, [], 3600.0, inbox=events)
    assert result.inboxed == len(events)


async def test_a_callback_is_answered_once_durable_in_the_inbox_then_applied(
        services: Services, salon: str) -> None:
    campaign, ids = await seed_campaign(services, salon, 2)
    sids = await accept_all(services, ids)
    async with TestClient(TestServer(create_app(services))) as client:
        services.public_base_url = str(client.make_url("")).rstrip("/")
        async with running(services, status_recorder):  # no folder yet
            code, _ = await post_signed(client, services, STATUS,
                                        status_form(sids[0], "delivered"))
            assert code == 200
            # Durable: the row is there when the answer is, and nothing is applied yet.
            kept = await services.pool.fetch("SELECT sid, status FROM status_inbox")
            assert [(r["sid"], r["status"]) for r in kept] == [(sids[0], "delivered")]
            assert {r["status"] for r in (await message_rows(services, campaign)).values()
                    } == {"queued"}
            async with running(services, status_folder):
                await inbox_drained(services)
                assert (await message_rows(services, campaign))[ids[0]]["status"] == "delivered"
                # While the folder runs, a callback is applied within moments of its answer.
                code, _ = await post_signed(client, services, STATUS,
                                            status_form(sids[1], "read"))
                assert code == 200
                await wait_for(lambda: _status_is(services, ids[1], "read"), timeout_s=2)
    assert await inbox_rows(services) == 0
    counters = await assert_counters_equal(services, campaign)
    assert counters.stored["delivered"] == 2 and counters.stored["read"] == 1


async def _status_is(services: Services, message_id: str, status: str) -> bool:
    found = await services.pool.fetchval(
        "SELECT status FROM invitation_messages WHERE id = $1", message_id)
    return bool(found == status)


async def test_folds_apply_in_inbox_order_across_batches(services: Services, salon: str,
                                                         monkeypatch: Any) -> None:
    """The first failure is kept, whichever batch holds the next one: the same result as one
    recorder applying them in arrival order."""
    monkeypatch.setattr(status_folder, "FOLD_MAX", 3)
    campaign, ids = await seed_campaign(services, salon, 4)
    sids = await accept_all(services, ids)
    events = [cb(sids[0], "sent", 1), cb(sids[1], "sent", 1), cb(sids[2], "sent", 1),
              cb(sids[0], "failed", 2, 30003), cb(sids[1], "delivered", 2),
              cb(sids[2], "undelivered", 2, 30005),
              cb(sids[0], "undelivered", 3, 30008), cb(sids[2], "failed", 3, 30007),
              cb(sids[3], "read", 4), cb(sids[3], "delivered", 5)]
    await append(services, events)
    assert await inbox_rows(services) == len(events)
    assert await fold_inbox(services) == len(events)
    rows = await message_rows(services, campaign)
    got = {rows[i]["twilio_message_sid"]: (rows[i]["status"], rows[i]["error_code"]) for i in ids}
    assert got == {sids[0]: ("failed", 30003), sids[1]: ("delivered", None),
                   sids[2]: ("undelivered", 30005), sids[3]: ("read", None)}
    await assert_counters_equal(services, campaign)


async def test_a_fold_cut_off_midway_leaves_its_rows_and_the_next_applies_them_once(
        services: Services, salon: str, db_url: str) -> None:
    campaign, ids = await seed_campaign(services, salon, 30)
    sids = await accept_all(services, ids)
    await append(services, [cb(sid, "delivered") for sid in sids])
    # Another instance's fold holds the lock: ours waits in its transaction, rows taken ...
    blocker = await asyncpg.connect(db_url)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT pg_advisory_xact_lock(1869504102, 0)")
        fold = asyncio.create_task(inbox_db.fold(services.pool, 1000, 3600.0, 30.0))
        await asyncio.sleep(0.3)
        assert not fold.done()
        # ... and is cut off: the connection dies (a crash), its transaction rolls back.
        pids = await blocker.fetch(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%pg_advisory_xact_lock%' AND pid <> pg_backend_pid()")
        assert len(pids) == 1
        await blocker.execute("SELECT pg_terminate_backend($1)", pids[0]["pid"])
        await tx.rollback()
    finally:
        await blocker.close()
    with contextlib.suppress(Exception):
        await fold
    assert fold.exception() is not None
    assert await inbox_rows(services) == 30
    assert {r["status"] for r in (await message_rows(services, campaign)).values()} == {"queued"}
    assert await fold_inbox(services) == 30
    assert await fold_inbox(services) == 0
    counters = await assert_counters_equal(services, campaign)
    assert counters.stored["delivered"] == 30


async def test_two_instances_fold_one_inbox_exactly_once(services: Services, salon: str,
                                                         db_url: str, monkeypatch: Any) -> None:
    """Two folders (two pools, as two daemons) drain a shared inbox in small batches at once:
    every callback applied once, counters and funnel facts exact."""
    monkeypatch.setattr(status_folder, "FOLD_MAX", 25)
    campaign, ids = await seed_campaign(services, salon, 200)
    sids = await accept_all(services, ids)
    events = [cb(sid, status, n) for n, status in enumerate(("sent", "delivered", "read"))
              for sid in sids]
    await append(services, events)
    assert await inbox_rows(services) == 600
    other_pool = await create_pool(services.cfg, db_url, min_size=1, max_size=4)
    try:
        other = dataclasses.replace(services, pool=other_pool)
        async with running(services, status_folder), running(other, status_folder):
            await inbox_drained(services)
    finally:
        await other_pool.close()
    counters = await assert_counters_equal(services, campaign)
    assert counters.stored == {"sent": 200, "delivered": 200, "read": 200, "failed": 0,
                               "skipped": 0}
    facts = await services.pool.fetchrow(
        "SELECT count(*) FILTER (WHERE funnel_delivered) AS delivered, count(*) AS customers "
        "FROM imported_customers WHERE salon_id = $1", salon)
    assert (facts["delivered"], facts["customers"]) == (200, 200)
    folded = services.metrics.render().decode()
    assert "onboardd_status_fold_events_count" in folded
    assert "onboardd_status_inbox_rows 0.0" in folded


async def test_the_folder_drains_the_inbox_at_start_and_on_stop(services: Services,
                                                                salon: str) -> None:
    campaign, ids = await seed_campaign(services, salon, 10)
    sids = await accept_all(services, ids)
    await append(services, [cb(sid, "delivered") for sid in sids[:5]])
    # Left by a stopped (or dead) instance: folded when a folder starts.
    async with running(services, status_folder):
        await inbox_drained(services)
    # Queued as everything is told to stop: the recorder makes them durable, and applies them
    # before it returns (the folder may have returned before).
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    recorder = asyncio.create_task(status_recorder.run(services, stopping))
    folder = asyncio.create_task(status_folder.run(services, stopping))
    late = [StatusWork(items=[cb(sid, "delivered")], done=loop.create_future())
            for sid in sids[5:]]
    for work in late:
        services.queues.status.put_nowait(work)
    stopping.set()
    await asyncio.gather(recorder, folder)
    assert all(w.done is not None and w.done.exception() is None for w in late)
    assert await inbox_rows(services) == 0
    counters = await assert_counters_equal(services, campaign)
    assert counters.stored["delivered"] == 10


async def delivered_waiting(services: Services, salon: str, n: int
                            ) -> tuple[str, list[str], str]:
    """A campaign of n accepted messages whose 'delivered' callbacks wait in the inbox; returns
    (campaign, their SIDs, the customer of the first message)."""
    campaign, ids = await seed_campaign(services, salon, n)
    sids = await accept_all(services, ids)
    await append(services, [cb(sid, "delivered") for sid in sids])
    customer = await services.pool.fetchval(
        "SELECT imported_customer_id FROM invitation_messages WHERE id = $1", ids[0])
    return campaign, sids, customer


async def test_an_erase_takes_its_customers_waiting_callbacks_and_no_others(
        services: Services, salon: str) -> None:
    campaign, sids, customer = await delivered_waiting(services, salon, 3)
    # An erase of another salon's customer id (a wrong salon) takes nothing.
    other_salon = await services.pool.fetchval(
        "INSERT INTO salons (name) VALUES ('Other') RETURNING id")
    async with services.pool.acquire() as conn, conn.transaction():
        assert await inbox_db.forget_customer(conn, customer, other_salon) == 0
    await customers_service.erase(services, salon_id=salon, customer_id=customer, actor="admin",
                                  request_id="r-1")
    assert sorted(r["sid"] for r in await services.pool.fetch("SELECT sid FROM status_inbox")
                  ) == sorted(sids[1:])
    assert await fold_inbox(services) == 2
    rows = await message_rows(services, campaign)
    assert sorted(r["status"] for r in rows.values()) == ["delivered", "delivered"]
    assert await services.pool.fetchval("SELECT count(*) FROM status_callback_orphans") == 0
    await assert_counters_equal(services, campaign)


async def test_an_erase_waits_for_a_running_fold_and_a_fold_for_an_erase(
        services: Services, salon: str) -> None:
    """Both take the folder's lock first: neither waits for the other in a cycle."""
    campaign, _sids, customer = await delivered_waiting(services, salon, 2)
    async with services.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await inbox_db.forget_customer(conn, customer, salon)  # the erase's first step
        fold = asyncio.create_task(inbox_db.fold(services.pool, 1000, 3600.0, 30.0))
        await asyncio.sleep(0.2)
        assert not fold.done()  # waits for the erase
        await tx.rollback()  # the erase gave up (say, an import arrived): nothing taken
    folded = await asyncio.wait_for(fold, 5)
    assert folded.taken == 2
    await assert_counters_equal(services, campaign)


class _InTransaction(FlushConnection):
    """The status recorder's connection, as a flush sees it, inside a transaction the test
    holds open: the flush's own transaction is a savepoint in it, so its send result is not
    committed (not visible to a fold) until the test commits."""

    def __init__(self, services: Services, conn: asyncpg.Connection) -> None:
        super().__init__(services.pool)
        self._held = conn

    async def get(self) -> asyncpg.Connection:
        return self._held

    async def release(self) -> None:
        return None


async def _held_rows(services: Services) -> list[tuple[str, str]]:
    rows = await services.pool.fetch(
        "SELECT sid, status FROM status_inbox WHERE held_since IS NOT NULL ORDER BY id")
    return [(r["sid"], r["status"]) for r in rows]


async def test_a_callback_folded_while_its_send_result_commits_is_held_then_applied_once(
        services: Services, salon: str) -> None:
    """The race a fold has with the recorder: the send result carrying the SID has taken the
    orphans but not committed when the fold meets the SID's callbacks. They are held in the
    inbox, not kept as orphans (which nothing but reconciliation would apply), and the first
    fold after the commit applies them, once, in inbox order."""
    campaign, ids = await seed_campaign(services, salon, 1)
    sid = new_sid()
    outcome = SendOutcome(message_id=ids[0], outcome="accepted", at=datetime.now(UTC),
                          channel="whatsapp", sid=sid, sender="whatsapp:+14155238886")
    async with services.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            flushed = await delivery_db.record_batch(_InTransaction(services, conn), [outcome],
                                                     3600.0)
            assert flushed.outcomes_applied == 1  # orphans taken: none yet
            await append(services, [cb(sid, "sent", 1), cb(sid, "failed", 2, 30003),
                                    cb(sid, "undelivered", 3, 30005)])
            first = await inbox_db.fold(services.pool, 1000, 3600.0, 30.0)
            assert (first.taken, first.held, first.result.callbacks_matched) == (3, 3, 0)
            assert first.result.orphaned_sids == []
            assert await _held_rows(services) == [(sid, "sent"), (sid, "failed"),
                                                   (sid, "undelivered")]
            # Held rows whose SID is still unknown are left alone by the next fold.
            again = await inbox_db.fold(services.pool, 1000, 3600.0, 30.0)
            assert (again.taken, again.held) == (0, 3)
        except BaseException:
            await tx.rollback()
            raise
        await tx.commit()
    applied = await inbox_db.fold(services.pool, 1000, 3600.0, 30.0)
    assert (applied.taken, applied.held, applied.result.callbacks_matched) == (3, 0, 1)
    assert applied.result.callback_statuses == {"sent": 1, "failed": 1, "undelivered": 1}
    assert await inbox_rows(services) == 0
    assert await services.pool.fetchval("SELECT count(*) FROM status_callback_orphans") == 0
    row = (await message_rows(services, campaign))[ids[0]]
    assert (row["status"], row["error_code"]) == ("failed", 30003)  # the first failure kept
    assert row["sent_at"] is not None
    counters = await assert_counters_equal(services, campaign)
    assert counters.stored == {"sent": 1, "delivered": 0, "read": 0, "failed": 1, "skipped": 0}
    assert (await inbox_db.fold(services.pool, 1000, 3600.0, 30.0)).taken == 0


async def test_the_folder_applies_a_held_callback_moments_after_its_send_result(
        services: Services, salon: str) -> None:
    """With the actors running: a webhook's callback arrives before the dispatcher's send
    result is recorded; the folder holds it and applies it within a recheck of the commit."""
    campaign, ids = await seed_campaign(services, salon, 1)
    sid = new_sid()
    async with TestClient(TestServer(create_app(services))) as client:
        services.public_base_url = str(client.make_url("")).rstrip("/")
        async with running(services, status_recorder, status_folder):
            code, _ = await post_signed(client, services, STATUS, status_form(sid, "delivered"))
            assert code == 200
            await wait_for(lambda: _has_held(services), timeout_s=5)
            assert await services.pool.fetchval(
                "SELECT count(*) FROM status_callback_orphans") == 0
            done = asyncio.get_running_loop().create_future()
            await services.queues.status.put(StatusWork(items=[SendOutcome(
                message_id=ids[0], outcome="accepted", at=datetime.now(UTC),
                channel="whatsapp", sid=sid, sender="whatsapp:+14155238886")], done=done))
            await done
            started = asyncio.get_running_loop().time()
            await wait_for(lambda: _status_is(services, ids[0], "delivered"), timeout_s=5,
                           every_s=0.01)
            assert asyncio.get_running_loop().time() - started < 2
            assert await inbox_rows(services) == 0
    assert await services.pool.fetchval("SELECT count(*) FROM status_callback_orphans") == 0
    counters = await assert_counters_equal(services, campaign)
    assert counters.stored["delivered"] == 1
    assert services.metrics.render().decode().count(
        'onboardd_status_callbacks_total{status="delivered"} 1.0') == 1


async def _has_held(services: Services) -> bool:
    return bool(await _held_rows(services))


async def test_a_callback_held_past_its_hold_is_kept_as_an_orphan(
        services: Services, salon: str) -> None:
    """A SID that stays unknown (no send result comes) ends where it did before the hold: in
    status_callback_orphans, for a late send result or reconciliation to apply."""
    campaign, ids = await seed_campaign(services, salon, 1)
    sid = new_sid()
    await append(services, [cb(sid, "delivered")])
    held = await inbox_db.fold(services.pool, 1000, 3600.0, 0.3)
    assert (held.taken, held.held, held.result.orphaned_sids) == (1, 1, [])
    await asyncio.sleep(0.4)
    kept = await inbox_db.fold(services.pool, 1000, 3600.0, 0.3)
    assert (kept.taken, kept.held, kept.result.orphaned_sids) == (1, 0, [sid])
    assert await inbox_rows(services) == 0
    # Its send result lands later still: it takes the orphan, as before the inbox.
    await delivery_db.record_batch(services.pool, [SendOutcome(
        message_id=ids[0], outcome="accepted", at=datetime.now(UTC), channel="whatsapp",
        sid=sid, sender="whatsapp:+14155238886")], 3600.0)
    assert (await message_rows(services, campaign))[ids[0]]["status"] == "delivered"
    assert await services.pool.fetchval("SELECT count(*) FROM status_callback_orphans") == 0
    await assert_counters_equal(services, campaign)


async def test_a_callback_behind_a_held_one_of_its_sid_waits_for_it(
        services: Services, salon: str, monkeypatch: Any) -> None:
    """The send result commits between a fold's take (the SID unknown: its held callbacks
    stay) and its apply (the SID known): the later callback the fold took is held too, not
    applied before the earlier ones, so the first failure and the earliest times are kept."""
    campaign, ids = await seed_campaign(services, salon, 1)
    sid = new_sid()
    outcome = SendOutcome(message_id=ids[0], outcome="accepted", at=datetime.now(UTC),
                          channel="whatsapp", sid=sid, sender="whatsapp:+14155238886")
    real_apply = inbox_db.apply_callbacks
    async with services.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await delivery_db.record_batch(_InTransaction(services, conn), [outcome], 3600.0)
            await append(services, [cb(sid, "sent", 1), cb(sid, "failed", 2, 30003)])
            assert (await inbox_db.fold(services.pool, 1000, 3600.0, 30.0)).held == 2
            await append(services, [cb(sid, "undelivered", 3, 30005)])

            async def commit_then_apply(*args: Any, **kwargs: Any) -> set[str]:
                if conn.is_in_transaction():
                    await tx.commit()  # the send result lands just after the fold's take
                return await real_apply(*args, **kwargs)

            monkeypatch.setattr(inbox_db, "apply_callbacks", commit_then_apply)
            behind = await inbox_db.fold(services.pool, 1000, 3600.0, 30.0)
        finally:
            if conn.is_in_transaction():
                await tx.rollback()
    monkeypatch.setattr(inbox_db, "apply_callbacks", real_apply)
    assert (behind.taken, behind.held, behind.result.callbacks_matched) == (1, 3, 0)
    assert (await message_rows(services, campaign))[ids[0]]["status"] == "queued"
    applied = await inbox_db.fold(services.pool, 1000, 3600.0, 30.0)
    assert (applied.taken, applied.held) == (3, 0)
    row = (await message_rows(services, campaign))[ids[0]]
    assert (row["status"], row["error_code"]) == ("failed", 30003)
    assert row["sent_at"] == cb(sid, "sent", 1).at
    assert await inbox_rows(services) == 0
    await assert_counters_equal(services, campaign)

