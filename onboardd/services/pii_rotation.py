"""Re-encrypt every stored ciphertext under the current PII key (`onboardd pii rotate`), after
which retired keys can be removed from `[pii] retired_keys`.

Resumable by construction: a batch is one statement (its own transaction) that replaces only
ciphertexts still as read, and a page asks only for rows holding a ciphertext of another key.
Killed anywhere, the work done stays done and a rerun finds only what is left. A row changed
meanwhile (erased, say) is skipped and picked up by the next pass; rows an instance still
running with the old key as current writes meanwhile are reported as left.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

from onboardd.db import pii_rotation as db
from onboardd.logging import get_logger
from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from onboardd.services.imports import ROW_PURPOSE

log = get_logger("pii_rotation")

Progress = Callable[[int, int], None]

DEFAULT_BATCH: Final = 500
# Passes over the tables before giving up on rows that keep changing under the rotation.
MAX_PASSES: Final = 3
_HASH_SAMPLE: Final = 20


class RotationError(Exception):
    """Rotation cannot start: ciphertext of a key the configuration lacks, or a changed
    matching-hash key."""


class RotationResult(msgspec.Struct, frozen=True):
    """What a rotation did: ciphertexts re-encrypted, and left under other keys (0 when every
    ciphertext is under the current key)."""

    key_id: str
    rotated: int
    left: int
    census: list[db.KeyCount]


async def census(services: Services) -> list[db.KeyCount]:
    """How many ciphertexts each key id holds, per column."""
    return await db.key_census(services.pool)


def _outstanding(counts: list[db.KeyCount], key_id: str) -> int:
    return sum(c.count for c in counts if c.key_id != key_id)


async def _check(services: Services, counts: list[db.KeyCount]) -> None:
    """Refuse before writing anything when some ciphertext cannot be decrypted, or when the
    matching hash of stored numbers no longer matches (the hash key changed with the key)."""
    cipher = services.cipher
    unknown = sorted({c.key_id for c in counts if not cipher.knows(c.key_id)})
    if unknown:
        raise RotationError(
            f"ciphertext under key id(s) {', '.join(repr(k) for k in unknown)} that neither "
            "[pii] key_id nor [pii] retired_keys names: add them to retired_keys "
            "('id:BASE64KEY,...') and run again")
    for token, stored in await db.hash_sample(services.pool, _HASH_SAMPLE):
        if cipher.phone_hash(cipher.decrypt(token, "phone")) != stored:
            raise RotationError(
                "the phone matching hash of stored customers does not match under the current "
                "hash key: it changed with the encryption key (without [pii] hash_key it is "
                "derived from [pii] key). Set [pii] hash_key (ONBOARDD_PII_HASH_KEY) to the "
                "previous hash key, then run again")


def _customer(cipher: PiiCipher, row: db.CustomerCiphers) -> tuple[db.CustomerCiphers, int]:
    new = db.CustomerCiphers(
        id=row.id, phone_enc=cipher.reencrypt(row.phone_enc, "phone"),
        normalized_phone_enc=cipher.reencrypt(row.normalized_phone_enc, "phone"),
        email_enc=None if row.email_enc is None else cipher.reencrypt(row.email_enc, "email"))
    changed = sum(1 for token in (row.phone_enc, row.normalized_phone_enc, row.email_enc)
                  if token is not None and cipher.needs_rotation(token))
    return new, changed


def _error_log(cipher: PiiCipher, entries: list[Any]) -> tuple[list[Any], int]:
    out: list[Any] = []
    changed = 0
    for entry in entries:
        data = entry.get("data") if isinstance(entry, dict) else None
        if isinstance(data, str) and cipher.needs_rotation(data):
            entry = {**entry, "data": cipher.reencrypt(data, ROW_PURPOSE)}
            changed += 1
        out.append(entry)
    return out, changed


class _Pass:
    """One pass over every encrypted column, reporting progress after each batch."""

    def __init__(self, services: Services, batch: int, report: Callable[[int], None]) -> None:
        self.pool = services.pool
        self.cipher = services.cipher
        self.key_id = services.cipher.key_id
        self.batch = batch
        self.report = report

    async def customers(self) -> None:
        after = ""
        while rows := await db.customers_page(self.pool, after, self.key_id, self.batch):
            after = rows[-1].id
            fresh = [_customer(self.cipher, row) for row in rows]
            written = await db.write_customers(self.pool, rows, [new for new, _ in fresh])
            self.report(sum(n for new, n in fresh if new.id in written))

    async def error_rows(self) -> None:
        after = ("", 0)
        while rows := await db.error_rows_page(self.pool, after, self.key_id, self.batch):
            after = (rows[-1].batch_id, rows[-1].row_number)
            new = [self.cipher.reencrypt(r.original_enc, ROW_PURPOSE) for r in rows]
            self.report(await db.write_error_rows(self.pool, rows, new))

    async def error_logs(self) -> None:
        after = ""
        # An error_log holds at most 100 entries: fewer batches per page keeps pages small.
        size = max(1, self.batch // 100)
        while batches := await db.error_logs_page(self.pool, after, self.key_id, size):
            after = batches[-1].id
            fresh = [_error_log(self.cipher, b.error_log) for b in batches]
            written = await db.write_error_logs(self.pool, batches, [log_ for log_, _ in fresh])
            self.report(sum(n for b, (_, n) in zip(batches, fresh, strict=True)
                            if b.id in written))


async def rotate(services: Services, *, batch: int = DEFAULT_BATCH,
                 progress: Progress | None = None) -> RotationResult:
    """Re-encrypt every ciphertext not under the current key, `batch` rows per statement;
    progress(done, total) after each batch."""
    key_id = services.cipher.key_id
    counts = await census(services)
    await _check(services, counts)
    total = _outstanding(counts, key_id)
    done = 0
    log.info("pii_rotation_started", key_id=key_id, ciphertexts=total)

    def report(count: int) -> None:
        nonlocal done
        done = min(total, done + count)
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    for _ in range(MAX_PASSES):
        if _outstanding(counts, key_id) == 0:
            break
        one = _Pass(services, batch, report)
        await one.customers()
        await one.error_rows()
        await one.error_logs()
        counts = await census(services)
    left = _outstanding(counts, key_id)
    if progress is not None and left == 0:
        progress(total, total)
    log.info("pii_rotation_finished", key_id=key_id, rotated=done, left=left)
    return RotationResult(key_id=key_id, rotated=done, left=left, census=counts)
