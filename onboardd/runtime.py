"""What every actor and handler shares: config, pool, keys, the stop event, the queues.

Queues carry only flow (ids, events); the database is the source of truth, so a full queue
can always fall back to the actor's next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import asyncpg

from onboardd.auth import TokenCodec, codec_from_config
from onboardd.cluster.membership import Membership, sender_key
from onboardd.config import Config
from onboardd.db.migrate import available, migrate
from onboardd.db.pool import create_pool, database_url
from onboardd.db.queries import check_catalogue
from onboardd.domain.campaigns import render
from onboardd.domain.status_events import StatusWork
from onboardd.metrics import Metrics
from onboardd.pii import PiiCipher, cipher_from_config

T = TypeVar("T")

# Bounds for the queues between actors; sized for bursts, small enough to push back.
IMPORT_QUEUE_SIZE = 64
CAMPAIGN_QUEUE_SIZE = 256
STATUS_QUEUE_SIZE = 1_000


@dataclass(frozen=True, slots=True)
class BatchConfirmed:
    """Wakes the importer: an import batch was confirmed (the row says which; any importer may
    take it)."""

    batch_id: str


CampaignWakeReason = Literal["campaign_changed", "leases_swept", "sms_fallback"]


@dataclass(frozen=True, slots=True)
class CampaignWake:
    """Wakes the dispatcher: which campaigns are sending, or which messages can be claimed,
    changed. ``campaign_id`` names the campaign when one campaign's state changed."""

    reason: CampaignWakeReason
    campaign_id: str | None = None


@dataclass
class Queues:
    """Bounded hand-offs between the web front and the actors."""

    imports: asyncio.Queue[BatchConfirmed] = field(
        default_factory=lambda: asyncio.Queue(maxsize=IMPORT_QUEUE_SIZE))
    campaigns: asyncio.Queue[CampaignWake] = field(
        default_factory=lambda: asyncio.Queue(maxsize=CAMPAIGN_QUEUE_SIZE))
    # Into the status recorder; each item may carry many events (one webhook, one send batch).
    status: asyncio.Queue[StatusWork] = field(
        default_factory=lambda: asyncio.Queue(maxsize=STATUS_QUEUE_SIZE))

    def by_name(self) -> dict[str, asyncio.Queue[Any]]:
        """Every queue by the name its metrics carry."""
        return {"imports": self.imports, "campaigns": self.campaigns, "status": self.status}


def nudge(queue: asyncio.Queue[T], item: T) -> None:
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
    # Set by the status recorder after callbacks reach the status inbox: wakes the status folder.
    inbox_wake: asyncio.Event = field(default_factory=asyncio.Event)
    twilio_base_url: str = ""
    public_base_url: str = ""
    # This instance's Prometheus metrics (GET /metrics), in a registry of its own.
    metrics: Metrics = field(default_factory=Metrics)
    # Liveness and sender ownership among the daemons sharing the database (its actor is
    # "membership").
    membership: Membership = field(init=False)

    def __post_init__(self) -> None:
        whatsapp, sms = render.senders(self.cfg.twilio.whatsapp_number, self.cfg.twilio.sms_number)
        self.membership = Membership(self.pool, [sender_key("whatsapp", whatsapp),
                                                 sender_key("sms", sms)], self.metrics)
        # Queue depths and the pool are read when Prometheus scrapes.
        self.metrics.watch(queues=lambda: self.queues.by_name(), pool=lambda: self.pool)


@contextlib.asynccontextmanager
async def open_services(cfg: Config) -> AsyncIterator[Services]:
    """Database (embedded or configured), migrations, keys: everything but the actors.

    The package's SQL is checked first, before any database is touched: a missing migration
    folder or a query the code asks for and the package lacks stops start-up (exit 2).
    """
    available()
    check_catalogue()
    cipher = cipher_from_config(cfg)
    tokens = codec_from_config(cfg)
    async with database_url(cfg) as url:
        pool = await create_pool(cfg, url)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            yield Services(cfg=cfg, pool=pool, cipher=cipher, tokens=tokens)
        finally:
            await pool.close()
