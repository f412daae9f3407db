"""Instance liveness and sender ownership through PostgreSQL alone (onboardd.cluster.membership):
several memberships on one database, as several daemons would hold them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from onboardd.cluster import membership as m
from onboardd.cluster.membership import Membership

SENDERS = [f"whatsapp:+1415555{i:04d}" for i in range(12)]


@contextlib.asynccontextmanager
async def running(db_url: str, senders: list[str]) -> AsyncIterator[tuple[Membership, Any]]:
    """A membership on a pool of its own (a daemon), running until the block ends."""
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=3)
    assert pool is not None
    member = Membership(pool, senders)
    stop = asyncio.Event()
    task = asyncio.create_task(member.run(stop))
    try:
        yield member, pool
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await pool.close()


async def until(check: Callable[[], bool], timeout: float = 10.0) -> float:
    """Seconds until check() holds; fails after timeout."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def live_ids(db_url: str) -> set[int]:
    conn = await asyncpg.connect(db_url)
    try:
        return {r[0] for r in await conn.fetch("SELECT onboardd_live_instances()")}
    finally:
        await conn.close()


async def terminate_liveness(db_url: str, instance_id: int) -> None:
    """Kill the backend holding an instance's liveness lock (what a crash or a cut network does
    to the session)."""
    conn = await asyncpg.connect(db_url)
    try:
        killed = await conn.fetchval(
            """SELECT count(pg_terminate_backend(pid)) FROM pg_locks
               WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 2""",
            m.LIVENESS_CLASS, instance_id)
        assert killed == 1
    finally:
        await conn.close()


def owned(member: Membership) -> set[str]:
    return {k for k in member.senders if member.owns(k)}


async def test_liveness_lock_is_the_live_list_and_the_sql_function_knows_its_class(
        db_url: str) -> None:
    async with running(db_url, []) as (first, _), running(db_url, []) as (second, _):
        await until(lambda: first.alive.is_set() and second.alive.is_set())
        assert first.instance_id != second.instance_id
        assert await live_ids(db_url) == {first.instance_id, second.instance_id}
        gone = second.instance_id
    assert gone not in await live_ids(db_url)  # a stopped daemon is not live


async def test_senders_spread_over_instances_and_move_when_one_dies(db_url: str) -> None:
    async with running(db_url, SENDERS) as (a, _), running(db_url, SENDERS) as (b, _):
        async with running(db_url, SENDERS) as (c, _):
            members = (a, b, c)
            await until(lambda: all(len(owned(x)) == 4 for x in members))
            assert set.union(*(owned(x) for x in members)) == set(SENDERS)
            assert sum(len(owned(x)) for x in members) == len(SENDERS)  # disjoint
            # A sender nobody held before is sent from at once; while the three shared them
            # out, one may have passed through another instance, released cleanly: then it
            # waits RELEASED_WAIT_S, never the wait after a vanished owner.
            assert all(a.send_delay(k) <= m.RELEASED_WAIT_S for k in owned(a))
            await until(lambda: all(a.may_send(k) for k in owned(a)), timeout=1.0)
        # c stopped cleanly: a and b share its senders, 6 each, all of them covered.
        await until(lambda: len(owned(a)) == 6 and len(owned(b)) == 6)
        assert owned(a) | owned(b) == set(SENDERS)
        assert not owned(a) & owned(b)


async def test_a_new_instance_gets_its_share_from_the_others(db_url: str) -> None:
    async with running(db_url, SENDERS) as (a, _):
        await until(lambda: len(owned(a)) == 12)
        async with running(db_url, SENDERS) as (b, _):
            await until(lambda: len(owned(a)) == 6 and len(owned(b)) == 6, timeout=15)
            assert not owned(a) & owned(b)
            # Released cleanly a moment ago: b waits about one second before its first request.
            waits = [b.send_delay(k) for k in owned(b)]
            assert all(w is not None and w <= m.RELEASED_WAIT_S for w in waits)


async def test_a_lost_session_fences_the_instance_and_it_rejoins_under_a_new_id(
        db_url: str) -> None:
    key = SENDERS[0]
    async with running(db_url, [key]) as (a, _), running(db_url, [key]) as (b, _):
        await until(lambda: a.owns(key) or b.owns(key))
        holder, other = (a, b) if a.owns(key) else (b, a)
        old_id = holder.instance_id
        assert old_id is not None
        await terminate_liveness(db_url, old_id)
        # The holder stops at once, and comes back under another id.
        await until(lambda: not holder.owns(key), timeout=2)
        await until(lambda: holder.alive.is_set() and holder.instance_id != old_id)
        assert old_id not in await live_ids(db_url)
        # Exactly one of them holds the sender again; a vanished owner's sender waits for the
        # handover (its last heartbeat + HANDOVER_S), so the two never send in the same second.
        await until(lambda: a.owns(key) or b.owns(key))
        new_owner = a if a.owns(key) else b
        assert not (a.owns(key) and b.owns(key))
        if new_owner is other:
            delay = other.send_delay(key)
            assert delay is not None and delay > m.HANDOVER_S - 2.5


async def test_dead_holders_claims_are_swept_live_holders_never(db_url: str, services: Any
                                                                 ) -> None:
    """The sweep query takes a dead instance's send claims once the guard passed, never a live
    one's whose lease still runs, and an import batch of a dead instance at once."""
    from onboardd.db import imports as import_db
    from onboardd.db import reconcile as reconcile_db
    from tests.campaign_support import add_customers, add_salon, phone

    pool = services.pool
    salon = await add_salon(pool, "Sweep")
    customers = await add_customers(pool, services.cipher, salon, [phone(i) for i in range(3)])
    campaign = await pool.fetchval(
        """INSERT INTO invitation_campaigns (salon_id, name, channel, message_template, status,
                                            created_by)
           VALUES ($1, 'c', 'whatsapp', 'Hi', 'sending', 'admin') RETURNING id""", salon)
    async with running(db_url, []) as (live, _):
        await until(live.alive.is_set)
        dead = 999_999  # never held a liveness lock
        rows = [(customers[0], dead, -30.0), (customers[1], live.instance_id, -30.0),
                (customers[2], dead, -1.0)]
        ids = {}
        for customer, holder, started in rows:
            ids[customer] = await pool.fetchval(
                """INSERT INTO invitation_messages (campaign_id, imported_customer_id, channel,
                       salon_id, status, claimed_until, claimed_by, claim_token,
                       attempt_started_at)
                   VALUES ($1, $2, 'whatsapp', $3, 'sending', now() + interval '100 s', $4, 0,
                           now() + make_interval(secs => $5)) RETURNING id""",
                campaign, customer, salon, holder, started)
        taken = await reconcile_db.claim_expired(pool, limit=10, lease_s=30, guard_s=12,
                                                 instance_id=live.instance_id)
        assert [t.id for t in taken] == [ids[customers[0]]]
        assert taken[0].claim_token not in (None, 0)  # a new fencing token
        # Import batches: a dead holder's is taken at once, a live one's never.
        for holder in (live.instance_id, dead):
            await pool.execute(
                """INSERT INTO customer_import_batches (salon_id, imported_by, file_name, status,
                       claimed_by, claimed_until, confirmed_at, total_records, mapping)
                   VALUES ($1, 'admin', $2, 'processing', $3, now() - interval '1 s', now(), 1,
                           '{}'::jsonb)
                """,
                salon, f"held-by-{holder}.csv", holder)
        # Taken without liveness (as the CLI would): its lease protects it from now on.
        claimed = await import_db.claim_batch(pool, 60, None)
        assert claimed is not None and claimed.file_name == f"held-by-{dead}.csv"
        assert await import_db.claim_batch(pool, 60, 777) is None
        mine = await import_db.claim_batch(pool, 60, live.instance_id)  # a restarted importer
        assert mine is not None and mine.file_name == f"held-by-{live.instance_id}.csv"


@pytest.mark.parametrize("senders", [[], SENDERS[:1]])
async def test_stop_leaves_nothing_locked(db_url: str, senders: list[str]) -> None:
    async with running(db_url, senders) as (a, _):
        await until(lambda: a.alive.is_set() and len(owned(a)) == len(senders))
    conn = await asyncpg.connect(db_url)
    try:
        held = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = ANY($1)"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [m.LIVENESS_CLASS, m.SENDER_CLASS])
        released = await conn.fetch("SELECT key, owner, released_at FROM onboardd_senders")
    finally:
        await conn.close()
    assert held == 0
    assert [(r["key"], r["owner"]) for r in released] == [(k, None) for k in senders]
    assert all(r["released_at"] is not None for r in released)
