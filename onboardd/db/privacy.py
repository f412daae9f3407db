"""Typed reads for data-subject rights and audit (SQL in sql/queries/pii.sql): everything stored
about one imported customer, the salon's open imports, and the salon's PII access log."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any, TypeAlias, TypeVar

import asyncpg
import msgspec

from onboardd.db.queries import query

Conn: TypeAlias = "asyncpg.Connection | asyncpg.Pool"
S = TypeVar("S", bound=msgspec.Struct)


def _as(kind: type[S], rows: list[asyncpg.Record]) -> list[S]:
    fields = kind.__struct_fields__
    return [kind(**{f: r[f] for f in fields}) for r in rows]


class CustomerRecord(msgspec.Struct, frozen=True):
    """Every column of an imported customer (phone, E.164 number and email encrypted)."""

    id: str
    salon_id: str
    import_batch_id: str | None
    customer_name: str
    phone_enc: str
    normalized_phone_enc: str
    email_enc: str | None
    phone_hash: bytes
    status: str
    invited_at: dt.datetime | None
    registered_at: dt.datetime | None
    linked_user_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    source_row: int | None
    offer_code: str | None
    download_token: str | None
    last_campaign_id: str | None
    last_invited_at: dt.datetime | None
    opted_out_at: dt.datetime | None
    consent: str | None
    consent_source: str | None
    opt_out_reason: str | None
    name_from_organisation: bool
    funnel_invited: bool
    funnel_delivered: bool
    last_message_at: dt.datetime | None
    first_booking_at: dt.datetime | None


class MessageRecord(msgspec.Struct, frozen=True, rename="camel"):
    """One invitation message to the customer."""

    id: str
    campaign_id: str
    campaign_name: str
    channel: str
    status: str
    sender: str | None
    twilio_message_sid: str | None
    fallback_from: str | None
    fallback_sid: str | None
    error_code: int | None
    error_message: str | None
    skip_reason: str | None
    attempts: int
    created_at: dt.datetime
    queued_at: dt.datetime | None
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None
    read_at: dt.datetime | None
    updated_at: dt.datetime


class OptOutRecord(msgspec.Struct, frozen=True, rename="camel"):
    """An opt-out of the number for one sender (STOP, a carrier report, the imported file)."""

    sender: str
    source: str
    opted_out_at: dt.datetime


class KeywordRecord(msgspec.Struct, frozen=True, rename="camel"):
    """A STOP/START keyword the number sent."""

    message_sid: str | None
    sender: str
    keyword: str
    received_at: dt.datetime


class RedemptionRecord(msgspec.Struct, frozen=True, rename="camel"):
    """A welcome-offer grant (status active or expired) or redemption."""

    id: str
    welcome_offer_id: str
    offer_name: str
    user_id: str
    imported_customer_id: str | None
    booking_id: str | None
    discount_applied_in_paisa: int
    status: str
    expires_at: dt.datetime
    redeemed_at: dt.datetime | None
    created_at: dt.datetime


class ErrorRowRecord(msgspec.Struct, frozen=True):
    """A rejected or skipped row of one of the salon's batches (original cells encrypted)."""

    batch_id: str
    file_name: str | None
    row_number: int
    original_enc: str
    errors: list[str]
    region: str


class AccessEntry(msgspec.Struct, frozen=True):
    """One pii_access_log row."""

    id: int
    actor: str
    action: str
    route: str | None
    record_count: int
    customer_ids: list[str] | None
    details: dict[str, Any] | None
    request_id: str | None
    created_at: dt.datetime


class AccessPage(msgspec.Struct, frozen=True):
    """One page of a salon's access log and how many entries match in all."""

    entries: list[AccessEntry]
    total: int


class OpenImportFile(msgspec.Struct, frozen=True):
    """An import awaiting confirmation or running, with its stored file."""

    id: str
    status: str
    file_name: str | None
    file_kind: str
    file_data: bytes
    region: str
    total_records: int
    processed: int
    created_at: dt.datetime
    confirmed_at: dt.datetime | None


async def salon_timezone(conn: Conn, salon_id: str) -> str | None:
    """The salon's IANA timezone, or None when there is no such salon."""
    zone: str | None = await conn.fetchval(query("privacy_salon_timezone"), salon_id)
    return zone


async def customer_record(conn: Conn, customer_id: str, salon_id: str
                          ) -> CustomerRecord | None:
    """The customer's whole row, or None when the salon has no such customer."""
    row = await conn.fetchrow(query("privacy_customer"), customer_id, salon_id)
    if row is None:
        return None
    values = dict(row)
    values["phone_hash"] = bytes(values["phone_hash"])
    return CustomerRecord(**values)


async def customer_messages(conn: Conn, customer_id: str, salon_id: str
                            ) -> list[MessageRecord]:
    """The customer's invitation messages, oldest first."""
    return _as(MessageRecord, await conn.fetch(query("privacy_customer_messages"),
                                               customer_id, salon_id))


async def opt_outs(conn: Conn, phone_hash: bytes) -> list[OptOutRecord]:
    """The number's opt-outs, per sender."""
    return _as(OptOutRecord, await conn.fetch(query("privacy_opt_outs"), phone_hash))


async def inbound_keywords(conn: Conn, phone_hash: bytes) -> list[KeywordRecord]:
    """The STOP/START keywords the number sent."""
    return _as(KeywordRecord, await conn.fetch(query("privacy_inbound_keywords"), phone_hash))


async def redemptions(conn: Conn, customer_id: str, salon_id: str, user_id: str | None
                      ) -> list[RedemptionRecord]:
    """Grants and redemptions of the customer (or its app user) for the salon's offers."""
    return _as(RedemptionRecord, await conn.fetch(query("privacy_redemptions"), customer_id,
                                                  salon_id, user_id))


async def salon_error_rows(conn: asyncpg.Connection, salon_id: str
                           ) -> AsyncIterator[ErrorRowRecord]:
    """Stream every error row of the salon's batches (inside a transaction)."""
    async for row in conn.cursor(query("privacy_salon_error_rows"), salon_id, prefetch=1000):
        yield ErrorRowRecord(batch_id=row["batch_id"], file_name=row["file_name"],
                             row_number=row["row_number"], original_enc=row["original_enc"],
                             errors=list(row["errors"]), region=row["region"])


async def customer_accesses(conn: Conn, salon_id: str, customer_id: str, limit: int
                            ) -> list[AccessEntry]:
    """The salon's access log entries naming the customer, newest first."""
    return _as(AccessEntry, await conn.fetch(query("privacy_customer_accesses"), salon_id,
                                             customer_id, limit))


async def open_imports(conn: Conn, salon_id: str) -> list[OpenImportFile]:
    """The salon's imports still holding their uploaded file, oldest first."""
    return _as(OpenImportFile, await conn.fetch(query("privacy_open_imports"), salon_id))


async def open_import_ids(conn: Conn, salon_id: str) -> set[str]:
    """The ids of the salon's imports still holding their uploaded file."""
    return {r["id"] for r in await conn.fetch(query("privacy_open_import_ids"), salon_id)}


async def access_page(conn: Conn, salon_id: str, *, start: dt.datetime, end: dt.datetime,
                      customer_id: str | None, limit: int, offset: int) -> AccessPage:
    """One page, newest first, of the salon's access log in [start, end)."""
    rows = await conn.fetch(query("pii_access_log_page"), salon_id, start, end, customer_id,
                            limit, offset)
    total = int(await conn.fetchval(query("pii_access_log_count"), salon_id, start, end,
                                    customer_id))
    return AccessPage(entries=_as(AccessEntry, rows), total=total)
