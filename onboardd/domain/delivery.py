"""Twilio delivery semantics: status ordering, error texts and classification."""

from __future__ import annotations

import enum
import random
from typing import Final

from onboardd.domain.masking import mask_digits

# Coarse progress of a message, as the spec's status column reads it.
STATUS_RANK: Final[dict[str, int]] = {
    "pending": 0,
    "accepted": 1,
    "scheduled": 1,
    "queued": 1,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "read": 4,
}
# Unsuccessful end states: they carry no rank because a late delivered/read
# callback proves the message arrived after all (see merge_status).
FAILURES: Final = frozenset({"failed", "undelivered", "canceled"})
FINALS: Final = FAILURES | {"delivered", "read"}

# A total order for merging. Within coarse rank 1 Twilio moves
# accepted -> scheduled -> queued -> sending, and a failure outranks everything
# up to "sent" but not "delivered": a late "sent" never undoes a failure, a
# late "delivered" does.
_ORDER: Final[dict[str, int]] = {
    "pending": 0,
    "accepted": 1,
    "scheduled": 2,
    "queued": 3,
    "sending": 4,
    "sent": 5,
    "failed": 6,
    "undelivered": 6,
    "canceled": 6,
    "delivered": 7,
    "read": 8,
}


def merge_status(current: str, incoming: str) -> str:
    """Return the status after a callback: forward only, first failure kept."""
    if incoming not in _ORDER:
        # Statuses we do not track (receiving, received...) change nothing.
        return current
    if _ORDER[incoming] > _ORDER.get(current, -1):
        return incoming
    return current


def is_final(status: str) -> bool:
    """Tell whether the send is over: delivered, read, or failed for good."""
    # A final status can still move forward (delivered -> read, failed ->
    # delivered on a late callback), but no retry or reconciliation is needed.
    return status in FINALS


def is_failure(status: str) -> bool:
    """Tell whether a status means the message did not arrive."""
    return status in FAILURES


ERROR_EXPLANATIONS: Final[dict[int, str]] = {
    20003: "Authentication failed: check the Twilio account SID and auth token",
    20404: "Resource not found",
    20429: "Too many requests",
    21211: "Invalid 'To' phone number",
    21408: "Permission to send an SMS has not been enabled for the region of the 'To' number",
    21606: "The 'From' number is not a valid message-capable number for this account",
    21608: "The 'To' number is not verified (trial accounts send only to verified numbers)",
    21610: "The recipient has unsubscribed (replied STOP)",
    21612: "The 'To' number cannot be reached from this 'From' number",
    21614: "The 'To' number is not a mobile number",
    21617: "The message body is longer than 1600 characters",
    30001: "Queue overflow",
    30002: "Account suspended",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered by the carrier",
    30008: "Unknown error",
    63003: "The number is not on WhatsApp (channel could not find the 'To' address)",
    63005: "WhatsApp did not accept the message (often: the number is not a WhatsApp user)",
    63007: "No WhatsApp sender found for the 'From' address",
    63016: "Outside the 24-hour WhatsApp window: an approved template (ContentSid) is required",
    63018: "WhatsApp rate limit exceeded",
    63024: "Invalid WhatsApp recipient",
}


def error_message(code: int | None, fallback: str | None) -> str | None:
    """Return "Twilio error: CODE (explanation)" for a code, else the fallback.

    Twilio's own texts may embed the recipient (21211: "The 'To' number +1... is not a valid
    phone number"); they are served by the campaign APIs, so phone-like runs are masked.
    """
    if fallback is not None:
        fallback = mask_digits(fallback)
    # The spec writes an error only for a truthy ErrorCode; 0 means none.
    if not code:
        return fallback
    explanation = ERROR_EXPLANATIONS.get(code, fallback)
    return f"Twilio error: {code} ({explanation})" if explanation else f"Twilio error: {code}"


class ErrorKind(enum.Enum):
    """What the dispatcher does about a failed send."""

    TRANSIENT = "transient"  # retry with backoff
    RATE_LIMITED = "rate_limited"  # pause the channel, then retry
    OPTED_OUT = "opted_out"  # mark the customer opted out
    WHATSAPP_UNREACHABLE = "whatsapp_unreachable"  # fall back to SMS when allowed
    INVALID_NUMBER = "invalid_number"  # skip the customer and record why
    PERMANENT = "permanent"  # fail this message, not the campaign


_BY_CODE: Final[dict[int, ErrorKind]] = {
    20429: ErrorKind.RATE_LIMITED,
    63018: ErrorKind.RATE_LIMITED,
    21610: ErrorKind.OPTED_OUT,
    63003: ErrorKind.WHATSAPP_UNREACHABLE,
    63005: ErrorKind.WHATSAPP_UNREACHABLE,
    63024: ErrorKind.WHATSAPP_UNREACHABLE,
    21211: ErrorKind.INVALID_NUMBER,
    21408: ErrorKind.INVALID_NUMBER,
    21612: ErrorKind.INVALID_NUMBER,
    21614: ErrorKind.INVALID_NUMBER,
    # The handset may be off or out of coverage: worth another try later.
    30001: ErrorKind.TRANSIENT,
    30003: ErrorKind.TRANSIENT,
}


def classify(http_status: int | None, code: int | None) -> ErrorKind:
    """Classify a failed send by Twilio error code first, then HTTP status."""
    if code is not None and code in _BY_CODE:
        return _BY_CODE[code]
    if http_status == 429:
        return ErrorKind.RATE_LIMITED
    # No HTTP status and no code: a timeout or connection error.
    if (http_status is None and code is None) or (http_status or 0) >= 500:
        return ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT


def backoff_s(
    attempt: int, base: float = 1.0, cap: float = 30.0, rng: random.Random | None = None
) -> float:
    """Return a full-jitter delay in seconds before retry number `attempt` (from 1)."""
    if attempt < 1:
        raise ValueError(f"attempt counts retries from 1, got {attempt}")
    # Clamp the exponent so huge attempt numbers cannot overflow a float.
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 64))
    return (rng or random).uniform(0.0, ceiling)
