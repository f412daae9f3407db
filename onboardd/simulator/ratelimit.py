"""The simulator's per-account request budget: a token bucket with one second of burst."""

from __future__ import annotations

import time


class TokenBucket:
    """Holds up to ``rate`` tokens, refilled at ``rate`` per second; rate 0 means unlimited."""

    __slots__ = ("_rate", "_stamp", "_tokens")

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._tokens = max(rate, 1.0)
        self._stamp = time.monotonic()

    def try_take(self) -> bool:
        """Take one token if there is one."""
        if self._rate <= 0:
            return True
        now = time.monotonic()
        capacity = max(self._rate, 1.0)
        self._tokens = min(capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
