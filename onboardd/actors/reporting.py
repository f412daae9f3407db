"""How the dispatcher hands its send outcomes to the status recorder: in batches (the recorder
group-commits them), with a bound on outcomes handed over but not yet durable, which pushes
back on sending when the recorder falls behind (or waits for the database)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Final

from onboardd.actors.waiting import first_of
from onboardd.domain.status_events import SendOutcome, StatusWork
from onboardd.logging import get_logger

log = get_logger("dispatcher")

# Outcomes handed to the recorder but not yet durable, at most (pushes back on sending).
MAX_UNDURABLE: Final = 5_000
# Outcomes per StatusWork, and how long a partial batch waits for company.
REPORT_BATCH: Final = 500
REPORT_LINGER_S: Final = 0.005


class Reporter:
    """Outcomes on their way to the recorder; ``futures`` are the batches not yet durable."""

    def __init__(self, queue: asyncio.Queue[StatusWork]) -> None:
        self.queue = queue
        self.undurable = asyncio.Semaphore(MAX_UNDURABLE)
        self.outcomes: list[SendOutcome] = []
        self.has_outcomes = asyncio.Event()
        self.futures: set[asyncio.Future[None]] = set()

    async def report(self, outcome: SendOutcome) -> None:
        """Queue an outcome for the recorder (waits when too many are not yet durable)."""
        await self.undurable.acquire()
        self.outcomes.append(outcome)
        self.has_outcomes.set()

    async def flush_loop(self, stopping: asyncio.Event) -> None:
        """Hand outcomes to the recorder in batches (group commit on its side)."""
        while not stopping.is_set():
            await first_of(stopping.wait(), self.has_outcomes.wait())
            if len(self.outcomes) < REPORT_BATCH:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(REPORT_LINGER_S):
                        await stopping.wait()
            await self.flush()

    async def flush(self) -> None:
        """Put every queued outcome on the status queue."""
        while self.outcomes:
            batch, self.outcomes = self.outcomes[:REPORT_BATCH], self.outcomes[REPORT_BATCH:]
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            try:
                await self.queue.put(StatusWork(items=list(batch), done=done))
            except asyncio.CancelledError:
                self.outcomes[:0] = batch  # not handed over: keep it for the next flush
                raise
            self.futures.add(done)
            done.add_done_callback(functools.partial(self._durable, count=len(batch)))
        self.has_outcomes.clear()

    def _durable(self, fut: asyncio.Future[None], count: int) -> None:
        self.futures.discard(fut)
        for _ in range(count):
            self.undurable.release()
        if not fut.cancelled() and fut.exception() is not None:
            log.error("outcomes_not_recorded", count=count, error=repr(fut.exception()))
