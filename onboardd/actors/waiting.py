"""How actors sleep: until the first of several wake-ups, the stop event, or a poll timeout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable


async def first_of(*wakeups: Awaitable[object], poll_s: float | None = None) -> None:
    """Return when the first wake-up finishes (or after poll_s); cancel and await the rest.

    For wake-ups only: what a finished awaitable returned is discarded, so never pass a
    ``queue.get()`` of a queue that carries data rather than nudges.
    """
    tasks = [asyncio.ensure_future(w) for w in wakeups]
    try:
        await asyncio.wait(tasks, timeout=poll_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def drain_nudges(queue: asyncio.Queue[str]) -> None:
    """Drop nudges already queued: one pass of work answers them all."""
    with contextlib.suppress(asyncio.QueueEmpty):
        while True:
            queue.get_nowait()
