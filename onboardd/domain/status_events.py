"""What flows into the status-recorder actor: the dispatcher's send outcomes and Twilio's
status callbacks. The recorder applies both in batched, set-based statements (group commit),
so a message's status, its customer and its campaign counters change in one transaction.

A producer that must know the update is durable (the webhook answers Twilio only then)
awaits ``StatusWork.done``; the recorder resolves it after the flush commits. An event the
database refuses is parked (``parked`` gives its stored form, without PII) and counts as settled.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal

import msgspec

from onboardd.domain.masking import mask_digits

OutcomeKind = Literal["accepted", "retry", "failed", "skipped", "fallback"]


class SendOutcome(msgspec.Struct, frozen=True):
    """The result of one dispatcher attempt for one invitation message."""

    message_id: str
    # accepted: Twilio took it (sid set, status queued); retry: transient failure, try again at
    # next_attempt_at; failed: permanent failure; skipped: not sent (skip_reason says why);
    # fallback: WhatsApp unreachable, re-queued on SMS.
    outcome: OutcomeKind
    at: datetime
    channel: str
    sid: str | None = None
    sender: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    skip_reason: str | None = None
    next_attempt_at: datetime | None = None
    opted_out: bool = False
    # The claim this attempt was made under; an outcome whose claim was taken over meanwhile
    # changes nothing (None: apply whatever the claim).
    claim_token: int | None = None


class StatusCallback(msgspec.Struct, frozen=True):
    """One Twilio status callback (or a reconciled status from the Messages list)."""

    sid: str
    status: str
    at: datetime
    error_code: int | None = None
    error_message: str | None = None


class StatusWork(msgspec.Struct):
    """A queue item: the events plus a future resolved when they are durable.

    Status callbacks are durable once in the status inbox, applied to their messages a moment
    later by the status folder; ``apply_now`` has the recorder apply them in its own flush
    instead (reconciliation, which reads the messages again right after)."""

    items: list[SendOutcome | StatusCallback]
    done: asyncio.Future[None] | None = None
    apply_now: bool = False



ChannelName = Literal["whatsapp", "sms"]

# Parked events keep at most this many characters of any text value.
PARKED_MAX_CHARS = 200
_FREE_TEXT = frozenset({"error_message"})  # third-party text that may quote a phone number


class ParkedEvent(msgspec.Struct, frozen=True):
    """An event the recorder could not apply, as kept in status_events_parked."""

    kind: Literal["send_outcome", "status_callback"]
    message_id: str | None
    sid: str | None
    error: str
    payload: dict[str, Any]


def safe_text(value: str, *, masked: bool = True) -> str:
    """Text fit to store and log: NULs escaped, phone-like digit runs masked, at most
    PARKED_MAX_CHARS characters."""
    text = value.replace("\x00", "\\0")
    if masked:
        text = mask_digits(text)
    return text if len(text) <= PARKED_MAX_CHARS else text[:PARKED_MAX_CHARS] + "..."


def parked(item: SendOutcome | StatusCallback, error: str) -> ParkedEvent:
    """The parked form of an event: ids kept, free text masked, every string made storable."""
    payload: dict[str, Any] = {}
    for name, value in msgspec.to_builtins(item).items():
        is_text = isinstance(value, str)
        payload[name] = safe_text(value, masked=name in _FREE_TEXT) if is_text else value
    if isinstance(item, SendOutcome):
        return ParkedEvent("send_outcome", safe_text(item.message_id, masked=False),
                           payload.get("sid"), safe_text(error), payload)
    return ParkedEvent("status_callback", None, payload["sid"], safe_text(error), payload)
