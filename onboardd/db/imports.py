"""Typed access to import batches and imported customers (SQL in sql/queries/imports.sql)."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeAlias

import asyncpg
import msgspec

from onboardd.db.queries import query

Conn: TypeAlias = "asyncpg.Connection | asyncpg.Pool"


class StoredMapping(msgspec.Struct, frozen=True):
    """What the batch keeps about its columns: the file's headers and the mapping chosen."""

    headers: list[str]
    name: int | None = None
    first_name: int | None = None
    last_name: int | None = None
    phone: int | None = None
    email: int | None = None


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


class ChunkRows(msgspec.Struct, frozen=True):
    """Column arrays of the valid rows of one chunk, ready for the set-based insert."""

    names: list[str]
    phone_enc: list[str]
    e164_enc: list[str]
    email_enc: list[str | None]
    phone_hash: list[bytes]
    source_row: list[int]


def _mapping(raw: Any) -> StoredMapping:
    return msgspec.convert(raw, StoredMapping)


async def salon_region(conn: Conn, salon_id: str) -> str | None:
    """The salon's country (phone region), or None when the salon does not exist."""
    value: str | None = await conn.fetchval(query("import_salon_region"), salon_id)
    return value


async def insert_batch(conn: Conn, *, salon_id: str, imported_by: str, file_name: str,
                       total_records: int, file_kind: str, file_data: bytes,
                       mapping: StoredMapping, region: str) -> tuple[str, dt.datetime]:
    """Store an uploaded file as a batch awaiting confirmation."""
    row = await conn.fetchrow(query("insert_import_batch"), salon_id, imported_by,
                              file_name[:255], total_records, file_kind, file_data,
                              msgspec.to_builtins(mapping), region)
    assert row is not None
    return row["id"], row["created_at"]


async def existing_hashes(conn: Conn, salon_id: str, hashes: list[bytes]) -> set[bytes]:
    """Which of these phone hashes the salon already has."""
    if not hashes:
        return set()
    rows = await conn.fetch(query("import_existing_phone_hashes"), salon_id, hashes)
    return {bytes(r["phone_hash"]) for r in rows}


async def lock_salon_imports(conn: asyncpg.Connection, salon_id: str) -> None:
    """Transaction-scoped lock on the salon's confirms."""
    await conn.execute(query("import_lock_salon_imports"), salon_id)


async def batch_for_confirm(conn: asyncpg.Connection, batch_id: str, salon_id: str
                            ) -> tuple[str, StoredMapping] | None:
    """The batch's status and stored mapping, or None (absent or another salon's)."""
    row = await conn.fetchrow(query("import_batch_for_confirm"), batch_id, salon_id)
    if row is None:
        return None
    return row["status"], _mapping(row["mapping"])


async def recent_confirms(conn: Conn, salon_id: str) -> tuple[dt.datetime, list[dt.datetime]]:
    """The database clock and the salon's confirm times in the last hour, newest first."""
    row = await conn.fetchrow(query("import_recent_confirms"), salon_id)
    assert row is not None
    return row["now"], list(row["confirmed"])


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


async def batch_error_log(conn: Conn, batch_id: str, salon_id: str
                          ) -> tuple[str, StoredMapping, list[dict[str, Any]]] | None:
    """Status, mapping and every stored error of a batch of this salon."""
    row = await conn.fetchrow(query("import_batch_error_log"), batch_id, salon_id)
    if row is None:
        return None
    return row["status"], _mapping(row["mapping"]), list(row["error_log"])


def _claimed(row: asyncpg.Record | None) -> ClaimedBatch | None:
    if row is None:
        return None
    values = dict(row)
    values["mapping"] = _mapping(values["mapping"])
    return ClaimedBatch(**values)


async def claim_batch(conn: Conn, lease_s: float) -> ClaimedBatch | None:
    """Claim the oldest confirmed batch that nobody holds."""
    return _claimed(await conn.fetchrow(query("claim_import_batch"), lease_s))


async def claimed_batch(conn: Conn, batch_id: str) -> ClaimedBatch | None:
    """Read a batch the caller already holds (confirmed with a lease)."""
    return _claimed(await conn.fetchrow(query("import_claimed_batch"), batch_id))


async def insert_chunk(conn: asyncpg.Connection, batch_id: str, processed: int,
                       lease_s: float, rows: ChunkRows) -> set[int] | None:
    """Guard the claim and insert a chunk's valid rows in one statement; returns the source
    rows that went in (the rest were duplicates), or None when the claim was lost."""
    row = await conn.fetchrow(query("import_insert_chunk"), batch_id, processed, lease_s,
                              rows.names, rows.phone_enc, rows.e164_enc, rows.email_enc,
                              rows.phone_hash, rows.source_row)
    assert row is not None
    if not row["guarded"]:
        return None
    return set(row["inserted"])


async def record_chunk(conn: asyncpg.Connection, batch_id: str, *, processed: int,
                       imported: int, failed: int, duplicates: int,
                       errors: list[dict[str, Any]], total: int) -> tuple[str, int]:
    """Advance counters and append errors; the last chunk completes the batch."""
    row = await conn.fetchrow(query("import_record_chunk"), batch_id, processed, imported, failed,
                              duplicates, errors, total)
    assert row is not None
    return row["status"], row["processed"]


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
                         offset: int) -> tuple[list[CustomerRow], int]:
    """One page of the salon's imported customers and the total matching."""
    rows = await conn.fetch(query("list_imported_customers"), salon_id, status, name_pattern,
                            phone_hash, limit, offset)
    if rows:
        total = int(rows[0]["total"])
    else:
        total = int(await conn.fetchval(query("count_imported_customers"), salon_id, status,
                                        name_pattern, phone_hash))
    fields = CustomerRow.__struct_fields__
    return [CustomerRow(**{f: r[f] for f in fields}) for r in rows], total


async def log_pii_access(conn: Conn, *, actor: str, salon_id: str, action: str,
                         record_count: int, details: dict[str, Any], request_id: str) -> None:
    """Record who read decrypted PII (spec §9.1)."""
    await conn.execute(query("import_log_pii_access"), actor, salon_id, action, record_count,
                       details, request_id or None)
