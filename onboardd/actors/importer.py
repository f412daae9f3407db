"""The importer actor: turns confirmed batches into imported customers.

A batch is claimed with FOR UPDATE SKIP LOCKED and a lease (`claimed_until`). Its stored file
is parsed again and the rows after `processed` are validated and inserted in chunks. Each
chunk is one transaction: a guard that locks the batch and proves the claim still holds, a
set-based insert (duplicates are the rows that did not insert), and the counters, progress and
errors. So a crash loses at most the chunk in flight, and the next claim resumes exactly at
`processed`. Preparing the next chunk (validation, encryption) runs in a worker thread while
the database writes the current one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Final

import asyncpg
import msgspec
import structlog

from onboardd.db import imports as db
from onboardd.importing.files import FileRejected, Table, read_table
from onboardd.importing.mapping import ColumnMapping
from onboardd.importing.rows import DUPLICATE_PHONE, mark_in_file_duplicates, validate_row
from onboardd.importing.service import column_mapping, error_entry
from onboardd.logging import get_logger
from onboardd.pii import PiiCipher
from onboardd.services import Services

log = get_logger("importer")

# A claim outlives a crashed holder by this long; every chunk renews it.
LEASE_S: Final = 60.0
# Previews never confirmed are dropped (with their stored file) after this long.
PREVIEW_TTL_S: Final = 24 * 3600.0

Progress = Callable[[int, int], None]


class LostClaim(Exception):
    """Another importer advanced the batch: this one's lease had run out."""


class ChunkPlan(msgspec.Struct):
    """One chunk, validated and encrypted, ready to write."""

    size: int
    rows: db.ChunkRows
    errors: list[dict[str, Any]]
    failed: int
    duplicates: int
    # Valid rows by row number, to explain the ones the database reports as duplicates.
    originals: dict[int, dict[str, str]]


def prepare_chunk(services: Services, table: Table, mapping: ColumnMapping, region: str,
                  start: int, end: int) -> ChunkPlan:
    """Validate rows [start, end) and build the insert arrays (CPU only, no I/O)."""
    cipher: PiiCipher = services.cipher
    headers = table.headers
    cells_list = table.rows[start:end]
    results = mark_in_file_duplicates([
        validate_row(cells, number, headers, mapping, region)
        for cells, number in zip(cells_list, table.row_numbers[start:end], strict=True)])
    names: list[str] = []
    phone_enc: list[str] = []
    e164_enc: list[str] = []
    email_enc: list[str | None] = []
    hashes: list[bytes] = []
    numbers: list[int] = []
    errors: list[dict[str, Any]] = []
    originals: dict[int, dict[str, str]] = {}
    failed = duplicates = 0
    phone_col = mapping.phone
    for result, cells in zip(results, cells_list, strict=True):
        if result.errors:
            if result.errors == [DUPLICATE_PHONE]:
                duplicates += 1
            else:
                failed += 1
            errors.append(error_entry(services, result.row_number, result.original,
                                      result.errors))
            continue
        assert result.name is not None
        assert result.phone is not None
        assert phone_col is not None
        names.append(result.name)
        phone_enc.append(cipher.encrypt(cells[phone_col].strip(), "phone"))
        e164_enc.append(cipher.encrypt(result.phone, "phone"))
        email_enc.append(cipher.encrypt(result.email, "email") if result.email else None)
        hashes.append(cipher.phone_hash(result.phone))
        numbers.append(result.row_number)
        originals[result.row_number] = result.original
    rows = db.ChunkRows(names=names, phone_enc=phone_enc, e164_enc=e164_enc,
                        email_enc=email_enc, phone_hash=hashes, source_row=numbers)
    return ChunkPlan(size=end - start, rows=rows, errors=errors, failed=failed,
                     duplicates=duplicates, originals=originals)


async def write_chunk(services: Services, batch: db.ClaimedBatch, processed: int,
                      plan: ChunkPlan, total: int) -> tuple[str, int]:
    """Insert a chunk and advance the batch in one transaction; raise LostClaim if the
    batch moved under us."""
    async with services.pool.acquire() as conn, conn.transaction():
        inserted = await db.insert_chunk(conn, batch.id, processed, LEASE_S, plan.rows)
        if inserted is None:
            raise LostClaim(batch.id)
        errors = plan.errors
        conflicts = [n for n in plan.rows.source_row if n not in inserted]
        if conflicts:
            errors = sorted(
                errors + [error_entry(services, n, plan.originals[n], [DUPLICATE_PHONE])
                          for n in conflicts],
                key=lambda e: int(e["rowNumber"]))
        return await db.record_chunk(
            conn, batch.id, processed=plan.size, imported=len(inserted), failed=plan.failed,
            duplicates=plan.duplicates + len(conflicts), errors=errors, total=total)


async def _parse(services: Services, batch: db.ClaimedBatch) -> tuple[Table, ColumnMapping]:
    """The stored file as a table, and the mapping; FileRejected/ValueError when unusable."""
    if batch.file_data is None:
        raise ValueError("the uploaded file is no longer stored")
    limits = services.cfg.import_
    table = await asyncio.to_thread(
        read_table, batch.file_kind,  # type: ignore[arg-type]
        batch.file_data, max_rows=max(limits.max_rows, batch.total_records),
        max_uncompressed_bytes=limits.max_uncompressed_bytes)
    mapping = column_mapping(batch.mapping)
    if mapping.phone is None or mapping.phone >= len(table.headers):
        raise ValueError("no phone column is mapped")
    return table, mapping


async def process_batch(services: Services, batch: db.ClaimedBatch, stopping: asyncio.Event,
                        progress: Progress | None = None) -> str:
    """Import a claimed batch from `processed` on; returns its final status, or 'released'
    (stop requested, claim handed back) or 'lost' (another importer took over)."""
    with structlog.contextvars.bound_contextvars(salon_id=batch.salon_id, batch_id=batch.id):
        try:
            table, mapping = await _parse(services, batch)
        except (FileRejected, ValueError) as exc:
            reason = exc.message if isinstance(exc, FileRejected) else str(exc)
            await asyncio.shield(db.fail_batch(services.pool, batch.id, reason))
            log.warning("import_failed", reason=reason)
            return "failed"
        return await _import_rows(services, batch, table, mapping, stopping, progress)


async def _import_rows(services: Services, batch: db.ClaimedBatch, table: Table,
                       mapping: ColumnMapping, stopping: asyncio.Event,
                       progress: Progress | None) -> str:
    total = len(table.rows)
    size = services.cfg.import_.chunk_rows
    processed = batch.processed
    starts = list(range(processed, total, size))

    def start(index: int) -> asyncio.Task[ChunkPlan]:
        begin = starts[index]
        return asyncio.create_task(asyncio.to_thread(
            prepare_chunk, services, table, mapping, batch.region, begin,
            min(begin + size, total)), name=f"import-prepare-{batch.id}-{begin}")

    status = "processing"
    upcoming = start(0) if starts else None
    try:
        if not starts:  # every row was processed before a crash, only the end was lost
            empty = ChunkPlan(0, db.ChunkRows([], [], [], [], [], []), [], 0, 0, {})
            status, processed = await asyncio.shield(
                write_chunk(services, batch, processed, empty, total))
        for index in range(len(starts)):
            assert upcoming is not None
            plan = await upcoming
            upcoming = start(index + 1) if index + 1 < len(starts) else None
            # Shielded: a cancelled actor still commits or rolls back the chunk cleanly.
            status, processed = await asyncio.shield(
                write_chunk(services, batch, processed, plan, total))
            if progress is not None:
                progress(processed, total)
            if stopping.is_set() and status == "processing":
                await asyncio.shield(db.release_batch(services.pool, batch.id))
                log.info("import_released", processed=processed, total=total)
                return "released"
    except LostClaim:
        log.warning("import_claim_lost", processed=processed)
        return "lost"
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        raise  # the database is in trouble: let the supervisor restart; the lease expires
    except Exception as exc:
        reason = f"internal error after {processed} rows: {exc.__class__.__name__}"
        await asyncio.shield(db.fail_batch(services.pool, batch.id, reason))
        log.error("import_crashed", error=repr(exc), exc_info=exc)
        return "failed"
    finally:
        if upcoming is not None:
            upcoming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await upcoming
    log.info("import_finished", status=status, total=total)
    return status


async def _wait_for_work(queue: asyncio.Queue[str], stopping: asyncio.Event,
                         poll_s: float) -> None:
    """Until a nudge, stop, or the poll interval; then drop the other queued nudges."""
    getter = asyncio.create_task(queue.get(), name="importer-queue")
    stopper = asyncio.create_task(stopping.wait(), name="importer-stop")
    try:
        await asyncio.wait({getter, stopper}, timeout=poll_s,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (getter, stopper):
            task.cancel()
        await asyncio.gather(getter, stopper, return_exceptions=True)
    while not queue.empty():
        queue.get_nowait()


async def run(services: Services, stopping: asyncio.Event) -> None:
    """Actor entry: claim and import batches until stop."""
    poll_s = services.cfg.supervisor.poll_interval_s
    while not stopping.is_set():
        while not stopping.is_set():
            batch = await db.claim_batch(services.pool, LEASE_S)
            if batch is None:
                break
            await process_batch(services, batch, stopping)
        await _wait_for_work(services.queues.imports, stopping, poll_s)


async def expire_previews(services: Services) -> None:
    """Scheduler job: drop previews nobody confirmed, with their stored files."""
    count = await db.expire_previews(services.pool, PREVIEW_TTL_S)
    if count:
        log.info("import_previews_expired", count=count)


async def import_now(services: Services, batch_id: str, stopping: asyncio.Event,
                     progress: Progress | None = None) -> str:
    """Process a batch this caller confirmed with its own lease (the CLI), in this process."""
    batch = await db.claimed_batch(services.pool, batch_id)
    if batch is None:
        return "missing"
    return await process_batch(services, batch, stopping, progress)
