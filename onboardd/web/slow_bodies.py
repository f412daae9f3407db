"""Request-body deadlines: a body that stalls, or takes too long in all, is cut off.

aiohttp has no body read timeout on the server side. While a handler runs and its request
body has not fully arrived, a watcher checks the body's byte count; when no byte came for
[http] body_idle_timeout_s, or the body is not complete after body_timeout_s, it makes every
pending and later read of the body raise BodyTimeout. The request middleware then answers 408
and closes the connection, whatever the handler made of the exception.

The byte count is of bytes received, so the deadlines assume handlers read their body as it
arrives (every handler reads its body whole, within its size limit, before other work; a
handler that stopped reading would let aiohttp's flow control pause the socket).
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import streams

# The watcher wakes this often (at most once a second, at least 20 times per idle timeout).
_MAX_TICK_S = 1.0


class BodyTimeout(TimeoutError):
    """The request body stalled or took too long (a TimeoutError, so aiohttp's own drain of an
    unread body after the response also stops on it quietly)."""


class BodyWatch:
    """Watches one request body until it is complete or stop() is called."""

    def __init__(self, body: streams.StreamReader, idle_s: float, total_s: float) -> None:
        self.fired = False
        self.reason = ""
        self._body = body
        self._idle_s = idle_s
        self._total_s = total_s
        self._task: asyncio.Task[None] | None = None
        if not body.is_eof():
            self._task = asyncio.create_task(self._watch(), name="body-deadline")

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        started = last_byte_at = loop.time()
        seen = self._body.total_bytes
        tick = min(_MAX_TICK_S, self._idle_s / 20, self._total_s / 20)
        while not self._body.is_eof():
            await asyncio.sleep(tick)
            now = loop.time()
            if self._body.total_bytes != seen:
                seen, last_byte_at = self._body.total_bytes, now
            if now - last_byte_at >= self._idle_s:
                self._cut(f"no byte of the request body arrived for {self._idle_s:g} s")
                return
            if now - started >= self._total_s and not self._body.is_eof():
                self._cut(f"the request body did not arrive within {self._total_s:g} s")
                return

    def _cut(self, reason: str) -> None:
        self.fired = True
        self.reason = reason
        self._body.set_exception(BodyTimeout(reason))

    async def stop(self) -> None:
        """Stop watching (the handler is done)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
