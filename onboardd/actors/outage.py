"""Riding out a database outage inside an actor: wait, retry, resume; never crash.

An actor loop that meets a connection error (onboardd.db.pool.unreachable: the server is down,
restarting, out of connections, or the connection broke) keeps what it was doing and calls
``DatabaseWait.pause``: the wait doubles from ``RETRY_INITIAL_S`` up to ``RETRY_MAX_S`` (so the
actor is back within a few seconds of the database), and the stop event ends it early. The
first failure of an outage is logged (warning), the next ones only at debug level; the first
success after it logs how long the outage lasted. Nothing is charged to the supervisor's restart
budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Final

from onboardd.logging import get_logger

log = get_logger("actors")

RETRY_INITIAL_S: Final = 0.2
RETRY_MAX_S: Final = 5.0


class DatabaseWait:
    """The back-off state of one actor loop while its database is unreachable."""

    def __init__(self, actor: str, *, cap_s: float = RETRY_MAX_S) -> None:
        self.actor = actor
        self.cap_s = cap_s
        self.failures = 0
        self._since: float | None = None

    @property
    def waiting(self) -> bool:
        """True between a failure and the next success."""
        return self._since is not None

    def delay_s(self) -> float:
        """The wait after the current number of failures (jittered, never above the cap)."""
        base = RETRY_INITIAL_S * (1 << min(max(self.failures - 1, 0), 16))
        return min(self.cap_s, base * random.uniform(0.8, 1.2))

    async def pause(self, exc: BaseException, stopping: asyncio.Event | None = None,
                    **context: object) -> None:
        """Count a failure, log it (the first of an outage only at warning), then wait; a set
        stopping event ends the wait at once."""
        self.failures += 1
        if self._since is None:
            self._since = time.monotonic()
        delay = self.delay_s()
        level = log.warning if self.failures == 1 else log.debug
        level("database_unavailable_waiting", actor=self.actor, error=repr(exc),
              retry_in_s=round(delay, 2), failures=self.failures, **context)
        if stopping is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=delay)

    def recovered(self, **context: object) -> None:
        """A database call succeeded: log the end of the outage (once) and reset."""
        if self._since is None:
            return
        log.info("database_available_again", actor=self.actor, failures=self.failures,
                 waited_s=round(time.monotonic() - self._since, 2), **context)
        self._since = None
        self.failures = 0
