"""Counters the simulator keeps for /_sim/stats."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class _Window:
    """Counts per wall-clock second, remembering the busiest second."""

    second: int = 0
    count: int = 0
    max: int = 0

    def hit(self, now: float) -> None:
        """Count one event at epoch time ``now``."""
        second = int(now)
        if second != self.second:
            self.second, self.count = second, 0
        self.count += 1
        if self.count > self.max:
            self.max = self.count


@dataclass(slots=True)
class Stats:
    """Request, rejection and callback counters."""

    requests: int = 0
    accepted: int = 0
    rejected: dict[int, int] = field(default_factory=dict)
    callbacks_posted: int = 0
    callbacks_failed_attempts: int = 0
    callbacks_dropped: int = 0
    callbacks_lost_paused: int = 0
    accepted_window: _Window = field(default_factory=_Window)
    request_window: _Window = field(default_factory=_Window)

    def reject(self, code: int) -> None:
        """Count a request answered with Twilio error ``code``."""
        self.rejected[code] = self.rejected.get(code, 0) + 1

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready snapshot."""
        return {
            "requests": self.requests,
            "accepted": self.accepted,
            "rejected": {str(code): n for code, n in sorted(self.rejected.items())},
            "callbacks_posted": self.callbacks_posted,
            "callbacks_failed_attempts": self.callbacks_failed_attempts,
            "callbacks_dropped": self.callbacks_dropped,
            "callbacks_lost_paused": self.callbacks_lost_paused,
            "max_accepted_per_s": self.accepted_window.max,
            "max_requests_per_s": self.request_window.max,
            "windows": {
                "accepted": asdict(self.accepted_window),
                "requests": asdict(self.request_window),
            },
        }
