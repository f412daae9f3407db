"""Token buckets per key, in memory, bounded as an LRU: the API rate limits' counters.

A budget is ``rate`` requests a second on average with bursts of up to ``burst``: each key's
bucket holds at most ``burst`` tokens, refills at ``rate`` a second, and a request takes one.
The check is synchronous and costs a dict lookup, so the request middleware spends no database
round trip on it; each daemon counts its own callers (N instances allow N x the budget).

At most ``max_keys`` buckets are kept: the least recently used one is dropped for a new key
(it would start again full, which only forgets a caller not seen for the longest time).
"""

from __future__ import annotations

import time
from collections import OrderedDict


class BucketTable:
    """Token buckets of one budget, by key (a token subject or a client address)."""

    __slots__ = ("_buckets", "_max_keys", "burst", "rate")

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("a token bucket needs rate > 0, burst >= 1 and max_keys >= 1")
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        # key -> (tokens left, when they were counted)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float | None = None) -> float | None:
        """Take one token for this key: None when allowed, else the seconds until it is."""
        now = time.monotonic() if now is None else now
        buckets = self._buckets
        held = buckets.get(key)
        if held is None:
            tokens = float(self.burst)
            if len(buckets) >= self._max_keys:
                buckets.popitem(last=False)
        else:
            left, then = held
            tokens = min(float(self.burst), left + max(0.0, now - then) * self.rate)
            buckets.move_to_end(key)
        if tokens >= 1.0:
            buckets[key] = (tokens - 1.0, now)
            return None
        buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate


def retry_after_header(wait_s: float) -> int:
    """A wait as Retry-After's whole seconds: rounded up, at least 1."""
    return max(1, int(wait_s + 0.999999))
