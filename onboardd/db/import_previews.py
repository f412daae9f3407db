"""Previewing a stored upload again: its file and what the preview needs, and the mapping chosen
meanwhile (SQL in sql/queries/imports.sql)."""

from __future__ import annotations

import datetime as dt

import msgspec

from onboardd.db.imports import Conn, StoredMapping, read_mapping
from onboardd.db.queries import query


class StoredUpload(msgspec.Struct, frozen=True):
    """A batch's stored file and what its preview needs (file_data is None once the batch
    was imported, failed or expired)."""

    status: str
    file_name: str | None
    file_kind: str
    file_data: bytes | None
    mapping: StoredMapping
    region: str
    default_consent: str
    total_records: int
    created_at: dt.datetime


async def stored_upload(conn: Conn, batch_id: str, salon_id: str) -> StoredUpload | None:
    """A batch of this salon with its stored file, or None."""
    row = await conn.fetchrow(query("import_batch_for_preview"), batch_id, salon_id)
    if row is None:
        return None
    values = dict(row)
    values["mapping"] = read_mapping(values["mapping"])
    return StoredUpload(**values)


async def update_preview_mapping(conn: Conn, batch_id: str, salon_id: str,
                                 mapping: StoredMapping) -> bool:
    """Store the mapping of a batch awaiting confirmation; False when it no longer is."""
    row = await conn.fetchrow(query("import_update_preview_mapping"), batch_id, salon_id,
                              msgspec.to_builtins(mapping))
    return row is not None
