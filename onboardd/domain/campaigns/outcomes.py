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
    """One sender's request writes over the last window: how long the next must wait so that no
    window of ``window_s`` ever holds more than ``limit`` of them.

    The limiter paces requests; this is the hard cap behind it, in two steps per request:

    * ``reserve`` a place before the request is built (``reserve_wait_s`` says how long to wait
      first, counting the places reserved but not yet written as written now): the waiting
      happens here, in order, before any deadline runs;
    * ``record`` the write at the moment the request's bytes are handed to the socket, after
      ``write_wait_s`` says 0: counting written requests only, which is what holds the cap. Each
      write saw fewer than ``limit`` writes in the window before it, so no window holds more.

    A request given up between the two ``release``s its place. A stalled event loop, a late
    timer or a loop turn between the reservation and the write can only delay a write; it can
    never bunch more than ``limit`` into one window.
    """

    def __init__(self, limit: float, window_s: float = 1.0) -> None:
        self.limit = max(1, int(limit))
        self.window_s = window_s
        self._writes: collections.deque[float] = collections.deque()
        self.reserved = 0

    def _expire(self, now: float) -> None:
        writes = self._writes
        # A timer may fire a clock resolution early: a microsecond short of the window is out.
        while writes and now - writes[0] >= self.window_s - EARLY_S:
            writes.popleft()

    def _wait_for(self, taken: int, now: float) -> float | None:
        """With ``taken`` places counted, the seconds until one is free; None when only a
        reserved place going out (or released) can free one."""
        if taken < self.limit:
            return 0.0
        oldest = taken - self.limit
        if oldest < len(self._writes):
            return max(0.0, self._writes[oldest] + self.window_s - now)
        return None

    def reserve_wait_s(self, now: float) -> float | None:
        """0 when a place may be reserved at ``now``; else the seconds to wait, or None to wait
        until a reserved request is written or released."""
        self._expire(now)
        return self._wait_for(len(self._writes) + self.reserved, now)

    def reserve(self) -> None:
        """Take a place for a request about to be made."""
        self.reserved += 1

    def release(self) -> None:
        """A reserved request was not made."""
        self.reserved = max(0, self.reserved - 1)

    def write_wait_s(self, now: float) -> float:
        """0 when a request may be written at ``now``, else the seconds until one may."""
        self._expire(now)
        wait = self._wait_for(len(self._writes), now)
        assert wait is not None  # written requests alone always leave the window in time
        return wait

    def record(self, now: float) -> None:
        """A reserved request was written at ``now``."""
        self.release()
        self._writes.append(now)


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
