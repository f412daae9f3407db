"""How fast the dispatcher sends from one sender, and what it does with a refused send: retry,
pause, fall back, skip or fail."""

from __future__ import annotations

import collections
import random
from typing import Final, Literal

import msgspec
from aiolimiter import AsyncLimiter

from onboardd.domain import delivery

# The bucket of each sender's limiter holds this many requests: enough to absorb a late
# timer wake-up, small enough that a burst plus the steady rate stays within the limit.
BUCKET: Final = 2.0
EARLY_S: Final = 1e-6


def make_limiter(rate_per_s: float) -> AsyncLimiter:
    """A limiter that never lets more than ``rate_per_s`` requests start in any 1-second window.

    AsyncLimiter(R, 1) allows a burst of R and then R more within the same second. A bucket of
    BUCKET drained at R - BUCKET per second allows at most BUCKET + (R - BUCKET) in any second.
    """
    steady = max(rate_per_s - BUCKET, rate_per_s / 2)
    bucket = min(BUCKET, rate_per_s)
    return AsyncLimiter(bucket, bucket / steady)


class SendWindow:
    """The last second's request starts of one sender: ``wait_s`` says how long the next start
    must wait so that no one-second window ever holds more than ``limit`` starts.

    The limiter paces requests; this is the hard cap behind it, checked at the moment a request
    starts, so a late timer wake-up, a stalled event loop or a burst after a pause can never
    bunch more than ``limit`` starts into one second.
    """

    def __init__(self, limit: float, window_s: float = 1.0) -> None:
        self.limit = max(1, int(limit))
        self.window_s = window_s
        self._starts: collections.deque[float] = collections.deque()

    def wait_s(self, now: float) -> float:
        """0 when a request may start at ``now``, else the seconds until one may."""
        starts = self._starts
        # A timer may fire a clock resolution early: a microsecond short of the window is out.
        while starts and now - starts[0] >= self.window_s - EARLY_S:
            starts.popleft()
        if len(starts) < self.limit:
            return 0.0
        return starts[0] + self.window_s - now

    def record(self, now: float) -> None:
        """A request started at ``now``."""
        self._starts.append(now)


class Decision(msgspec.Struct, frozen=True):
    """The dispatcher's next step for one refused or cut-off send."""

    action: Literal["retry", "failed", "skipped", "fallback", "rate_limited"]
    delay_s: float = 0.0
    skip_reason: str | None = None
    opted_out: bool = False


def decide(
    *,
    http_status: int | None,
    code: int | None,
    attempts: int,
    max_attempts: int,
    channel: str,
    campaign_channel: str,
    retry_after_s: float | None,
    rate_limit_pause_s: float,
    rng: random.Random | None = None,
) -> Decision:
    """Classify a failed attempt (``attempts`` counts this one) into the next step."""
    kind = delivery.classify(http_status, code)
    if kind is delivery.ErrorKind.RATE_LIMITED:
        pause = retry_after_s if retry_after_s is not None else rate_limit_pause_s
        return Decision("rate_limited", delay_s=pause)
    if kind is delivery.ErrorKind.TRANSIENT:
        if attempts >= max_attempts:
            return Decision("failed")
        return Decision("retry", delay_s=delivery.backoff_s(attempts, rng=rng))
    if kind is delivery.ErrorKind.WHATSAPP_UNREACHABLE:
        if channel == "whatsapp" and campaign_channel == "both":
            return Decision("fallback")
        return Decision("failed")
    if kind is delivery.ErrorKind.OPTED_OUT:
        return Decision("skipped", skip_reason="opted_out", opted_out=True)
    if kind is delivery.ErrorKind.INVALID_NUMBER:
        return Decision("skipped", skip_reason="invalid_number")
    return Decision("failed")
