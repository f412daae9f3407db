"""The supervisor with real tasks: restart, crash loop, graceful stop."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from onboardd.config import Supervisor as Settings
from onboardd.supervisor import CrashLoop, Supervisor

FAST = Settings(restart_max=3, restart_window_s=10.0, backoff_initial_s=0.01,
                backoff_max_s=0.05, shutdown_grace_s=0.5)


async def test_crashing_actor_is_restarted_and_logged_once_per_crash() -> None:
    stopping = asyncio.Event()
    runs: list[int] = []

    async def flaky(stop: asyncio.Event) -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")
        await stop.wait()

    sup = Supervisor(FAST, stopping)
    sup.add("flaky", flaky)
    with capture_logs() as logs:
        task = asyncio.create_task(sup.run())
        while len(runs) < 3 or not sup.all_running():
            await asyncio.sleep(0.01)
        assert sup.states() == {"flaky": "running"}
        stopping.set()
        await asyncio.wait_for(task, 2)
    assert len(runs) == 3
    crashes = [e for e in logs if e["event"] == "actor_crashed"]
    assert len(crashes) == 2 and crashes[0]["actor"] == "flaky"
    assert sup.states() == {"flaky": "stopped"}


async def test_crash_loop_escapes_and_cancels_the_others() -> None:
    stopping = asyncio.Event()
    healthy_cancelled = asyncio.Event()

    async def always(_stop: asyncio.Event) -> None:
        raise ValueError("bad config in actor")

    async def healthy(stop: asyncio.Event) -> None:
        try:
            await stop.wait()
        except asyncio.CancelledError:
            healthy_cancelled.set()
            raise

    sup = Supervisor(FAST, stopping)
    sup.add("always", always)
    sup.add("healthy", healthy)
    with pytest.raises(ExceptionGroup) as info:
        await asyncio.wait_for(sup.run(), 5)
    assert info.group_contains(CrashLoop)
    assert healthy_cancelled.is_set()


async def test_actor_returning_early_counts_as_a_crash() -> None:
    stopping = asyncio.Event()
    calls = 0

    async def quitter(_stop: asyncio.Event) -> None:
        nonlocal calls
        calls += 1

    sup = Supervisor(FAST, stopping)
    sup.add("quitter", quitter)
    with pytest.raises(ExceptionGroup):
        await asyncio.wait_for(sup.run(), 5)
    assert calls == FAST.restart_max + 1


async def test_stop_lets_claimed_work_finish_within_grace() -> None:
    stopping = asyncio.Event()
    finished: list[str] = []

    async def worker(stop: asyncio.Event) -> None:
        await stop.wait()
        await asyncio.sleep(0.1)  # finishing the claimed unit of work
        finished.append("unit")

    sup = Supervisor(FAST, stopping)
    sup.add("worker", worker)
    task = asyncio.create_task(sup.run())
    await asyncio.sleep(0.05)
    stopping.set()
    await asyncio.wait_for(task, 2)
    assert finished == ["unit"]


async def test_stuck_actor_is_cancelled_after_grace() -> None:
    stopping = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck(_stop: asyncio.Event) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    sup = Supervisor(FAST, stopping)
    sup.add("stuck", stuck)
    task = asyncio.create_task(sup.run())
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    stopping.set()
    await asyncio.wait_for(task, 3)  # a cancelled straggler is not an error: exit stays clean
    assert cancelled.is_set()
    assert loop.time() - started >= FAST.shutdown_grace_s * 0.9


async def test_backoff_is_interrupted_by_stop() -> None:
    stopping = asyncio.Event()
    slow = Settings(restart_max=100, restart_window_s=10.0, backoff_initial_s=30.0,
                    backoff_max_s=30.0, shutdown_grace_s=0.5)

    async def crash(_stop: asyncio.Event) -> None:
        raise RuntimeError("x")

    sup = Supervisor(slow, stopping)
    sup.add("crash", crash)
    task = asyncio.create_task(sup.run())
    await asyncio.sleep(0.05)
    assert sup.states() == {"crash": "backing_off"}
    stopping.set()
    await asyncio.wait_for(task, 1)
