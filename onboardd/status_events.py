"""What flows into the status-recorder actor: the dispatcher's send outcomes and Twilio's
status callbacks. The recorder applies both in batched, set-based statements (group commit),
so a message's status, its customer and its campaign counters change in one transaction.

A producer that must know the update is durable (the webhook answers Twilio only then)
awaits ``StatusWork.done``; the recorder resolves it after the flush commits.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal

import msgspec


class SendOutcome(msgspec.Struct, frozen=True):
    """The result of one dispatcher attempt for one invitation message."""

    message_id: str
    # accepted: Twilio took it (sid set, status queued); retry: transient failure, try again at
    # next_attempt_at; failed: permanent failure; skipped: not sent (skip_reason says why);
    # fallback: WhatsApp unreachable, re-queued on SMS.
    outcome: Literal["accepted", "retry", "failed", "skipped", "fallback"]
    at: datetime
    channel: str
    sid: str | None = None
    sender: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    skip_reason: str | None = None
    next_attempt_at: datetime | None = None
    opted_out: bool = False


class StatusCallback(msgspec.Struct, frozen=True):
    """One Twilio status callback (or a reconciled status from the Messages list)."""

    sid: str
    status: str
    at: datetime
    error_code: int | None = None
    error_message: str | None = None


class StatusWork(msgspec.Struct):
    """A queue item: the events plus a future resolved when they are durable."""

    items: list[SendOutcome | StatusCallback]
    done: asyncio.Future[None] | None = None



ChannelName = Literal["whatsapp", "sms"]
