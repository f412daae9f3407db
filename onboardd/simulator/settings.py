"""The [simulator] section: behaviour knobs of the built-in Twilio simulator.

Rate model: Twilio queues messages it cannot send at once; the simulator instead rejects
requests beyond its budget with HTTP 429 / code 20429 and ``Retry-After: 1``. The budget is
a token bucket holding ``rate_per_s`` tokens (one second of burst) refilled at ``rate_per_s``
per second; ``rate_per_s = 0`` means unlimited.

``per_number`` maps an E.164 number (without the ``whatsapp:`` prefix) to one behaviour:
``429``, ``500``, ``503``, ``timeout`` (hang for ``hang_s``; with ``timeout_accepts`` the
message is created first, as when Twilio accepted it but the response was lost), ``slow``
(answer after ``slow_ms``), ``63003`` / ``63024`` / ``63016`` (WhatsApp channel errors,
reported as a failed callback or an immediate 400 per ``whatsapp_error_mode``), ``21211`` /
``21610`` (immediate 400), ``undelivered`` / ``failed`` (final callback status), ``read``
(read receipt even on SMS).

Without a ``per_number`` entry, the reserved block ``+91 90000 BNNNN`` has a fixed behaviour by
its digit B: 1 ``63003`` (not on WhatsApp), 2 ``21211`` (invalid), 3 ``undelivered`` (30003);
see ``profile.py``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from onboardd.domain.twilio_sids import is_account_sid

BEHAVIOURS = frozenset(
    {
        "429",
        "500",
        "503",
        "timeout",
        "slow",
        "63003",
        "63024",
        "63016",
        "21211",
        "21610",
        "undelivered",
        "failed",
        "read",
    }
)


class SimulatorSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Behaviour of the simulated Twilio Messaging API; every field has a usable default."""

    # Where `onboardd simulator` listens (inside `onboardd serve` it takes a free local port).
    host: str = "127.0.0.1"
    port: int = 8090
    # Shaped like a real account SID (AC + 32 hex), as the webhooks check.
    account_sid: str = "AC00000000000000000000000000051a1e"
    # Empty: a random token. onboardd keeps one per state directory (twilio_account); a simulator
    # built from settings with no token invents its own (SimState).
    auth_token: str = ""
    # With an external database, `onboardd serve` runs on the simulator only when this is true.
    enabled: bool = False
    allowed_from: list[str] = msgspec.field(default_factory=list)
    rate_per_s: float = 200.0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    seed: int = 1
    error_rate_429: float = 0.0
    error_rate_5xx: float = 0.0
    timeout_rate: float = 0.0
    hang_s: float = 600.0
    timeout_accepts: bool = True
    slow_ms: float = 2000.0
    whatsapp_unreachable_rate: float = 0.0
    whatsapp_error_mode: Literal["callback", "immediate"] = "callback"
    per_number: dict[str, str] = msgspec.field(default_factory=dict)
    callbacks_enabled: bool = True
    callbacks_paused: bool = False
    sent_after_ms: float = 200.0
    delivered_after_ms: float = 1000.0
    read_after_ms: float = 3000.0
    callback_duplicate_rate: float = 0.0
    callback_out_of_order_rate: float = 0.0
    callback_workers: int = 8
    callback_timeout_s: float = 5.0
    callback_max_attempts: int = 3
    callback_retry_delay_ms: float = 500.0

    def __post_init__(self) -> None:
        """Reject values that type-check but cannot work."""
        for name in (
            "error_rate_429",
            "error_rate_5xx",
            "timeout_rate",
            "whatsapp_unreachable_rate",
            "callback_duplicate_rate",
            "callback_out_of_order_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if not is_account_sid(self.account_sid):
            raise ValueError(f"account_sid must be AC followed by 32 hex digits (as Twilio's), "
                             f"got '{self.account_sid}'")
        if self.rate_per_s < 0:
            raise ValueError(f"rate_per_s must be >= 0, got {self.rate_per_s}")
        if self.callback_workers < 1 or self.callback_max_attempts < 1:
            raise ValueError("callback_workers and callback_max_attempts must be >= 1")
        for number, behaviour in self.per_number.items():
            if behaviour not in BEHAVIOURS:
                raise ValueError(f"per_number[{number}]: unknown behaviour '{behaviour}'")
