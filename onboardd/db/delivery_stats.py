"""Campaign delivery statistics and the per-customer delivery list, as the campaign API reads
them: read-only queries over the counters and message rows that db.delivery keeps."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

from onboardd.db.queries import query


class CampaignStats(msgspec.Struct, frozen=True):
    """A campaign's stored counters and its message tallies at the time of the read."""

    id: str
    salon_id: str
    name: str
    status: str
    channel: str
    target_customer_count: int
    messages_sent: int
    messages_delivered: int
    messages_read: int
    messages_failed: int
    messages_skipped: int
    started_at: datetime | None
    completed_at: datetime | None
    paused_at: datetime | None
    total: int  # messages
    pending: int  # pending or in flight
    awaiting: int  # accepted by Twilio, no final status yet
    accepted_last_10s: int
    opted_out: int  # customers of the campaign who opted out
    registrations: int  # customers whose last campaign this is and who registered


class FailedCode(msgspec.Struct, frozen=True):
    """Failed or undelivered messages of one Twilio error code."""

    error_code: int | None
    error_message: str | None
    n: int


class MessageRow(msgspec.Struct, frozen=True):
    """One invitation message with its customer's name and encrypted phone."""

    id: str
    imported_customer_id: str
    customer_name: str
    normalized_phone_enc: str
    channel: str
    status: str
    twilio_message_sid: str | None
    error_code: int | None
    error_message: str | None
    skip_reason: str | None
    attempts: int
    fallback_from: str | None
    queued_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    created_at: datetime


class MessagePage(msgspec.Struct, frozen=True):
    """One page of a campaign's messages and how many match the filter in all."""

    items: list[MessageRow]
    total: int


async def campaign_stats(pool: asyncpg.Pool, campaign_id: str, salon_id: str
                         ) -> CampaignStats | None:
    """The campaign's counters and message tallies (None: not this salon's campaign)."""
    row = await pool.fetchrow(query("delivery_campaign_stats"), campaign_id, salon_id)
    return None if row is None else msgspec.convert(dict(row), CampaignStats)


async def failed_by_code(pool: asyncpg.Pool, campaign_id: str) -> list[FailedCode]:
    """Failed/undelivered messages grouped by Twilio error code, most frequent first."""
    rows = await pool.fetch(query("delivery_failed_by_code"), campaign_id)
    return [msgspec.convert(dict(r), FailedCode) for r in rows]


async def skipped_by_reason(pool: asyncpg.Pool, campaign_id: str) -> dict[str, int]:
    """Skipped messages grouped by reason."""
    rows = await pool.fetch(query("delivery_skipped_by_reason"), campaign_id)
    return {r["reason"]: r["n"] for r in rows}


async def campaign_exists(pool: asyncpg.Pool, campaign_id: str, salon_id: str) -> bool:
    """True when the campaign belongs to the salon."""
    return await pool.fetchval(query("delivery_campaign_exists"), campaign_id, salon_id) is not None


async def list_messages(pool: asyncpg.Pool, campaign_id: str, salon_id: str, status: str | None,
                        limit: int, offset: int) -> MessagePage:
    """One page of a campaign's messages (oldest first, status filter or None) and the total.
    The page query counts the matches itself; only a page past the end needs a second query."""
    rows = await pool.fetch(query("delivery_list_messages"), campaign_id, salon_id, status,
                            limit, offset)
    if rows:
        total: int = rows[0]["total"]
    else:
        total = await pool.fetchval(query("delivery_count_messages"), campaign_id, salon_id,
                                    status)
    # The rows' window count ("total") is not a field of MessageRow: convert ignores it.
    return MessagePage(items=[msgspec.convert(dict(r), MessageRow) for r in rows], total=total)
