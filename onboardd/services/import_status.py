"""An import batch's state as the API answers it (the status endpoint and the confirm)."""

from __future__ import annotations

import datetime as dt

import msgspec

from onboardd.db import imports as db


class RowErrors(msgspec.Struct, frozen=True, rename="camel"):
    """A row the import rejected or skipped: its number in the file and why."""

    row_number: int | None
    errors: list[str]


class ImportStatus(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """An import's state, progress (0-100) and counters, with its first 100 errors.

    imported, failed and duplicates repeat successfulImports, failedImports and
    duplicateSkipped under the shorter names; errorsUrl is the whole error report (CSV)."""

    batch_id: str
    status: str
    progress: int
    processed: int
    total_records: int
    successful_imports: int
    failed_imports: int
    duplicate_skipped: int
    imported: int
    failed: int
    duplicates: int
    imported_opted_out: int
    consent_unknown: int
    existing_opted_out: int
    default_consent: str
    errors: list[RowErrors]
    error_count: int
    errors_url: str
    status_url: str
    file_name: str | None
    failure_reason: str | None
    created_at: dt.datetime
    confirmed_at: dt.datetime | None
    completed_at: dt.datetime | None


def progress_percent(state: db.BatchStatus) -> int:
    """0-100; a finished batch is 100 whatever its size."""
    if state.status == "completed":
        return 100
    if state.total_records <= 0:
        return 0
    return min(100, state.processed * 100 // state.total_records)


def import_status(state: db.BatchStatus, status_url: str) -> ImportStatus:
    """The status endpoint's answer (also the confirm's)."""
    return ImportStatus(
        batch_id=state.id, status=state.status, progress=progress_percent(state),
        processed=state.processed, total_records=state.total_records,
        successful_imports=state.successful_imports, failed_imports=state.failed_imports,
        duplicate_skipped=state.duplicate_skipped, imported=state.successful_imports,
        failed=state.failed_imports, duplicates=state.duplicate_skipped,
        imported_opted_out=state.imported_opted_out, consent_unknown=state.consent_unknown,
        existing_opted_out=state.existing_opted_out, default_consent=state.default_consent,
        errors=[RowErrors(row_number=e.get("rowNumber"), errors=e.get("errors", []))
                for e in state.first_errors],
        error_count=state.error_count,
        errors_url=f"{status_url.rsplit('/', 1)[0]}/errors.csv", status_url=status_url,
        file_name=state.file_name, failure_reason=state.failure_reason,
        created_at=state.created_at, confirmed_at=state.confirmed_at,
        completed_at=state.completed_at)
