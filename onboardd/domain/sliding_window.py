"""Per-key request counts over a sliding minute, in memory.

Used for the mobile check's rate limit ([ratelimit] check_per_min): each daemon counts its
own callers (the budget is a brake on enumeration, not an accounting), so no database round
trip is spent on a read-only lookup.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Final

WINDOW_S: Final = 60.0


class SlidingWindow:
    """Per-key request counts over the last minute (in-process: each daemon counts its own)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._max_keys = max_keys

    def retry_after(self, key: str, limit: int, now: float | None = None) -> float | None:
        """Count a request; None when allowed, else seconds until the next one is."""
        now = time.monotonic() if now is None else now
        hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] >= WINDOW_S:
            hits.popleft()
        if len(hits) >= limit:
            return WINDOW_S - (now - hits[0])
        hits.append(now)
        if len(self._hits) > self._max_keys:
            self._prune(now)
        return None

    def _prune(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or now - v[-1] >= WINDOW_S]:
            del self._hits[key]
