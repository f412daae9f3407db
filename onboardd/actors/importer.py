"""The importer actor: turns confirmed batches into imported customers.

A batch is claimed with FOR UPDATE SKIP LOCKED and a lease (`claimed_until`). Its stored file
is parsed again and the rows after `processed` are validated and inserted in chunks. Each
chunk is one transaction: a guard that locks the batch and proves the claim still holds, a
set-based insert (duplicates are the rows that did not insert), and the counters, progress and
errors, all in one statement. So a crash loses at most the chunk in flight, and the next claim
resumes exactly at `processed`. The stored file (vetted by the sandboxed preview parse) is read
again, and each next chunk prepared (validation, encryption), in a worker thread while the
database writes the current one: the event loop only waits, so an import never stalls the
requests of other salons for longer than the interpreter's thread switch interval.

A database outage (a connection error, or a deadlock or serialization failure) does not end the
import or the actor: the importer waits (onboardd.actors.outage), reads the batch's `processed`
again (a chunk whose answer was lost may have committed; a crash may have lost the last ones)
and resumes there, still guarded by the claim. Claiming is retried the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import asyncpg
import msgspec
import structlog

from onboardd.actors.outage import DatabaseWait
from onboardd.actors.waiting import drain_nudges, first_of, run_to_end, settle
from onboardd.db import imports as db
from onboardd.db.pool import CONNECTION_ERRORS
from onboardd.domain.masking import mask_digits
from onboardd.importing.consent import as_default_consent
from onboardd.importing.files import FileRejected, Table, read_table
from onboardd.importing.mapping import ColumnMapping
from onboardd.importing.rows import (
    DUPLICATE_PHONE,
    RowResult,
    mark_in_file_duplicates,
    validate_row,
)
from onboardd.logging import get_logger
from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from onboardd.services.imports import column_mapping, seal_original

log = get_logger("importer")

# A claim outlives a crashed holder by this long; every chunk renews it.
LEASE_S: Final = 60.0

Progress = Callable[[int, int], None]
T = TypeVar("T")

# The database cannot take the chunk right now (down, restarting, deadlock): the importer waits
# and resumes the batch where the database says it stands. Any other database error is about
# these rows and would recur on every retry: it fails the batch.
_TRANSIENT_DB_ERRORS: Final = (*CONNECTION_ERRORS, asyncpg.exceptions.TransactionRollbackError)


class LostClaim(Exception):
    """Another importer advanced the batch: this one's lease had run out."""


class ChunkPlan(msgspec.Struct):
    """One chunk, validated and encrypted, ready to write."""

    size: int
    rows: db.ChunkRows
    failed: int
    duplicates: int


class _ChunkBuilder:
    """Accumulates the column arrays of one chunk, row by row."""

    def __init__(self, services: Services, headers: list[str]) -> None:
        self.services = services
        self.cipher: PiiCipher = services.cipher
        self.headers = headers
        self.rows = db.ChunkRows(*([] for _ in db.ChunkRows.__struct_fields__))
        self.failed = self.duplicates = 0

    def add(self, result: RowResult, cells: list[str]) -> None:
        rows, cipher = self.rows, self.cipher
        original = seal_original(self.services, result.original)
        if result.errors:
            if result.errors == [DUPLICATE_PHONE]:
                self.duplicates += 1
            else:
                self.failed += 1
            rows.error_rows.append(result.row_number)
            rows.error_original_enc.append(original)
            rows.error_json.append(msgspec.json.encode(result.errors).decode())
            return
        assert result.name is not None
        assert result.phone is not None
        assert result.phone_value is not None
        rows.names.append(result.name)
        # The number as the file wrote it (one of a multi-number cell).
        rows.phone_enc.append(cipher.encrypt(result.phone_value, "phone"))
        rows.e164_enc.append(cipher.encrypt(result.phone, "phone"))
        rows.email_enc.append(cipher.encrypt(result.email, "email") if result.email else None)
        rows.phone_hash.append(cipher.phone_hash(result.phone))
        rows.source_row.append(result.row_number)
        # Kept only if the database already has the phone (the row becomes a duplicate).
        rows.original_enc.append(original)
        rows.status.append(result.status)
        rows.consent.append(result.consent)
        column = result.consent_column
        rows.consent_source.append(None if column is None else self.headers[column][:255])
        rows.opt_out_reason.append(result.opt_out_reason)
        rows.name_from_organisation.append(result.name_from_organisation)


def _prepare(services: Services, table: Table, mapping: ColumnMapping, batch: db.ClaimedBatch,
             start: int, end: int) -> ChunkPlan:
    """Validate rows [start, end) and build the write's arrays (CPU only, no I/O)."""
    headers, region = table.headers, batch.region
    consent = as_default_consent(batch.default_consent)
    marked = mark_in_file_duplicates([
        validate_row(cells, number, headers, mapping, region, consent)
        for cells, number in zip(table.rows[start:end], table.row_numbers[start:end],
                                 strict=True)])
    builder = _ChunkBuilder(services, headers)
    for result, cells in zip(marked, table.rows[start:end], strict=True):
        builder.add(result, cells)
    return ChunkPlan(size=end - start, rows=builder.rows, failed=builder.failed,
                     duplicates=builder.duplicates)


async def prepare_chunk(services: Services, table: Table, mapping: ColumnMapping,
                        batch: db.ClaimedBatch, start: int, end: int) -> ChunkPlan:
    """Validate and encrypt rows [start, end) in a worker thread, off the event loop."""
    return await asyncio.to_thread(_prepare, services, table, mapping, batch, start, end)


async def write_chunk(services: Services, batch: db.ClaimedBatch, processed: int,
                      plan: ChunkPlan, total: int) -> tuple[str, int]:
    """Insert a chunk and advance the batch in one transaction; raise LostClaim if the
    batch moved under us."""
    written = await db.write_chunk(
        services.pool, batch.id, processed=processed, size=plan.size, lease_s=LEASE_S,
        total=total, failed=plan.failed, duplicates=plan.duplicates, rows=plan.rows,
        conflict_errors=[DUPLICATE_PHONE])
    if written is None:
        raise LostClaim(batch.id)
    services.metrics.import_rows_processed(plan.size)
    return written.status, written.processed


async def _parse(services: Services, batch: db.ClaimedBatch) -> tuple[Table, ColumnMapping]:
    """The stored file as a table, and the mapping; FileRejected/ValueError when unusable."""
    if batch.file_data is None:
        raise ValueError("the uploaded file is no longer stored")
    limits = services.cfg.import_
    table = await asyncio.to_thread(
        read_table, batch.file_kind,  # type: ignore[arg-type]
        batch.file_data, max_rows=max(limits.max_rows, batch.total_records),
        max_columns=limits.max_columns, max_uncompressed_bytes=limits.max_uncompressed_bytes)
    mapping = column_mapping(batch.mapping)
    if not mapping.phones or any(s.column >= len(table.headers) for s in mapping.phones):
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
            await run_to_end(db.fail_batch(services.pool, batch.id, reason),
                          f"import-fail-{batch.id}")
            log.warning("import_failed", reason=reason)
            return "failed"
        outage = DatabaseWait("importer")
        while True:
            try:
                if outage.waiting:
                    # Where the batch stands now: a chunk whose answer was lost may have
                    # committed (even the last one), a crash may have lost the last ones.
                    current = await db.batch_status(services.pool, batch.id, batch.salon_id)
                    outage.recovered(processed=None if current is None else current.processed)
                    if current is None or current.status != "processing":
                        status = "missing" if current is None else current.status
                        log.info("import_ended_during_outage", status=status)
                        return status
                    batch = msgspec.structs.replace(batch, processed=current.processed)
                return await _import_rows(services, batch, table, mapping, stopping, progress)
            except _TRANSIENT_DB_ERRORS as exc:
                await outage.pause(exc, stopping)
                if stopping.is_set():
                    log.info("import_interrupted", reason="stopping while the database is "
                             "unreachable", hint=f"the claim runs out within {LEASE_S:g}s; "
                             "the next importer resumes the batch")
                    return "released"


async def _import_rows(services: Services, batch: db.ClaimedBatch, table: Table,
                       mapping: ColumnMapping, stopping: asyncio.Event,
                       progress: Progress | None) -> str:
    total = len(table.rows)
    size = services.cfg.import_.chunk_rows
    processed = batch.processed
    # Every row processed before a crash (only the end was lost): one empty chunk ends it.
    starts = list(range(processed, total, size)) or [processed]

    def prepare(begin: int) -> Awaitable[ChunkPlan]:
        return prepare_chunk(services, table, mapping, batch, begin, min(begin + size, total))

    status = "processing"
    try:
        plan = await prepare(starts[0])
        for index in range(len(starts)):
            # The next chunk is prepared while the database writes this one. The write is a
            # task this loop owns: whatever happens meanwhile (the preparation fails, the actor
            # is cancelled), it is awaited to its commit or rollback before anything else.
            writing = asyncio.create_task(write_chunk(services, batch, processed, plan, total),
                                          name=f"import-write-{batch.id}-{starts[index]}")
            try:
                if index + 1 < len(starts):
                    plan = await prepare(starts[index + 1])
            except BaseException as exc:
                try:
                    status, processed = await settle(writing)
                except Exception as failure:
                    if isinstance(exc, Exception):
                        # The write's own failure (a lost claim, the database) decides.
                        raise failure from exc
                    log.warning("import_write_failed_while_stopping", error=repr(failure))
                raise
            status, processed = await settle(writing)
            if progress is not None:
                progress(processed, total)
            if stopping.is_set() and status == "processing":
                await run_to_end(db.release_batch(services.pool, batch.id),
                              f"import-release-{batch.id}")
                log.info("import_released", processed=processed, total=total)
                return "released"
    except LostClaim:
        log.warning("import_claim_lost", processed=processed)
        return "lost"
    except _TRANSIENT_DB_ERRORS:
        raise  # the database is in trouble: process_batch waits and resumes
    except asyncpg.PostgresError as exc:
        # Deterministic (bad data, a constraint): retrying would fail the same way, forever.
        reason = _rejected_reason(exc, table, processed, min(processed + size, total))
        await run_to_end(db.fail_batch(services.pool, batch.id, reason), f"import-fail-{batch.id}")
        log.error("import_rejected_by_database", processed=processed, error=repr(exc))
        return "failed"
    except Exception as exc:
        reason = f"internal error after {processed} rows: {exc.__class__.__name__}"
        await run_to_end(db.fail_batch(services.pool, batch.id, reason), f"import-fail-{batch.id}")
        log.error("import_crashed", error=repr(exc), exc_info=exc)
        return "failed"
    log.info("import_finished", status=status, total=total)
    return status


def _rejected_reason(exc: asyncpg.PostgresError, table: Table, start: int, end: int) -> str:
    """failureReason for a chunk the database refused, naming its rows as the file numbers
    them (database texts can quote values: phone-like runs are masked)."""
    detail = f"{exc.__class__.__name__}: {mask_digits(str(exc))}"
    if start >= end:
        return f"the database refused to finish the import ({detail})"
    return (f"the database rejected the chunk of rows {table.row_numbers[start]}-"
            f"{table.row_numbers[end - 1]} ({detail}); the {start} rows before it were "
            f"processed. Check those rows for unusual characters or values, fix them and "
            f"upload them again.")


async def run(services: Services, stopping: asyncio.Event) -> None:
    """Actor entry: claim and import batches until stop."""
    poll_s = services.cfg.supervisor.poll_interval_s
    outage = DatabaseWait("importer")
    while not stopping.is_set():
        try:
            while not stopping.is_set():
                batch = await db.claim_batch(services.pool, LEASE_S,
                                               services.membership.instance_id)
                outage.recovered()
                if batch is None:
                    break
                await process_batch(services, batch, stopping)
        except _TRANSIENT_DB_ERRORS as exc:
            await outage.pause(exc, stopping)
            continue
        await first_of(services.queues.imports.get(), stopping.wait(), poll_s=poll_s)
        drain_nudges(services.queues.imports)


async def import_now(services: Services, batch_id: str, stopping: asyncio.Event,
                     progress: Progress | None = None) -> str:
    """Process a batch this caller confirmed with its own lease (the CLI), in this process."""
    batch = await db.claimed_batch(services.pool, batch_id)
    if batch is None:
        return "missing"
    return await process_batch(services, batch, stopping, progress)
