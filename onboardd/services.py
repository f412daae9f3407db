"""What every actor and handler shares: config, pool, keys, the stop event, the queues.

Queues carry only flow (ids, events); the database is the source of truth, so a full queue
can always fall back to the actor's next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import asyncpg

from onboardd.auth import TokenCodec
from onboardd.config import Config
from onboardd.pii import PiiCipher
from onboardd.status_events import StatusWork

# Bounds for the queues between actors; sized for bursts, small enough to push back.
IMPORT_QUEUE_SIZE = 64
CAMPAIGN_QUEUE_SIZE = 256
STATUS_QUEUE_SIZE = 1_000


@dataclass
class Queues:
    """Bounded hand-offs between the web front and the actors."""

    imports: asyncio.Queue[str] = field(
        default_factory=lambda: asyncio.Queue(maxsize=IMPORT_QUEUE_SIZE))
    campaigns: asyncio.Queue[str] = field(
        default_factory=lambda: asyncio.Queue(maxsize=CAMPAIGN_QUEUE_SIZE))
    # Into the status recorder; each item may carry many events (one webhook, one send batch).
    status: asyncio.Queue[StatusWork] = field(
        default_factory=lambda: asyncio.Queue(maxsize=STATUS_QUEUE_SIZE))


def nudge(queue: asyncio.Queue[str], item: str) -> None:
    """Wake an actor; when its queue is full the actor's poll will find the row anyway."""
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(item)


@dataclass
class Services:
    """Shared, long-lived objects of one daemon (or one test)."""

    cfg: Config
    pool: asyncpg.Pool
    cipher: PiiCipher
    tokens: TokenCodec
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    queues: Queues = field(default_factory=Queues)
    twilio_base_url: str = ""
    public_base_url: str = ""
