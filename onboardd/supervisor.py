"""Runs the actors: restart with interruptible backoff, a restart budget, graceful stop.

An actor is a coroutine function taking the stop event. It returns when the event is set
(after finishing or handing back the work it has claimed). If it raises, it is logged once and
restarted after a backoff that shutdown interrupts; more than ``restart_max`` restarts within
``restart_window_s`` raises CrashLoop out of ``run`` so the process exits non-zero and systemd
restarts it.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import random
import time
from collections.abc import Awaitable, Callable

from onboardd.config import Supervisor as SupervisorSettings
from onboardd.logging import get_logger

log = get_logger("supervisor")

ActorFn = Callable[[asyncio.Event], Awaitable[None]]


class CrashLoop(Exception):
    """An actor crashed too often; the process must exit non-zero."""


class ActorState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    BACKING_OFF = "backing_off"
    STOPPED = "stopped"


class Supervisor:
    """Owns every actor task; one TaskGroup, one stop event."""

    def __init__(self, settings: SupervisorSettings, stopping: asyncio.Event) -> None:
        self._settings = settings
        self._stopping = stopping
        self._actors: dict[str, ActorFn] = {}
        self._state: dict[str, ActorState] = {}
        self._restarts: dict[str, collections.deque[float]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def add(self, name: str, fn: ActorFn) -> None:
        """Register an actor before run()."""
        if name in self._actors:
            raise ValueError(f"actor {name} registered twice")
        self._actors[name] = fn
        self._state[name] = ActorState.STARTING
        self._restarts[name] = collections.deque()

    def states(self) -> dict[str, str]:
        """Each actor's current state, for /readyz."""
        return {name: state.value for name, state in self._state.items()}

    def all_running(self) -> bool:
        """True when every registered actor is running."""
        return all(state is ActorState.RUNNING for state in self._state.values())

    async def run(self) -> None:
        """Run every actor until stop; raise CrashLoop when an actor exhausts its budget."""
        async with asyncio.TaskGroup() as group:
            for name, fn in self._actors.items():
                self._tasks[name] = group.create_task(self._keep_alive(name, fn), name=name)
            group.create_task(self._enforce_grace(), name="supervisor-grace")

    async def _enforce_grace(self) -> None:
        """After stop is requested, give actors the grace period, then cancel what is left."""
        await self._stopping.wait()
        pending = [t for t in self._tasks.values() if not t.done()]
        if not pending:
            return
        _done, still = await asyncio.wait(pending, timeout=self._settings.shutdown_grace_s)
        for task in still:
            log.warning("actor_cancelled_after_grace", actor=task.get_name(),
                        grace_s=self._settings.shutdown_grace_s)
            task.cancel()
        if still:
            await asyncio.wait(still)

    async def _keep_alive(self, name: str, fn: ActorFn) -> None:
        """Run one actor, restarting it on failure until stop or the budget is spent."""
        failures = 0
        while not self._stopping.is_set():
            self._state[name] = ActorState.RUNNING
            try:
                await fn(self._stopping)
            except Exception as exc:
                failures += 1
                log.error("actor_crashed", actor=name, error=repr(exc), exc_info=exc)
                self._charge_restart(name, exc)
            else:
                if self._stopping.is_set():
                    break
                failures += 1
                log.error("actor_returned_unexpectedly", actor=name)
                self._charge_restart(name, None)
            self._state[name] = ActorState.BACKING_OFF
            delay = self._backoff(failures)
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            except TimeoutError:
                log.info("actor_restarting", actor=name, after_s=round(delay, 2))
        self._state[name] = ActorState.STOPPED

    def _charge_restart(self, name: str, exc: Exception | None) -> None:
        now = time.monotonic()
        window = self._restarts[name]
        window.append(now)
        while window and now - window[0] > self._settings.restart_window_s:
            window.popleft()
        if len(window) > self._settings.restart_max:
            log.critical("actor_crash_loop", actor=name, restarts=len(window),
                         window_s=self._settings.restart_window_s)
            raise CrashLoop(f"actor {name} crashed {len(window)} times in "
                            f"{self._settings.restart_window_s:g}s") from exc

    def _backoff(self, failures: int) -> float:
        base = self._settings.backoff_initial_s * (1 << min(failures - 1, 16))
        jitter: float = random.uniform(0.8, 1.2)
        return min(self._settings.backoff_max_s, base) * jitter
