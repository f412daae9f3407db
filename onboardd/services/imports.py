"""Import orchestration between the callers (HTTP, CLI) and the database.

Upload parses the file in a bounded child process (onboardd.importing.sandbox), which also
validates every row with the mapping in force for the quality summary (its numbers are then
looked up among the salon's customers in one query), and stores the file in the batch; other
columns preview the stored file again the same way. The importer actor parses the stored file
again and validates every row, chunk by chunk, which is also what makes a resume exact.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import math
from typing import Any, Final

import msgspec
import structlog

from onboardd.db import import_previews as previews
from onboardd.db import imports as db
from onboardd.importing.consent import as_default_consent
from onboardd.importing.errors import FileRejected
from onboardd.importing.file_names import file_name_problem
from onboardd.importing.mapping import (
    ColumnMapping,
    MappingError,
    Requested,
    describe,
    guess,
    mapping_from_request,
    request_fields,
    require_phone,
)
from onboardd.importing.preview import (
    ConsentSummary,
    Preview,
    PreviewRow,
    capped,
    preview_row,
    shape_original,
)
from onboardd.importing.quality import Quality, summarise
from onboardd.importing.rows import DUPLICATE_PHONE, mark_in_file_duplicates, validate_row
from onboardd.importing.sandbox import Parsed, ParseRequest, parse_in_child
from onboardd.importing.shapes import Shape, detect_shape
from onboardd.logging import get_logger
from onboardd.runtime import BatchConfirmed, Services, nudge
from onboardd.services.errors import Kind, ServiceError
from onboardd.services.import_access import log_preview

log = get_logger("import")

PREVIEW_ROWS: Final = 10
STATUS_ERRORS: Final = 100
ROLLING_WINDOW: Final = dt.timedelta(hours=1)
# Previews never confirmed are dropped (with their stored file) after this long (the
# import_preview_expiry job; an erase waiting for a preview says when).
PREVIEW_TTL_S: Final = 24 * 3600.0
# The AES-GCM purpose of the original cells of a rejected row kept for the error report.
ROW_PURPOSE: Final = "import_row"
_FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")
# File problems and the kind of error each is (anything else is invalid input).
_REJECTION_KIND: Final[dict[str, Kind]] = {
    "unsupported_type": "unsupported",
    "content_mismatch": "unsupported",
    "too_large_uncompressed": "too_large",
}


class ImportProblem(ServiceError):
    """A request the import cannot honour; rendered as an API error or a CLI message."""

    def __init__(self, kind: Kind, code: str, message: str,
                 details: dict[str, Any] | None = None,
                 retry_after_s: int | None = None) -> None:
        super().__init__(kind, message, code=code, details=details,
                         retry_after_s=retry_after_s)
        self.code: str = code


def rejected(exc: FileRejected) -> ImportProblem:
    """A file rejection as a problem of the fitting kind."""
    return ImportProblem(_REJECTION_KIND.get(exc.code, "invalid"), exc.code, exc.message,
                         dict(exc.details))


def mapping_problem(exc: MappingError, headers: list[str]) -> ImportProblem:
    """A mapping error naming the field and the headers found."""
    return ImportProblem("invalid", "mapping_invalid", exc.message,
                         {"field": f"mapping.{exc.field}", "columns": headers})


def stored_mapping(headers: list[str], mapping: ColumnMapping) -> db.StoredMapping:
    """The mapping as the batch keeps it."""
    return db.StoredMapping(headers=headers, **msgspec.structs.asdict(mapping))


def column_mapping(stored: db.StoredMapping) -> ColumnMapping:
    """The ColumnMapping of a stored mapping."""
    return ColumnMapping(**{field: getattr(stored, field)
                            for field in ColumnMapping.__struct_fields__})


def choose_mapping(headers: list[str], requested: Requested | None
                   ) -> tuple[ColumnMapping, Shape | None]:
    """The client's mapping over the guessed one, and the export shape recognised; a phone
    column is required."""
    try:
        mapping, shape = guess(headers)
        if requested:
            mapping = mapping_from_request(headers, requested, mapping)
        require_phone(mapping, headers)
    except MappingError as exc:
        raise mapping_problem(exc, headers) from None
    return mapping, shape


def _rate_limited(events: db.RecentEvents, limit: int, what: str) -> ImportProblem | None:
    """Rate limited, with the wait, once `limit` events (newest first) fall in the rolling
    hour."""
    recent = events.times
    if len(recent) < limit:
        return None
    frees_at = recent[limit - 1] + ROLLING_WINDOW
    wait_s = max(1, math.ceil((frees_at - events.now).total_seconds()))
    return ImportProblem(
        "rate_limited", "rate_limited",
        f"this salon has {what} {len(recent)} times in the last hour (limit {limit}); "
        f"try again in {wait_s} seconds",
        {"limit": limit, "retryAfterSeconds": wait_s}, retry_after_s=wait_s)


async def claim_upload(services: Services, salon_id: str) -> None:
    """Count an upload attempt against [import] uploads_per_hour (in the database, so every
    instance sees it); 429 once the salon has used the rolling hour's uploads, 404 for a salon
    that does not exist."""
    limit = services.cfg.import_.uploads_per_hour
    async with services.pool.acquire() as conn, conn.transaction():
        await db.lock_salon_imports(conn, salon_id)
        recent = await db.recent_uploads(conn, salon_id)
        if not recent.salon_exists:
            raise ImportProblem("not_found", "not_found", f"salon {salon_id} does not exist")
        problem = _rate_limited(recent, limit, "uploaded a customer file")
        if problem is not None:
            problem.details["limitKey"] = "[import] uploads_per_hour"
            raise problem
        await db.record_upload(conn, salon_id)


async def create_batch(services: Services, *, salon_id: str, user: str, file_name: str,
                       data: bytes, requested: Requested | None,
                       request_id: str | None = None) -> Preview:
    """Parse and map an uploaded file, store it awaiting confirmation, answer the preview
    (its numbers are PII: the answer is written to pii_access_log, see log_preview)."""
    if (problem := file_name_problem(file_name)) is not None:
        raise ImportProblem("invalid", "bad_file_name", problem, {"field": "file"})
    limits = services.cfg.import_
    region = await db.salon_region(services.pool, salon_id)
    if region is None:
        raise ImportProblem("not_found", "not_found", f"salon {salon_id} does not exist")
    if not data:
        raise ImportProblem("invalid", "empty_file", "file: the uploaded file is empty",
                            {"field": "file"})
    default_consent = limits.default_consent
    parsed = await _parse(ParseRequest(
        file_name=file_name, data=data, max_rows=limits.max_rows,
        max_columns=limits.max_columns, max_uncompressed_bytes=limits.max_uncompressed_bytes,
        head_rows=PREVIEW_ROWS, region=region, default_consent=default_consent,
        requested=requested or None))
    mapping, shape = choose_mapping(parsed.headers, requested)
    rows, quality, shown = await _assess(services, salon_id, parsed, mapping, region,
                                         default_consent)
    batch = await db.insert_batch(
        services.pool, salon_id=salon_id, imported_by=user, file_name=file_name,
        total_records=parsed.total_rows, file_kind=parsed.kind, file_data=data,
        mapping=stored_mapping(parsed.headers, mapping), region=region,
        default_consent=default_consent)
    with structlog.contextvars.bound_contextvars(salon_id=salon_id, batch_id=batch.id):
        log.info("import_uploaded", rows=parsed.total_rows, kind=parsed.kind, bytes=len(data),
                 detected_source=shape.slug if shape else None)
    await log_preview(services, salon_id, batch.id, rows[0], shown, actor=user,
                      request_id=request_id)
    return _answer(batch.id, file_name, batch.created_at, parsed, mapping, shape, rows, quality,
                   default_consent)


async def preview_again(services: Services, *, salon_id: str, batch_id: str,
                        requested: Requested | None, actor: str | None = None,
                        request_id: str | None = None) -> Preview:
    """The preview of a stored upload, under another mapping (the client's choices over the
    guessed one, as at upload; None keeps the stored mapping), which the batch then keeps for
    its confirm. Written to pii_access_log as the upload's preview is (log_preview)."""
    found = await previews.stored_upload(services.pool, batch_id, salon_id)
    if found is None:
        raise ImportProblem("not_found", "not_found", f"import batch {batch_id} not found")
    if found.status != "preview" or found.file_data is None:
        raise _not_previewable(found.status, batch_id)
    headers = found.mapping.headers
    if requested:
        mapping, shape = choose_mapping(headers, requested)
    else:
        mapping, shape = column_mapping(found.mapping), detect_shape(headers)
    limits = services.cfg.import_
    parsed = await _parse(ParseRequest(
        # The stored name may have lost its extension to the 255-character cut.
        file_name=f"upload.{found.file_kind}", data=found.file_data,
        max_rows=max(limits.max_rows, found.total_records), max_columns=limits.max_columns,
        max_uncompressed_bytes=limits.max_uncompressed_bytes, head_rows=PREVIEW_ROWS,
        region=found.region, default_consent=found.default_consent, mapping=mapping))
    rows, quality, shown = await _assess(services, salon_id, parsed, mapping, found.region,
                                         found.default_consent)
    if not await previews.update_preview_mapping(services.pool, batch_id, salon_id,
                                                 stored_mapping(parsed.headers, mapping)):
        raise _not_previewable("processing", batch_id)
    with structlog.contextvars.bound_contextvars(salon_id=salon_id, batch_id=batch_id):
        log.info("import_previewed_again", mapping_changed=bool(requested))
    await log_preview(services, salon_id, batch_id, rows[0], shown, actor=actor,
                      request_id=request_id)
    return _answer(batch_id, found.file_name or "", found.created_at, parsed, mapping, shape,
                   rows, quality, found.default_consent)


def _not_previewable(status: str, batch_id: str) -> ImportProblem:  # expired, or confirmed
    if status == "failed":
        return ImportProblem(
            "not_found", "preview_expired",
            f"import batch {batch_id} is no longer available: a preview not confirmed within "
            "24 hours is dropped with its file. Upload the file again.")
    return ImportProblem("conflict", "already_confirmed",
                         f"import batch {batch_id} has already been confirmed; its columns can "
                         "no longer change")


async def _parse(request: ParseRequest) -> Parsed:
    """The sandboxed parse (and whole-file validation) of an upload."""
    try:
        return await parse_in_child(request)
    except FileRejected as exc:
        raise rejected(exc) from None


def _answer(batch_id: str, file_name: str, created_at: dt.datetime, parsed: Parsed,
            mapping: ColumnMapping, shape: Shape | None, rows: tuple[list[PreviewRow], bool],
            quality: Quality | None, default_consent: str) -> Preview:
    """The preview answer (capped in size)."""
    used, unmapped = describe(mapping, parsed.headers)
    consent_columns = [parsed.headers[source.column] for source in mapping.consent]
    return capped(Preview(
        batch_id=batch_id, status="preview", file_name=file_name, file_kind=parsed.kind,
        detected_source=shape.slug if shape else None,
        detected_source_label=shape.label if shape else None,
        total_rows=parsed.total_rows, columns=parsed.headers, mapping=used,
        unmapped_columns=unmapped,
        consent=ConsentSummary(columns=consent_columns, default_consent=default_consent),
        preview=rows[0], created_at=created_at, preview_truncated=rows[1], quality=quality,
        mapping_fields=request_fields(mapping, parsed.headers)))


async def _existing_phones(services: Services, salon_id: str, phones: set[str]
                           ) -> dict[str, str]:
    """Which of these numbers (E.164) the salon already has, each with its customer's id: one
    query over their keyed hashes, computed in a worker thread (a whole file's worth)."""
    if not phones:
        return {}
    hash_of = services.cipher.phone_hash
    hashes = await asyncio.to_thread(lambda: {hash_of(phone): phone for phone in phones})
    found = await db.existing_hashes(services.pool, salon_id, list(hashes))
    return {hashes[digest]: customer_id for digest, customer_id in found.items()}


async def _assess(services: Services, salon_id: str, parsed: Parsed, mapping: ColumnMapping,
                  region: str, default_consent: str
                  ) -> tuple[tuple[list[PreviewRow], bool], Quality | None, list[str]]:
    """The first rows as they will be imported (True: an original cell was cut for the
    answer) and the whole file's quality, both against the salon's customers, and the ids of
    the customers whose numbers those rows show."""
    consent = as_default_consent(default_consent)
    results = mark_in_file_duplicates([
        validate_row(cells, number, parsed.headers, mapping, region, consent)
        for cells, number in zip(parsed.rows[:PREVIEW_ROWS], parsed.row_numbers[:PREVIEW_ROWS],
                                 strict=True)])
    phones = {r.phone for r in results if r.phone is not None}  # shown, valid or not
    if parsed.quality is not None:
        phones.update(row.phone for row in parsed.quality.kept)
    existing = await _existing_phones(services, salon_id, phones)
    rows: list[PreviewRow] = []
    shown: dict[str, None] = {}  # ordered, once each
    any_cut = False
    for r in results:
        customer_id = None if r.phone is None else existing.get(r.phone)
        if customer_id is not None:
            shown[customer_id] = None
        errors = [DUPLICATE_PHONE] if r.valid and customer_id is not None else r.errors
        original, cut = shape_original(r.original)
        any_cut = any_cut or cut
        rows.append(preview_row(r, errors, original, parsed.headers))
    file = parsed.quality
    return ((rows, any_cut), None if file is None else summarise(file, existing, default_consent),
            list(shown))


async def confirm_batch(services: Services, *, salon_id: str, batch_id: str,
                        requested: Requested | None, rate_limited: bool = True,
                        lease_s: float = 0.0) -> tuple[db.BatchStatus, bool]:
    """Hand a previewed batch to the importer; returns its state and whether this call
    confirmed it (False: it was confirmed before, the current state is returned)."""
    with structlog.contextvars.bound_contextvars(salon_id=salon_id, batch_id=batch_id):
        limit = services.cfg.import_.imports_per_hour
        async with services.pool.acquire() as conn, conn.transaction():
            await db.lock_salon_imports(conn, salon_id)
            found = await db.batch_for_confirm(conn, batch_id, salon_id)
            if found is None:
                raise ImportProblem("not_found", "not_found",
                                    f"import batch {batch_id} not found")
            stored = found.mapping
            confirmed = False
            if found.status == "preview":
                if requested:
                    stored = stored_mapping(stored.headers,
                                            choose_mapping(stored.headers, requested)[0])
                if rate_limited:
                    recent = await db.recent_confirms(conn, salon_id)
                    problem = _rate_limited(recent, limit, "confirmed an import")
                    if problem is not None:
                        raise problem
                confirmed = await db.confirm(conn, batch_id, salon_id, stored, lease_s)
            state = await db.batch_status(conn, batch_id, salon_id)
        assert state is not None
        if confirmed:
            log.info("import_confirmed")
            if lease_s <= 0:
                nudge(services.queues.imports, BatchConfirmed(batch_id))
        return state, confirmed


async def batch_status(services: Services, salon_id: str, batch_id: str) -> db.BatchStatus:
    """The batch's counters and first errors, or 404."""
    state = await db.batch_status(services.pool, batch_id, salon_id)
    if state is None:
        raise ImportProblem("not_found", "not_found", f"import batch {batch_id} not found")
    return state


def neutralise(cell: str) -> str:
    """Keep spreadsheet apps from running a cell as a formula (CSV injection)."""
    return "'" + cell if cell.startswith(_FORMULA_PREFIXES) else cell


def seal_original(services: Services, original: dict[str, str]) -> str:
    """A row's original cells for the error report; they hold PII, so they are encrypted."""
    return services.cipher.encrypt(msgspec.json.encode(original).decode(), ROW_PURPOSE)


async def error_report(services: Services, *, salon_id: str, batch_id: str, actor: str,
                       request_id: str) -> tuple[str, int]:
    """errors.csv: row number, original cells, errors; returns the text and the row count."""
    found = await db.batch_errors(services.pool, batch_id, salon_id)
    if found is None:
        raise ImportProblem("not_found", "not_found", f"import batch {batch_id} not found")
    stored, entries = found.mapping, found.errors
    if found.status == "preview":
        raise ImportProblem("conflict", "not_confirmed",
                            "the batch has not been confirmed yet: confirm it, then download "
                            "the error report once rows have been processed")
    decrypt = services.cipher.decrypt
    originals = [msgspec.json.decode(decrypt(e.original_enc, ROW_PURPOSE), type=dict[str, str])
                 for e in entries]
    columns = list(stored.headers)
    for original in originals:
        columns.extend(key for key in original if key not in columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutralise(c) for c in ["Row", *columns, "Errors"]])
    for entry, original in zip(entries, originals, strict=True):
        cells = [str(entry.row_number), *(original.get(column, "") for column in columns),
                 "; ".join(entry.errors)]
        writer.writerow([neutralise(c) for c in cells])
    await db.log_pii_access(services.pool, actor=actor, salon_id=salon_id,
                            action="import_error_report", record_count=len(entries),
                            details={"batchId": batch_id}, request_id=request_id)
    return out.getvalue(), len(entries)
