"""Typed access for re-encrypting PII under the current key (SQL in sql/queries/pii.sql).

Every encrypted column: imported_customers.phone_enc, normalized_phone_enc and email_enc
(purposes 'phone', 'phone', 'email'), import_errors.original_enc and the 'data' of each entry of
customer_import_batches.error_log (purpose 'import_row'). Pages come in key order after a
cursor and hold only rows with a ciphertext of another key; each write replaces a ciphertext
only if it is still the one read.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
import msgspec

from onboardd.db.queries import query

Conn: TypeAlias = "asyncpg.Connection | asyncpg.Pool"


class KeyCount(msgspec.Struct, frozen=True):
    """How many ciphertexts of one column were written with one key id."""

    column: str
    key_id: str
    count: int


class CustomerCiphers(msgspec.Struct, frozen=True):
    """The encrypted columns of one imported customer."""

    id: str
    phone_enc: str
    normalized_phone_enc: str
    email_enc: str | None


class ErrorRowCipher(msgspec.Struct, frozen=True):
    """The encrypted original cells of one import error row."""

    batch_id: str
    row_number: int
    original_enc: str


class ErrorLog(msgspec.Struct, frozen=True):
    """A batch's error_log (a list of {rowNumber, errors, data: ciphertext})."""

    id: str
    error_log: list[Any]


async def key_census(conn: Conn) -> list[KeyCount]:
    """How many ciphertexts each key id holds, per column."""
    return [KeyCount(column=r["column_name"], key_id=r["key_id"], count=int(r["n"]))
            for r in await conn.fetch(query("pii_key_census"))]


async def hash_sample(conn: Conn, size: int) -> list[tuple[str, bytes]]:
    """(E.164 ciphertext, stored matching hash) of a few customers."""
    rows = await conn.fetch(query("pii_hash_sample"), size)
    return [(r["normalized_phone_enc"], bytes(r["phone_hash"])) for r in rows]


async def customers_page(conn: Conn, after: str, key_id: str, limit: int
                         ) -> list[CustomerCiphers]:
    """The next customers after id `after` with a ciphertext not of key_id."""
    rows = await conn.fetch(query("pii_rotate_customers_page"), after, key_id, limit)
    return [CustomerCiphers(id=r["id"], phone_enc=r["phone_enc"],
                            normalized_phone_enc=r["normalized_phone_enc"],
                            email_enc=r["email_enc"]) for r in rows]


async def write_customers(conn: Conn, old: list[CustomerCiphers],
                          new: list[CustomerCiphers]) -> set[str]:
    """Replace the customers' ciphertexts where they are still `old`; returns the ids
    written."""
    written: list[str] = await conn.fetchval(
        query("pii_rotate_customers_write"), [c.id for c in old], [c.phone_enc for c in old],
        [c.normalized_phone_enc for c in old], [c.email_enc for c in old],
        [c.phone_enc for c in new], [c.normalized_phone_enc for c in new],
        [c.email_enc for c in new])
    return set(written)


async def error_rows_page(conn: Conn, after: tuple[str, int], key_id: str, limit: int
                          ) -> list[ErrorRowCipher]:
    """The next import error rows after (batch id, row number) with a ciphertext not of
    key_id."""
    rows = await conn.fetch(query("pii_rotate_error_rows_page"), after[0], after[1], key_id,
                            limit)
    return [ErrorRowCipher(batch_id=r["batch_id"], row_number=r["row_number"],
                           original_enc=r["original_enc"]) for r in rows]


async def write_error_rows(conn: Conn, old: list[ErrorRowCipher], new: list[str]) -> int:
    """Replace the rows' ciphertexts where they are still the old ones; returns rows written."""
    written: int = await conn.fetchval(
        query("pii_rotate_error_rows_write"), [r.batch_id for r in old],
        [r.row_number for r in old], [r.original_enc for r in old], new)
    return written


async def error_logs_page(conn: Conn, after: str, key_id: str, limit: int) -> list[ErrorLog]:
    """The next batches after id `after` whose error_log holds a ciphertext not of key_id."""
    rows = await conn.fetch(query("pii_rotate_error_logs_page"), after, key_id, limit)
    return [ErrorLog(id=r["id"], error_log=list(r["error_log"])) for r in rows]


async def write_error_logs(conn: Conn, old: list[ErrorLog], new: list[list[Any]]
                           ) -> set[str]:
    """Replace the batches' error_log where it is still the old one; returns the ids
    written."""
    encode = msgspec.json.encode
    written: list[str] = await conn.fetchval(
        query("pii_rotate_error_logs_write"), [b.id for b in old],
        [encode(b.error_log).decode() for b in old], [encode(log).decode() for log in new])
    return set(written)
