"""How actors wait: until the first of several wake-ups, the stop event, or a poll timeout; and
for a write they started, to its end even when they are cancelled meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from onboardd.logging import get_logger

log = get_logger("actors")

T = TypeVar("T")


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


def drain_nudges(queue: asyncio.Queue[Any]) -> None:
    """Drop nudges already queued: one pass of work answers them all."""
    with contextlib.suppress(asyncio.QueueEmpty):
        while True:
            queue.get_nowait()


async def settle(task: asyncio.Task[T],
                 on_cancel: Callable[[asyncio.Task[T]], Awaitable[None]] | None = None) -> T:
    """The task's result, once it is done, even if the caller is cancelled meanwhile: the task
    (a write that commits or rolls back, a flush that settles futures) is never left running
    without an owner. A cancellation of the caller is re-raised after the task finished.

    ``on_cancel``, when given, is how the caller ends the task early once it is cancelled (the
    dispatcher abandons its drain when the grace period ran out); without it the task runs to
    its own end.
    """
    interrupted: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError as exc:
            first = interrupted is None
            interrupted = exc
            if first and on_cancel is not None:
                await on_cancel(task)
    if interrupted is not None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("write_failed_while_cancelled", task=task.get_name(),
                        error=repr(task.exception()))
        raise interrupted
    return task.result()


async def run_to_end(coro: Coroutine[Any, Any, T], name: str) -> T:
    """Run a final write to its end even if the caller is cancelled meanwhile."""
    return await settle(asyncio.create_task(coro, name=name))
