"""Runs the actors: restart with interruptible backoff, a restart budget, ordered graceful stop.

An actor is a coroutine function taking a stop event. It returns when the event is set (after
finishing or handing back the work it has claimed). If it raises, it is logged once and
restarted after a backoff that shutdown interrupts.

Stopping is ordered. Ordinary actors (the producers) see the supervisor's stop event; a
*drain-last* actor (the status recorder, which makes the producers' outcomes durable) gets its
own stop event, set only once every other actor has returned, so it can drain its queue knowing
nothing more will arrive. ``[supervisor] shutdown_grace_s`` bounds the whole stop: the producers
get ``1 - DRAIN_LAST_SHARE`` of it, the drain-last actors whatever is left; an actor still running
at its deadline is cancelled (producers first, the drain-last actors last).

More than ``restart_max`` restarts within ``restart_window_s`` is a crash loop: the supervisor
records it, sets the stop event so every other actor stops through the same graceful path, and
raises CrashLoop out of ``run`` once they have, so the process exits non-zero and systemd
restarts it.

An actor failing because the database is unreachable (the ``unreachable`` predicate, by default
onboardd.db.pool.unreachable) is not charged to that budget: restarting the process would not
bring PostgreSQL back. Its state is ``waiting_for_database`` (so /readyz reports it), and it is
restarted after a backoff capped at ``DATABASE_BACKOFF_MAX_S``, so it is back within seconds of
the database however long the outage lasted. Only the first failure of an outage is logged at
warning level.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import random
import time
from collections.abc import Awaitable, Callable, Iterable

from onboardd.config import Supervisor as SupervisorSettings
from onboardd.db.pool import unreachable as database_unreachable
from onboardd.logging import get_logger

log = get_logger("supervisor")

ActorFn = Callable[[asyncio.Event], Awaitable[None]]

# Share of the shutdown grace kept for the drain-last actors when the producers use all theirs.
DRAIN_LAST_SHARE = 0.2
# Longest wait before restarting an actor that failed because the database is unreachable.
DATABASE_BACKOFF_MAX_S = 5.0


class CrashLoop(Exception):
    """An actor crashed too often; the process must exit non-zero."""


class ActorState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    BACKING_OFF = "backing_off"
    WAITING_FOR_DATABASE = "waiting_for_database"
    STOPPED = "stopped"


class Supervisor:
    """Owns every actor task; one stop event for the producers, one for the drain-last actors."""

    def __init__(self, settings: SupervisorSettings, stopping: asyncio.Event, *,
                 on_restart: Callable[[str], None] | None = None,
                 unreachable: Callable[[BaseException], bool] = database_unreachable) -> None:
        self._settings = settings
        self._stopping = stopping
        # Failures meaning the database is unreachable: waited out, never charged.
        self._unreachable = unreachable
        # Told the actor's name at every restart charged (the daemon counts them as a metric).
        self._on_restart = on_restart
        self._last_stop = asyncio.Event()
        self._actors: dict[str, ActorFn] = {}
        self._drain_last: set[str] = set()
        self._state: dict[str, ActorState] = {}
        self._restarts: dict[str, collections.deque[float]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._crash: CrashLoop | None = None

    def add(self, name: str, fn: ActorFn, *, drain_last: bool = False) -> None:
        """Register an actor before run(); a drain-last one is told to stop after the others."""
        if name in self._actors:
            raise ValueError(f"actor {name} registered twice")
        self._actors[name] = fn
        if drain_last:
            self._drain_last.add(name)
        self._state[name] = ActorState.STARTING
        self._restarts[name] = collections.deque()

    def states(self) -> dict[str, str]:
        """Each actor's current state, for /readyz."""
        return {name: state.value for name, state in self._state.items()}

    def not_running(self) -> dict[str, str]:
        """What /readyz reports of the actors: `actor:<name>` -> state, for every actor not
        running (empty when all are)."""
        return {f"actor:{name}": state.value for name, state in self._state.items()
                if state is not ActorState.RUNNING}

    def all_running(self) -> bool:
        """True when every registered actor is running."""
        return all(state is ActorState.RUNNING for state in self._state.values())

    async def run(self) -> None:
        """Run every actor until stop, stop them in order; raise CrashLoop after a crash loop."""
        for name, fn in self._actors.items():
            event = self._last_stop if name in self._drain_last else self._stopping
            task = asyncio.create_task(self._keep_alive(name, fn, event), name=name)
            task.add_done_callback(self._actor_task_done)
            self._tasks[name] = task
        try:
            await self._stopping.wait()
            await self._stop_in_order()
        except asyncio.CancelledError:
            # run() itself was cancelled: no grace left to give.
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            raise
        if self._crash is not None:
            raise self._crash

    async def _stop_in_order(self) -> None:
        """Producers first (most of the grace), then the drain-last actors (the rest)."""
        loop = asyncio.get_running_loop()
        grace = self._settings.shutdown_grace_s
        deadline = loop.time() + grace
        first = [t for n, t in self._tasks.items() if n not in self._drain_last]
        last = [t for n, t in self._tasks.items() if n in self._drain_last]
        first_deadline = deadline - grace * DRAIN_LAST_SHARE if last else deadline
        await self._finish(first, first_deadline)
        self._last_stop.set()
        await self._finish(last, deadline)

    async def _finish(self, tasks: Iterable[asyncio.Task[None]], deadline: float) -> None:
        """Wait for tasks until the deadline, then cancel the stragglers and wait for them."""
        pending = [t for t in tasks if not t.done()]
        if not pending:
            return
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        _done, still = await asyncio.wait(pending, timeout=timeout)
        for task in still:
            log.warning("actor_cancelled_after_grace", actor=task.get_name(),
                        grace_s=self._settings.shutdown_grace_s)
            task.cancel()
        if still:
            await asyncio.wait(still)

    def _actor_task_done(self, task: asyncio.Task[None]) -> None:
        """An actor task that died of something its loop does not handle stops the others."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.critical("actor_task_died", actor=task.get_name(), error=repr(exc), exc_info=exc)
        if self._crash is None:
            self._crash = CrashLoop(f"actor {task.get_name()} died: {exc!r}")
            self._crash.__cause__ = exc
        self._stopping.set()

    async def _keep_alive(self, name: str, fn: ActorFn, stop: asyncio.Event) -> None:
        """Run one actor, restarting it on failure until its stop event or a crash loop."""
        failures = 0
        outage = 0  # database failures in a row, each after a short run
        try:
            while not stop.is_set():
                self._state[name] = ActorState.RUNNING
                started = time.monotonic()
                try:
                    await fn(stop)
                except Exception as exc:
                    if self._unreachable(exc):
                        # A run that lasted had the database: this is a new outage.
                        long_run = time.monotonic() - started > DATABASE_BACKOFF_MAX_S
                        outage = 1 if long_run else outage + 1
                        await self._wait_for_database(name, exc, outage, stop)
                        continue
                    failures += 1
                    log.error("actor_crashed", actor=name, error=repr(exc), exc_info=exc)
                    crash = self._charge_restart(name, exc)
                else:
                    if stop.is_set():
                        break
                    failures += 1
                    log.error("actor_returned_unexpectedly", actor=name)
                    crash = self._charge_restart(name, None)
                if crash is not None:
                    # Stop everyone through the graceful path; run() raises once they have.
                    if self._crash is None:
                        self._crash = crash
                    self._stopping.set()
                    break
                self._state[name] = ActorState.BACKING_OFF
                delay = self._backoff(failures, self._settings.backoff_max_s)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    log.info("actor_restarting", actor=name, after_s=round(delay, 2))
        finally:
            self._state[name] = ActorState.STOPPED

    async def _wait_for_database(self, name: str, exc: Exception, outage: int,
                                 stop: asyncio.Event) -> None:
        """Back off (capped, interrupted by stop) without charging the restart budget."""
        self._state[name] = ActorState.WAITING_FOR_DATABASE
        delay = self._backoff(outage, min(DATABASE_BACKOFF_MAX_S, self._settings.backoff_max_s))
        level = log.warning if outage == 1 else log.debug
        level("actor_waiting_for_database", actor=name, error=repr(exc), failures=outage,
              retry_in_s=round(delay, 2))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)

    def _charge_restart(self, name: str, exc: Exception | None) -> CrashLoop | None:
        """Count a restart; the CrashLoop to raise when the budget is spent, else None."""
        if self._on_restart is not None:
            self._on_restart(name)
        now = time.monotonic()
        window = self._restarts[name]
        window.append(now)
        while window and now - window[0] > self._settings.restart_window_s:
            window.popleft()
        if len(window) <= self._settings.restart_max:
            return None
        log.critical("actor_crash_loop", actor=name, restarts=len(window),
                     window_s=self._settings.restart_window_s)
        crash = CrashLoop(f"actor {name} crashed {len(window)} times in "
                          f"{self._settings.restart_window_s:g}s")
        crash.__cause__ = exc
        return crash

    def _backoff(self, failures: int, cap_s: float) -> float:
        base = self._settings.backoff_initial_s * (1 << min(failures - 1, 16))
        jitter: float = random.uniform(0.8, 1.2)
        return min(cap_s, base * jitter)
