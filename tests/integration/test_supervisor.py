"""The supervisor with real tasks: restart, crash loop, graceful and ordered stop, and actors
waiting for an unreachable database without spending their restart budget."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from structlog.testing import capture_logs

from onboardd.config import Supervisor as Settings
from onboardd.supervisor import DATABASE_BACKOFF_MAX_S, CrashLoop, Supervisor
from tests.campaign_support import wait_for

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
        await wait_for(lambda: len(runs) == 3 and sup.all_running(), timeout_s=5, every_s=0.01)
        assert sup.states() == {"flaky": "running"}
        stopping.set()
        await asyncio.wait_for(task, 2)
    assert len(runs) == 3
    crashes = [e for e in logs if e["event"] == "actor_crashed"]
    assert len(crashes) == 2 and crashes[0]["actor"] == "flaky"
    assert sup.states() == {"flaky": "stopped"}


async def test_crash_loop_stops_the_others_gracefully_then_escapes() -> None:
    stopping = asyncio.Event()
    events: list[str] = []

    async def always(_stop: asyncio.Event) -> None:
        raise ValueError("bad config in actor")

    async def healthy(stop: asyncio.Event) -> None:
        try:
            await stop.wait()
            await asyncio.sleep(0.05)  # the behaviour: handing back claimed work takes a while
            events.append("healthy finished")
        except asyncio.CancelledError:
            events.append("healthy cancelled")
            raise

    async def recorder(stop: asyncio.Event) -> None:
        await stop.wait()
        events.append("recorder drained")

    sup = Supervisor(FAST, stopping)
    sup.add("always", always)
    sup.add("healthy", healthy)
    sup.add("recorder", recorder, drain_last=True)
    with pytest.raises(CrashLoop, match="always"):
        await asyncio.wait_for(sup.run(), 5)
    assert events == ["healthy finished", "recorder drained"]
    assert stopping.is_set()
    assert set(sup.states().values()) == {"stopped"}


async def test_actor_returning_early_counts_as_a_crash() -> None:
    stopping = asyncio.Event()
    calls = 0

    async def quitter(_stop: asyncio.Event) -> None:
        nonlocal calls
        calls += 1

    sup = Supervisor(FAST, stopping)
    sup.add("quitter", quitter)
    with pytest.raises(CrashLoop):
        await asyncio.wait_for(sup.run(), 5)
    assert calls == FAST.restart_max + 1


async def test_stop_lets_claimed_work_finish_within_grace() -> None:
    stopping = asyncio.Event()
    finished: list[str] = []
    waiting = asyncio.Event()

    async def worker(stop: asyncio.Event) -> None:
        waiting.set()
        await stop.wait()
        await asyncio.sleep(0.1)  # the behaviour: finishing the claimed unit of work takes a while
        finished.append("unit")

    sup = Supervisor(FAST, stopping)
    sup.add("worker", worker)
    task = asyncio.create_task(sup.run())
    await asyncio.wait_for(waiting.wait(), 5)
    stopping.set()
    await asyncio.wait_for(task, 2)
    assert finished == ["unit"]


async def test_stuck_actor_is_cancelled_after_grace() -> None:
    stopping = asyncio.Event()
    settings = Settings(restart_max=3, restart_window_s=10.0, backoff_initial_s=0.01,
                        backoff_max_s=0.05, shutdown_grace_s=1.0)
    started: list[str] = []
    order: list[str] = []

    async def stuck(_stop: asyncio.Event) -> None:
        started.append("stuck")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            order.append("stuck cancelled")
            raise

    async def polite(stop: asyncio.Event) -> None:
        started.append("polite")
        await stop.wait()
        # The behaviour: a last unit of work lasting half the grace. It is done before the
        # straggler is cancelled only if the supervisor really gave the actors their grace.
        await asyncio.sleep(settings.shutdown_grace_s / 2)
        order.append("polite finished")

    sup = Supervisor(settings, stopping)
    sup.add("stuck", stuck)
    sup.add("polite", polite)
    with capture_logs() as logs:
        task = asyncio.create_task(sup.run())
        await wait_for(lambda: len(started) == 2, timeout_s=5, every_s=0.01)
        stopping.set()
        # A bound, not a measurement: a stop that never cancelled would wait for an hour.
        await asyncio.wait_for(task, 10)  # a cancelled straggler is not an error
    assert order == ["polite finished", "stuck cancelled"]
    assert [e["actor"] for e in logs if e["event"] == "actor_cancelled_after_grace"] == ["stuck"]
    assert sup.states() == {"stuck": "stopped", "polite": "stopped"}


async def test_backoff_is_interrupted_by_stop() -> None:
    stopping = asyncio.Event()
    slow = Settings(restart_max=100, restart_window_s=10.0, backoff_initial_s=30.0,
                    backoff_max_s=30.0, shutdown_grace_s=0.5)

    async def crash(_stop: asyncio.Event) -> None:
        raise RuntimeError("x")

    sup = Supervisor(slow, stopping)
    sup.add("crash", crash)
    with capture_logs() as logs:
        task = asyncio.create_task(sup.run())
        await wait_for(lambda: sup.states() == {"crash": "backing_off"}, timeout_s=5,
                       every_s=0.01)
        stopping.set()
        # A bound, not a measurement: the backoff it interrupts lasts 24 s at the least.
        await asyncio.wait_for(task, 10)
    assert [e["event"] for e in logs if e.get("actor") == "crash"] == ["actor_crashed"]
    assert sup.states() == {"crash": "stopped"}


async def test_drain_last_actor_is_stopped_after_the_others_returned() -> None:
    stopping = asyncio.Event()
    seen: list[tuple[str, bool]] = []
    drained: list[int] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    recorder_stop: list[asyncio.Event] = []

    async def producer(stop: asyncio.Event) -> None:
        await stop.wait()
        for i in range(5):  # late outcomes of work that was in flight
            await asyncio.sleep(0.02)  # the behaviour: they keep coming after the stop
            queue.put_nowait(i)
        seen.append(("producer returns", recorder_stop[0].is_set()))

    async def recorder(stop: asyncio.Event) -> None:
        recorder_stop.append(stop)
        await stop.wait()
        seen.append(("recorder told to stop", stop is not stopping))
        while not queue.empty():
            drained.append(queue.get_nowait())

    sup = Supervisor(FAST, stopping)
    sup.add("recorder", recorder, drain_last=True)
    sup.add("producer", producer)
    task = asyncio.create_task(sup.run())
    await wait_for(lambda: sup.all_running() and len(recorder_stop) == 1, timeout_s=5,
                   every_s=0.01)
    stopping.set()
    await asyncio.wait_for(task, 2)
    assert seen == [("producer returns", False), ("recorder told to stop", True)]
    assert drained == [0, 1, 2, 3, 4]


async def test_grace_bounds_producers_then_the_drain_last_actor_is_cancelled_last() -> None:
    stopping = asyncio.Event()
    order: list[str] = []
    started: list[str] = []

    async def stuck(_stop: asyncio.Event) -> None:
        started.append("stuck")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            order.append("producer cancelled")
            raise

    async def slow_drain(stop: asyncio.Event) -> None:
        started.append("recorder")
        await stop.wait()
        order.append("recorder told to stop")
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            order.append("recorder cancelled")
            raise

    sup = Supervisor(FAST, stopping)
    sup.add("stuck", stuck)
    sup.add("recorder", slow_drain, drain_last=True)
    task = asyncio.create_task(sup.run())
    await wait_for(lambda: len(started) == 2, timeout_s=5, every_s=0.01)
    stopping.set()
    # A bound, not a measurement: without the grace both would wait for an hour.
    await asyncio.wait_for(task, 10)
    assert order == ["producer cancelled", "recorder told to stop", "recorder cancelled"]


# The database is unreachable -----------------------------------------------------------------


async def test_database_failures_are_waited_out_without_a_crash_loop() -> None:
    stopping = asyncio.Event()
    runs: list[int] = []
    outage = FAST.restart_max * 3  # far more failures than the restart budget allows

    async def needs_db(stop: asyncio.Event) -> None:
        runs.append(1)
        if len(runs) <= outage:
            raise ConnectionRefusedError(111, "Connect call failed")
        await stop.wait()

    sup = Supervisor(FAST, stopping)
    sup.add("needs_db", needs_db)
    with capture_logs() as logs:
        task = asyncio.create_task(sup.run())
        await wait_for(lambda: len(runs) == outage + 1 and sup.all_running(), timeout_s=30,
                       every_s=0.01)
        assert not task.done()  # no crash loop: the process would have exited
        stopping.set()
        await asyncio.wait_for(task, 2)
    assert [e for e in logs if e["event"] in ("actor_crashed", "actor_crash_loop")] == []
    waits = [e for e in logs if e["event"] == "actor_waiting_for_database"]
    # Logged once per outage (the other failures only at debug level).
    assert [(e["log_level"], e["failures"]) for e in waits] == [("warning", 1)]
    assert sup.states() == {"needs_db": "stopped"}


async def test_waiting_for_the_database_is_reported_and_capped() -> None:
    stopping = asyncio.Event()
    # A restart backoff of minutes: an actor waiting for the database still retries within
    # DATABASE_BACKOFF_MAX_S.
    slow = Settings(restart_max=1, restart_window_s=600.0, backoff_initial_s=60.0,
                    backoff_max_s=600.0, shutdown_grace_s=0.5)

    async def no_db(_stop: asyncio.Event) -> None:
        raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    async def healthy(stop: asyncio.Event) -> None:
        await stop.wait()

    sup = Supervisor(slow, stopping)
    sup.add("no_db", no_db)
    sup.add("healthy", healthy)
    with capture_logs() as logs:
        task = asyncio.create_task(sup.run())
        await wait_for(lambda: sup.states()["no_db"] == "waiting_for_database", timeout_s=5,
                       every_s=0.01)
        # What /readyz shows: only the actor that is not running, and why.
        assert sup.not_running() == {"actor:no_db": "waiting_for_database"}
        stopping.set()
        # A bound, not a measurement: the stop interrupts the wait.
        await asyncio.wait_for(task, 5)
    waits = [e for e in logs if e["event"] == "actor_waiting_for_database"]
    assert len(waits) == 1 and 0 < waits[0]["retry_in_s"] <= DATABASE_BACKOFF_MAX_S


async def test_other_failures_still_count_towards_the_crash_loop() -> None:
    stopping = asyncio.Event()
    calls: list[str] = []

    async def mixed(_stop: asyncio.Event) -> None:
        # Database failures in between do not reset or spend the budget.
        calls.append("x")
        if len(calls) % 2:
            raise OSError("no route to the database")
        raise ValueError("a bug")

    sup = Supervisor(FAST, stopping)
    sup.add("mixed", mixed)
    with pytest.raises(CrashLoop, match="mixed"):
        await asyncio.wait_for(sup.run(), 10)
    assert len(calls) == 2 * (FAST.restart_max + 1)
