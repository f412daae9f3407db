"""A report's two groups of reads (onboardd.db.analytics.read_pair) see one snapshot: on two
connections at once when the pool has an idle one, on one connection when it has none."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from onboardd.db.analytics import read_pair


async def _pool_with_idle(db_url: str, size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(db_url, min_size=size, max_size=size)
    assert pool.get_idle_size() == size
    return pool


async def test_two_connections_share_one_snapshot(db_url: str) -> None:
    pool = await _pool_with_idle(db_url, 2)
    writer = await asyncpg.connect(db_url)
    committed = asyncio.Event()
    try:
        async def left(conn: asyncpg.Connection) -> tuple[int, int]:
            seen = await conn.fetchval("SELECT count(*) FROM salons")
            await writer.execute("INSERT INTO salons (name) VALUES ('Later')")
            committed.set()
            return await conn.fetchval("SELECT pg_backend_pid()"), seen

        async def right(conn: asyncpg.Connection) -> tuple[int, int]:
            await committed.wait()  # a salon committed after the snapshot was taken
            return (await conn.fetchval("SELECT pg_backend_pid()"),
                    await conn.fetchval("SELECT count(*) FROM salons"))

        (pid_left, seen_left), (pid_right, seen_right) = await read_pair(pool, left, right)
        assert pid_left != pid_right, "the halves ran on two connections"
        assert seen_right == seen_left, "the second connection reads the first's snapshot"
        assert await writer.fetchval("SELECT count(*) FROM salons") == seen_left + 1
        assert pool.get_idle_size() == 2, "both connections are back in the pool"
    finally:
        await writer.close()
        await pool.close()


async def test_without_an_idle_connection_both_halves_run_on_one(db_url: str) -> None:
    pool = await _pool_with_idle(db_url, 1)
    try:
        async def pid(conn: asyncpg.Connection) -> int:
            value: int = await conn.fetchval("SELECT pg_backend_pid()")
            return value

        async def read_only(conn: asyncpg.Connection) -> str:
            setting: str = await conn.fetchval("SHOW transaction_read_only")
            return setting

        left_pid, right_pid = await asyncio.wait_for(read_pair(pool, pid, pid), 10)
        assert left_pid == right_pid
        assert await read_pair(pool, read_only, read_only) == ("on", "on")
    finally:
        await pool.close()


async def test_a_failing_half_raises_its_own_error_and_frees_both_connections(
        db_url: str) -> None:
    pool = await _pool_with_idle(db_url, 2)
    try:
        async def slow(conn: asyncpg.Connection) -> int:
            value: int = await conn.fetchval("SELECT 1 FROM pg_sleep(0.2)")
            return value

        async def broken(conn: asyncpg.Connection) -> int:
            value: int = await conn.fetchval("SELECT 1 / 0")
            return value

        for left, right in ((slow, broken), (broken, slow)):
            with pytest.raises(asyncpg.DivisionByZeroError):
                await read_pair(pool, left, right)
            assert pool.get_idle_size() == 2
        assert await read_pair(pool, slow, slow) == (1, 1), "the pool still serves reports"
    finally:
        await pool.close()
