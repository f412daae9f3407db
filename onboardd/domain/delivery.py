"""Twilio delivery semantics: status ordering, error texts and classification, and the folding of
a flush's events (one row update per message or SID) that db.delivery then applies in SQL."""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable
from datetime import datetime
from typing import Final

import msgspec

from onboardd.domain.masking import mask_digits
from onboardd.domain.status_events import SendOutcome, StatusCallback

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


# Folding a flush's events ----------------------------------------------------------------------

# Twilio statuses before "sent" are one state to us: accepted by Twilio, not yet out. The
# database's "sending" means "our request is in flight", so Twilio's "sending" is stored as
# "queued"; "canceled" is a failure. Statuses we do not track (receiving, ...) are dropped.
_CALLBACK_STATUS: Final[dict[str, str]] = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
    "undelivered": "undelivered",
    "canceled": "failed",
}
# Stored statuses that prove the message left Twilio (so it has a sent time).
_SENT_EVIDENCE: Final = frozenset({"sent", "delivered", "read", "undelivered"})


def storable_status(status: str) -> str | None:
    """The invitation_messages status a Twilio callback status maps to (None: ignore it)."""
    return _CALLBACK_STATUS.get(status.strip().lower())


class FoldedCallback(msgspec.Struct):
    """Every callback of one SID in a flush, merged with merge_status: one row update."""

    sid: str
    status: str
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    error_code: int | None = None
    error_message: str | None = None

    @property
    def whatsapp_unreachable(self) -> bool:
        """True when the error says WhatsApp cannot reach the number (63003/63024/63005):
        a WhatsApp message of a `both` campaign then falls back to SMS."""
        return (self.error_code is not None
                and classify(None, self.error_code) is ErrorKind.WHATSAPP_UNREACHABLE)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def fold_callbacks(events: Iterable[StatusCallback]) -> dict[str, FoldedCallback]:
    """Merge the events of each SID (arrival order) so a flush updates a row once: the status
    only moves forward (merge_status, whatever order the callbacks came in), each timestamp is
    the earliest event proving it, and the first error code (with its text) is kept."""
    folded: dict[str, FoldedCallback] = {}
    for event in events:
        status = storable_status(event.status)
        if status is None:
            continue
        entry = folded.get(event.sid)
        if entry is None:
            entry = folded[event.sid] = FoldedCallback(event.sid, status)
        else:
            entry.status = merge_status(entry.status, status)
        if status in _SENT_EVIDENCE:
            entry.sent_at = _earliest(entry.sent_at, event.at)
        if status in ("delivered", "read"):
            entry.delivered_at = _earliest(entry.delivered_at, event.at)
        if status == "read":
            entry.read_at = _earliest(entry.read_at, event.at)
        if event.error_code and entry.error_code is None:
            entry.error_code = event.error_code
            entry.error_message = error_message(event.error_code, event.error_message)
    return folded


def fold_outcomes(outcomes: Iterable[SendOutcome]) -> tuple[list[SendOutcome], dict[str, int]]:
    """The last outcome per message and claim (arrival order) and the attempts each message
    made: every outcome counts as a request to Twilio except a skip that never reached it (no
    error code). Outcomes of one message under two claims (a late answer of an attempt the
    sweep took over, and the sweep's own) are both kept: the database applies the one whose
    claim the row still carries."""
    last: dict[tuple[str, int | None], SendOutcome] = {}
    attempts: dict[str, int] = {}
    for outcome in outcomes:
        last[(outcome.message_id, outcome.claim_token)] = outcome
        made_request = outcome.outcome != "skipped" or outcome.error_code is not None
        attempts[outcome.message_id] = attempts.get(outcome.message_id, 0) + int(made_request)
    return list(last.values()), attempts


def outcome_error(outcome: SendOutcome) -> str | None:
    """The error text stored with a send outcome: none for an accepted send."""
    if outcome.outcome == "accepted":
        return None
    return error_message(outcome.error_code, outcome.error_message)
