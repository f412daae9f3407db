"""Typed access to campaigns and their messages: CRUD, send start, the dispatcher's claims.

(The lease sweep's claim of expired leases is in onboardd.db.reconcile.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
import msgspec

from onboardd.db.queries import query
from onboardd.domain.campaigns.audience import Audience, audience_from_json, audience_params
from onboardd.domain.campaigns.validation import CampaignInput
from onboardd.domain.sending_hours import FALLBACK_TIMEZONE, SendingHours

S = TypeVar("S", bound=msgspec.Struct)

class Campaign(msgspec.Struct, frozen=True, rename="camel"):
    """A campaign as stored (encodes to the API's camelCase)."""

    id: str
    salon_id: str
    name: str
    channel: str
    message_template: str
    welcome_offer_id: str | None
    whatsapp_content_sid: str | None
    audience: Audience
    status: str
    scheduled_for: datetime | None
    target_customer_count: int
    messages_sent: int
    messages_delivered: int
    messages_failed: int
    messages_read: int
    messages_skipped: int
    created_by: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    paused_at: datetime | None
    updated_at: datetime


class CampaignPage(msgspec.Struct, frozen=True):
    """One page of a salon's campaigns and how many there are in all."""

    items: list[Campaign]
    total: int


class Salon(msgspec.Struct, frozen=True):
    id: str
    name: str
    country: str
    app_download_link: str | None


class AudienceCustomer(msgspec.Struct, frozen=True):
    id: str
    customer_name: str
    normalized_phone_enc: str
    status: str
    import_batch_id: str | None
    offer_code: str | None
    download_token: str | None


class BatchChoice(msgspec.Struct, frozen=True):
    """An import batch as the builder's audience filter lists it."""

    id: str
    file_name: str | None
    created_at: datetime
    successful_imports: int


class ClaimedMessage(msgspec.Struct, frozen=True):
    """A message leased to this dispatcher, with everything needed to send it."""

    id: str
    campaign_id: str
    channel: str
    attempts: int
    sender: str
    attempt_started_at: datetime
    claim_token: int
    customer_name: str
    normalized_phone_enc: str
    offer_code: str | None
    download_token: str | None
    salon_id: str
    campaign_channel: str
    message_template: str
    whatsapp_content_sid: str | None
    salon_name: str
    app_download_link: str | None
    discount_type: str | None
    discount_value: int | None
    validity_days: int | None
    opted_out: bool
    recently_invited: bool
    # The customer's status is opted_out (STOP to any sender, or the imported file said no).
    customer_opted_out: bool = False
    name_from_organisation: bool = False
    # The salon's sending window when claimed (onboardd.domain.sending_hours).
    window_start_s: int = 0
    window_end_s: int = 86_400
    window_timezone: str = "UTC"


class DueCampaign(msgspec.Struct, frozen=True):
    """A scheduled campaign whose time has come."""

    id: str
    salon_id: str


def _row(kind: type[S], record: asyncpg.Record) -> S:
    """Build a struct from the record's columns of the same names."""
    values: dict[str, Any] = {name: record[name] for name in kind.__struct_fields__}
    return kind(**values)


def _campaign(record: asyncpg.Record) -> Campaign:
    values: dict[str, Any] = {name: record[name] for name in Campaign.__struct_fields__}
    values["audience"] = audience_from_json(values["audience"])
    return Campaign(**values)


def _audience_args(audience: Audience) -> tuple[object, ...]:
    return audience_params(audience).args()


# -- CRUD -------------------------------------------------------------------------------------

async def create(pool: asyncpg.Pool, salon_id: str, created_by: str, body: CampaignInput
                 ) -> Campaign:
    """Insert a draft campaign from a checked body."""
    record = await pool.fetchrow(
        query("campaign_insert"), salon_id, body.name, body.channel, body.message_template,
        body.welcome_offer_id, body.whatsapp_content_sid, body.audience, body.scheduled_for,
        created_by)
    return _campaign(record)


async def list_for_salon(pool: asyncpg.Pool, salon_id: str, status: str | None, limit: int,
                         offset: int) -> CampaignPage:
    """A page of the salon's campaigns, newest first, and the total."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(query("campaign_list"), salon_id, status, limit, offset)
        total: int = await conn.fetchval(query("campaign_count"), salon_id, status)
    return CampaignPage(items=[_campaign(r) for r in rows], total=total)


async def get(pool: asyncpg.Pool | asyncpg.Connection, campaign_id: str, salon_id: str
              ) -> Campaign | None:
    """One campaign of the salon (None for another salon's id)."""
    record = await pool.fetchrow(query("campaign_get"), campaign_id, salon_id)
    return None if record is None else _campaign(record)


async def update(pool: asyncpg.Pool, campaign_id: str, salon_id: str, body: CampaignInput
                 ) -> Campaign | None:
    """Replace the editable fields while draft or scheduled; None when not editable."""
    record = await pool.fetchrow(
        query("campaign_update"), campaign_id, salon_id, body.name, body.channel,
        body.message_template, body.welcome_offer_id, body.whatsapp_content_sid,
        body.audience, body.scheduled_for)
    return None if record is None else _campaign(record)


async def delete_draft(pool: asyncpg.Pool, campaign_id: str, salon_id: str) -> bool:
    """Delete a draft; False when it is not a draft (or not there)."""
    return await pool.fetchval(query("campaign_delete_draft"), campaign_id, salon_id) is not None


async def salon(pool: asyncpg.Pool | asyncpg.Connection, salon_id: str) -> Salon | None:
    """The host app's salon row."""
    record = await pool.fetchrow(query("salon_get"), salon_id)
    return None if record is None else _row(Salon, record)


# -- audience ---------------------------------------------------------------------------------

async def audience_count(pool: asyncpg.Pool, salon_id: str, audience: Audience) -> int:
    """How many customers the audience targets now."""
    count: int = await pool.fetchval(query("audience_count"), salon_id,
                                     *_audience_args(audience))
    return count


async def audience_sample(pool: asyncpg.Pool, salon_id: str, audience: Audience, limit: int
                          ) -> list[AudienceCustomer]:
    """The first customers of the audience (oldest import first)."""
    rows = await pool.fetch(query("audience_sample"), salon_id, *_audience_args(audience), limit)
    return [_row(AudienceCustomer, r) for r in rows]


async def customer(pool: asyncpg.Pool, customer_id: str, salon_id: str
                   ) -> AudienceCustomer | None:
    """One imported customer of the salon."""
    record = await pool.fetchrow(query("customer_for_preview"), customer_id, salon_id)
    return None if record is None else _row(AudienceCustomer, record)


async def import_batches(pool: asyncpg.Pool, salon_id: str, limit: int) -> list[BatchChoice]:
    """The salon's import batches that hold customers, newest first."""
    rows = await pool.fetch(query("campaign_import_batches"), salon_id, limit)
    return [_row(BatchChoice, r) for r in rows]


# -- send start, schedule, pause, resume -------------------------------------------------------

async def lock(conn: asyncpg.Connection, campaign_id: str, salon_id: str) -> Campaign | None:
    """Lock one campaign of the salon until the transaction ends."""
    record = await conn.fetchrow(query("campaign_lock"), campaign_id, salon_id)
    return None if record is None else _campaign(record)


async def set_sending(conn: asyncpg.Connection, campaign_id: str, salon_id: str) -> None:
    """Status sending; asyncpg.UniqueViolationError when another campaign of the salon sends
    (run it in a savepoint)."""
    await conn.execute(query("campaign_set_sending"), campaign_id, salon_id)


async def freeze_audience(conn: asyncpg.Connection, campaign: Campaign, first_channel: str
                          ) -> int:
    """One pending message per customer the audience targets now; returns how many."""
    count: int = await conn.fetchval(
        query("audience_freeze"), campaign.salon_id, *_audience_args(campaign.audience),
        campaign.id, first_channel)
    return count


async def customers_lacking_codes(conn: asyncpg.Connection, campaign_id: str) -> list[str]:
    """Ids of the campaign's customers without an offer code or download token."""
    return [r["id"] for r in await conn.fetch(query("customers_lacking_codes"), campaign_id)]


async def assign_codes(conn: asyncpg.Connection, ids: Sequence[str], offer_codes: Sequence[str],
                       tokens: Sequence[str]) -> None:
    """Give customers their codes and tokens; asyncpg.UniqueViolationError when a code is
    taken (run it in a savepoint)."""
    await conn.execute(query("customers_assign_codes"), list(ids), list(offer_codes),
                       list(tokens))


async def set_target(conn: asyncpg.Connection, campaign_id: str) -> Campaign:
    """Record how many messages the campaign holds as its target."""
    total: int = await conn.fetchval(query("campaign_message_count"), campaign_id)
    record = await conn.fetchrow(query("campaign_set_target"), campaign_id, total)
    return _campaign(record)


async def schedule(pool: asyncpg.Pool, campaign_id: str, salon_id: str, when: datetime
                   ) -> Campaign | None:
    """Status scheduled at ``when`` (from draft or scheduled); None otherwise."""
    record = await pool.fetchrow(query("campaign_schedule"), campaign_id, salon_id, when)
    return None if record is None else _campaign(record)


async def pause(pool: asyncpg.Pool, campaign_id: str, salon_id: str) -> Campaign | None:
    """Sending -> paused; None when it was not sending."""
    record = await pool.fetchrow(query("campaign_pause"), campaign_id, salon_id)
    return None if record is None else _campaign(record)


async def resume(pool: asyncpg.Pool, campaign_id: str, salon_id: str) -> Campaign | None:
    """Paused -> sending; None when it was not paused; asyncpg.UniqueViolationError when
    another campaign of the salon sends."""
    record = await pool.fetchrow(query("campaign_resume"), campaign_id, salon_id)
    return None if record is None else _campaign(record)


async def due(pool: asyncpg.Pool, limit: int) -> list[DueCampaign]:
    """Scheduled campaigns whose time has come."""
    return [_row(DueCampaign, r) for r in await pool.fetch(query("campaigns_due"), limit)]


async def unschedule(pool: asyncpg.Pool, campaign_id: str) -> None:
    """Back to draft (a due campaign whose audience turned out empty)."""
    await pool.execute(query("campaign_unschedule_empty"), campaign_id)


# -- dispatcher ------------------------------------------------------------------------------

async def sending_ids(pool: asyncpg.Pool) -> set[str]:
    """Ids of every campaign now sending."""
    return {r["id"] for r in await pool.fetch(query("campaigns_sending_ids"))}


async def claim(pool: asyncpg.Pool, *, channel: str, limit: int, lease_s: float,
                whatsapp_sender: str, sms_sender: str, resend_window_h: float,
                instance_id: int, hours: SendingHours) -> list[ClaimedMessage]:
    """Lease up to ``limit`` due messages of sending campaigns whose salon is inside its
    sending window (``hours`` for salons without their own), a fair share per campaign, to
    this instance."""
    bare_whatsapp = whatsapp_sender.removeprefix("whatsapp:")
    rows = await pool.fetch(query("messages_claim"), channel, limit, lease_s, whatsapp_sender,
                            sms_sender, resend_window_h, bare_whatsapp, instance_id,
                            hours.start_s, hours.end_s, FALLBACK_TIMEZONE)
    return [_row(ClaimedMessage, r) for r in rows]


def _claims(messages: Sequence[ClaimedMessage]) -> tuple[list[str], list[int]]:
    return [m.id for m in messages], [m.claim_token for m in messages]


async def release(pool: asyncpg.Pool, messages: Sequence[ClaimedMessage],
                  not_before: datetime) -> None:
    """Hand leased messages back unsent (those still under these claims)."""
    if messages:
        await pool.execute(query("messages_release"), *_claims(messages), not_before)


async def renew(pool: asyncpg.Pool, messages: Sequence[ClaimedMessage], lease_s: float) -> None:
    """Extend the leases of messages still held (those still under these claims)."""
    if messages:
        await pool.execute(query("messages_renew"), *_claims(messages), lease_s)


async def expire_lease(pool: asyncpg.Pool, messages: Sequence[ClaimedMessage]) -> None:
    """End the leases of messages given up on now, for the next sweep to reconcile."""
    if messages:
        await pool.execute(query("messages_expire_lease"), *_claims(messages))
