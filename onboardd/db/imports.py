"""Typed access to import batches and imported customers (SQL in sql/queries/imports.sql)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any, Final, TypeAlias

import asyncpg
import msgspec

from onboardd.db import status_inbox
from onboardd.db.access_route import ACCESS_ROUTE
from onboardd.db.queries import query
from onboardd.domain.columns import ColumnMapping

Conn: TypeAlias = "asyncpg.Connection | asyncpg.Pool"
# The most customers one pii_access_log entry names (an analytics export shows them all).
MAX_LOGGED_CUSTOMERS: Final = 1_000


class StoredMapping(ColumnMapping, frozen=True):
    """What the batch keeps about its columns: the mapping chosen and the file's headers."""

    headers: list[str] = msgspec.field(default_factory=list)


class ClaimedBatch(msgspec.Struct, frozen=True):
    """A confirmed batch held by one importer under a lease."""

    id: str
    salon_id: str
    file_name: str | None
    file_kind: str
    file_data: bytes | None
    mapping: StoredMapping
    region: str
    processed: int
    total_records: int
    default_consent: str = "assume"


class BatchStatus(msgspec.Struct, frozen=True):
    """Counters and state of one batch, with its first errors."""

    id: str
    salon_id: str
    status: str
    file_name: str | None
    total_records: int
    processed: int
    successful_imports: int
    failed_imports: int
    duplicate_skipped: int
    failure_reason: str | None
    created_at: dt.datetime
    confirmed_at: dt.datetime | None
    completed_at: dt.datetime | None
    error_count: int
    first_errors: list[dict[str, Any]]
    default_consent: str = "assume"
    imported_opted_out: int = 0
    consent_unknown: int = 0
    existing_opted_out: int = 0


class CustomerRow(msgspec.Struct, frozen=True):
    """An imported customer as stored (PII still encrypted)."""

    id: str
    import_batch_id: str | None
    customer_name: str
    phone_enc: str
    normalized_phone_enc: str
    email_enc: str | None
    status: str
    invited_at: dt.datetime | None
    registered_at: dt.datetime | None
    linked_user_id: str | None
    created_at: dt.datetime
    consent: str | None = None
    consent_source: str | None = None
    opt_out_reason: str | None = None
    name_from_organisation: bool = False


class ChunkRows(msgspec.Struct, frozen=True):
    """Column arrays of one chunk, ready for the set-based write: the valid rows (with their
    encrypted original cells, kept only if the database finds the phone already there) and
    the rejected or skipped ones."""

    names: list[str]
    phone_enc: list[str]
    e164_enc: list[str]
    email_enc: list[str | None]
    phone_hash: list[bytes]
    source_row: list[int]
    original_enc: list[str]
    status: list[str]
    consent: list[str]
    consent_source: list[str | None]
    opt_out_reason: list[str | None]
    name_from_organisation: list[bool]
    error_rows: list[int]
    error_original_enc: list[str]
    # Each row's error messages as a JSON array.
    error_json: list[str]


class ErrorRow(msgspec.Struct, frozen=True):
    """One rejected or skipped row of a batch, its original cells still encrypted."""

    row_number: int
    original_enc: str
    errors: list[str]


class NewBatch(msgspec.Struct, frozen=True):
    """A stored upload: its id and when it was created."""

    id: str
    created_at: dt.datetime


class BatchForConfirm(msgspec.Struct, frozen=True):
    """What a confirm needs of a batch: its status and stored mapping."""

    status: str
    mapping: StoredMapping


class RecentEvents(msgspec.Struct, frozen=True):
    """The database clock and a salon's events (uploads or confirms) in the rolling hour,
    newest first; ``salon_exists`` is False for an unknown salon."""

    now: dt.datetime
    times: list[dt.datetime]
    salon_exists: bool = True


class BatchErrors(msgspec.Struct, frozen=True):
    """Status, mapping and every error row of a batch, in row order."""

    status: str
    mapping: StoredMapping
    errors: list[ErrorRow]


class ChunkWritten(msgspec.Struct, frozen=True):
    """The batch after a chunk was written: its status and rows processed so far."""

    status: str
    processed: int


class CustomerPage(msgspec.Struct, frozen=True):
    """One page of imported customers and how many match in all."""

    items: list[CustomerRow]
    total: int


def read_mapping(raw: Any) -> StoredMapping:
    """A batch's mapping column as a StoredMapping."""
    if isinstance(raw, dict) and "phones" not in raw and raw.get("phone") is not None:
        # Stored before a mapping could name several phone columns.
        raw = {**raw, "phones": [{"column": raw["phone"]}]}
    return msgspec.convert(raw, StoredMapping)


async def salon_region(conn: Conn, salon_id: str) -> str | None:
    """The salon's country (phone region), or None when the salon does not exist."""
    value: str | None = await conn.fetchval(query("import_salon_region"), salon_id)
    return value


async def insert_batch(conn: Conn, *, salon_id: str, imported_by: str, file_name: str,
                       total_records: int, file_kind: str, file_data: bytes,
                       mapping: StoredMapping, region: str, default_consent: str) -> NewBatch:
    """Store an uploaded file as a batch awaiting confirmation."""
    row = await conn.fetchrow(query("insert_import_batch"), salon_id, imported_by,
                              file_name[:255], total_records, file_kind, file_data,
                              msgspec.to_builtins(mapping), region, default_consent)
    assert row is not None
    return NewBatch(id=row["id"], created_at=row["created_at"])


async def existing_hashes(conn: Conn, salon_id: str, hashes: list[bytes]) -> dict[bytes, str]:
    """Which of these phone hashes the salon already has, each with its customer's id."""
    if not hashes:
        return {}
    rows = await conn.fetch(query("import_existing_phone_hashes"), salon_id, hashes)
    return {bytes(r["phone_hash"]): r["id"] for r in rows}


async def lock_salon_imports(conn: asyncpg.Connection, salon_id: str) -> None:
    """Transaction-scoped lock on the salon's confirms."""
    await conn.execute(query("import_lock_salon_imports"), salon_id)


async def batch_for_confirm(conn: asyncpg.Connection, batch_id: str, salon_id: str
                            ) -> BatchForConfirm | None:
    """The batch's status and stored mapping, or None (absent or another salon's)."""
    row = await conn.fetchrow(query("import_batch_for_confirm"), batch_id, salon_id)
    if row is None:
        return None
    return BatchForConfirm(status=row["status"], mapping=read_mapping(row["mapping"]))


async def recent_confirms(conn: Conn, salon_id: str) -> RecentEvents:
    """The database clock and the salon's confirm times in the last hour, newest first."""
    row = await conn.fetchrow(query("import_recent_confirms"), salon_id)
    assert row is not None
    return RecentEvents(now=row["now"], times=list(row["confirmed"]))


async def recent_uploads(conn: Conn, salon_id: str) -> RecentEvents:
    """The clock, whether the salon exists, and its upload times in the last hour, newest
    first."""
    row = await conn.fetchrow(query("import_recent_uploads"), salon_id)
    assert row is not None
    return RecentEvents(now=row["now"], times=list(row["uploaded"]),
                        salon_exists=row["salon_exists"])


async def record_upload(conn: Conn, salon_id: str) -> None:
    """Count one upload attempt of the salon."""
    await conn.execute(query("import_record_upload"), salon_id)


async def forget_uploads(conn: Conn) -> int:
    """Drop upload attempts older than the rolling hour; returns how many."""
    status: str = await conn.execute(query("import_forget_uploads"))
    return int(status.split()[-1])


async def confirm(conn: Conn, batch_id: str, salon_id: str, mapping: StoredMapping,
                  lease_s: float) -> bool:
    """preview -> processing; False when another confirm got there first."""
    row = await conn.fetchrow(query("import_confirm_batch"), batch_id, salon_id,
                              msgspec.to_builtins(mapping), lease_s)
    return row is not None


async def batch_status(conn: Conn, batch_id: str, salon_id: str) -> BatchStatus | None:
    """Counters and the first 100 errors of a batch of this salon."""
    row = await conn.fetchrow(query("import_batch_status"), batch_id, salon_id)
    return None if row is None else BatchStatus(**dict(row))


async def batch_errors(conn: Conn, batch_id: str, salon_id: str
                       ) -> BatchErrors | None:
    """Status, mapping and every error of a batch of this salon, in row order."""
    row = await conn.fetchrow(query("import_batch_header"), batch_id, salon_id)
    if row is None:
        return None
    errors = await conn.fetch(query("import_batch_errors"), batch_id)
    return BatchErrors(status=row["status"], mapping=read_mapping(row["mapping"]), errors=[
        ErrorRow(row_number=e["row_number"], original_enc=e["original_enc"],
                 errors=list(e["errors"])) for e in errors])


def _claimed(row: asyncpg.Record | None) -> ClaimedBatch | None:
    if row is None:
        return None
    values = dict(row)
    values["mapping"] = read_mapping(values["mapping"])
    return ClaimedBatch(**values)


async def claim_batch(conn: Conn, lease_s: float, instance_id: int | None
                      ) -> ClaimedBatch | None:
    """Claim the oldest confirmed batch that nobody alive holds, for this instance (None:
    a holder without liveness, whose lease alone protects the claim)."""
    return _claimed(await conn.fetchrow(query("claim_import_batch"), lease_s, instance_id))


async def claimed_batch(conn: Conn, batch_id: str) -> ClaimedBatch | None:
    """Read a batch the caller already holds (confirmed with a lease)."""
    return _claimed(await conn.fetchrow(query("import_claimed_batch"), batch_id))


async def write_chunk(conn: Conn, batch_id: str, *, processed: int, size: int,
                      lease_s: float, total: int, failed: int, duplicates: int,
                      rows: ChunkRows, conflict_errors: list[str]) -> ChunkWritten | None:
    """Guard the claim, insert the chunk's valid rows, record its errors and advance the
    batch, in one statement; returns (status, processed), or None when the claim was lost.
    Valid rows the database already had count as duplicates (and become errors)."""
    row = await conn.fetchrow(
        query("import_write_chunk"), batch_id, processed, size, lease_s, total, failed,
        duplicates, rows.names, rows.phone_enc, rows.e164_enc, rows.email_enc, rows.phone_hash,
        rows.source_row, rows.original_enc, rows.error_rows, rows.error_original_enc,
        rows.error_json, conflict_errors, rows.status, rows.consent, rows.consent_source,
        rows.opt_out_reason, rows.name_from_organisation, "no" in rows.consent)
    assert row is not None
    if not row["guarded"]:
        return None
    return ChunkWritten(status=row["status"], processed=row["processed"])


async def fail_batch(conn: Conn, batch_id: str, reason: str) -> None:
    """End a batch that cannot be processed at all."""
    await conn.execute(query("import_fail_batch"), batch_id, reason[:1000])


async def release_batch(conn: Conn, batch_id: str) -> None:
    """Give the claim back so another importer resumes it at once."""
    await conn.execute(query("import_release_batch"), batch_id)


async def expire_previews(conn: Conn, older_than_s: float) -> int:
    """Fail previews nobody confirmed and drop their files; returns how many."""
    status: str = await conn.execute(query("import_expire_previews"), older_than_s)
    return int(status.split()[-1])


async def list_customers(conn: Conn, salon_id: str, *, status: str | None,
                         name_pattern: str | None, phone_hash: bytes | None, limit: int,
                         offset: int) -> CustomerPage:
    """One page of the salon's imported customers and the total matching."""
    rows = await conn.fetch(query("list_imported_customers"), salon_id, status, name_pattern,
                            phone_hash, limit, offset)
    total = int(await conn.fetchval(query("count_imported_customers"), salon_id, status,
                                    name_pattern, phone_hash))
    fields = CustomerRow.__struct_fields__
    return CustomerPage(items=[CustomerRow(**{f: r[f] for f in fields}) for r in rows],
                        total=total)


async def log_pii_access(conn: Conn, *, actor: str, salon_id: str, action: str,
                         record_count: int, details: dict[str, Any], request_id: str,
                         customer_ids: list[str] | None = None,
                         customers_shown: int | None = None) -> None:
    """Record who read decrypted PII (spec §9.1): with the route of the request doing it
    (onboardd.db.access_route) and, when known, the customers whose PII it showed: the first
    MAX_LOGGED_CUSTOMERS, and details.customerIdsOmitted counts the rest of customers_shown
    (default len(customer_ids)), so no read writes a row (or a log page) of megabytes."""
    if customer_ids is not None:
        shown = len(customer_ids) if customers_shown is None else customers_shown
        customer_ids = customer_ids[:MAX_LOGGED_CUSTOMERS]
        if shown > len(customer_ids):
            details = {**details, "customerIdsOmitted": shown - len(customer_ids)}
    await conn.execute(query("import_log_pii_access"), actor, salon_id, action, record_count,
                       details, request_id or None, ACCESS_ROUTE.get(), customer_ids)


# GDPR erase -------------------------------------------------------------------------------------

class LockedCustomer(msgspec.Struct, frozen=True):
    """A customer locked for erasure: the encrypted E.164 number and their message count."""

    normalized_phone_enc: str
    messages: int


class Erased(msgspec.Struct, frozen=True):
    """What an erase removed besides the customer: campaigns whose counters were adjusted and
    error rows of the salon's batches."""

    campaigns: int
    error_rows: int


class SalonErrorRow(msgspec.Struct, frozen=True):
    """A rejected or skipped row of one of the salon's batches, original cells encrypted."""

    batch_id: str
    row_number: int
    original_enc: str
    region: str


async def lock_for_erase(conn: asyncpg.Connection, customer_id: str, salon_id: str
                         ) -> LockedCustomer | None:
    """Lock a customer of this salon and its messages (inside a transaction), or None when
    the salon has no such customer. First the status folder's lock, and the status callbacks
    still waiting in the inbox for those messages go (onboardd.db.status_inbox)."""
    await status_inbox.forget_customer(conn, customer_id, salon_id)
    row = await conn.fetchrow(query("import_erase_lock"), customer_id, salon_id)
    return None if row is None else LockedCustomer(
        normalized_phone_enc=row["normalized_phone_enc"], messages=int(row["messages"]))


async def salon_error_rows(conn: asyncpg.Connection, salon_id: str
                           ) -> AsyncIterator[SalonErrorRow]:
    """Stream every error row of the salon's batches (inside a transaction)."""
    async for row in conn.cursor(query("import_salon_error_rows"), salon_id, prefetch=1000):
        yield SalonErrorRow(batch_id=row["batch_id"], row_number=row["row_number"],
                            original_enc=row["original_enc"], region=row["region"])


async def erase_customer(conn: asyncpg.Connection, customer_id: str, salon_id: str,
                         error_rows: list[tuple[str, int]]) -> Erased:
    """Delete a locked customer (messages cascade, campaign counters follow) and the given
    error rows of the salon's batches; returns (campaigns adjusted, error rows removed)."""
    erased = await conn.fetchrow(query("import_erase_customer"), customer_id, salon_id)
    assert erased is not None
    assert erased["erased"] == 1, "erase_customer needs the row locked by lock_for_erase"
    removed = 0
    if error_rows:
        row = await conn.fetchrow(query("import_erase_error_rows"),
                                  [b for b, _ in error_rows], [n for _, n in error_rows],
                                  salon_id)
        assert row is not None
        removed = int(row["removed"])
    return Erased(campaigns=int(erased["campaigns"]), error_rows=removed)
