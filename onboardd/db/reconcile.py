"""What reconciliation asks of the database: expired send leases (for the one lease sweep) and
accepted messages whose final status never arrived (to look up by SID)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from onboardd.db.queries import query


class ExpiredMessage(msgspec.Struct, frozen=True):
    """A message whose lease ran out mid-send, now leased to the sweeper: Twilio is asked
    whether the cut-off attempt created it before anything else happens to it."""

    id: str
    campaign_id: str
    channel: str
    sender: str | None
    attempt_started_at: datetime
    normalized_phone_enc: str
    offer_code: str | None
    claim_token: int | None = None


class AwaitingMessage(msgspec.Struct, frozen=True):
    """An accepted message (it carries a SID) whose final status has not arrived."""

    id: str
    campaign_id: str
    channel: str
    sid: str
    normalized_phone_enc: str
    since: datetime


async def claim_expired(pool: asyncpg.Pool, *, limit: int, lease_s: float, guard_s: float,
                        instance_id: int | None, campaign_id: str | None = None,
                        message_ids: Sequence[str] | None = None) -> list[ExpiredMessage]:
    """Take over up to ``limit`` messages whose lease expired mid-send, or whose holder is dead
    and whose attempt started more than ``guard_s`` ago (of one campaign, or only the given
    ids), leased for ``lease_s`` to the caller (``instance_id``: None outside a daemon)."""
    ids = None if message_ids is None else list(message_ids)
    rows = await pool.fetch(query("reconcile_claim_expired"), limit, lease_s, campaign_id, ids,
                            guard_s, instance_id)
    return [msgspec.convert(dict(r), ExpiredMessage) for r in rows]


async def awaiting(pool: asyncpg.Pool, *, delivery_wait_s: float, limit: int,
                   campaign_id: str | None = None,
                   message_ids: Sequence[str] | None = None,
                   after: str | None = None) -> list[AwaitingMessage]:
    """Accepted messages still queued/sent after the delivery wait (of one campaign), in id
    order after ``after``; or the given ids that carry a SID."""
    ids = None if message_ids is None else list(message_ids)
    rows = await pool.fetch(query("reconcile_awaiting"), campaign_id, delivery_wait_s, limit,
                            ids, after)
    return [msgspec.convert(dict(r), AwaitingMessage) for r in rows]
