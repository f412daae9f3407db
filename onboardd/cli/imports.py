"""`onboardd import FILE --salon ID [--yes]`: the upload/confirm/import pipeline from a shell.

The same code as the HTTP API runs against the configured database: the file is stored as a
batch, previewed, confirmed with a lease held by this process, and imported here with a
progress bar on stderr. If the command is interrupted the batch is handed back and a running
daemon (`onboardd serve`) resumes it.
"""

from __future__ import annotations

import asyncio
import getpass
import signal
import sys
from pathlib import Path
from typing import TextIO

from onboardd.actors import importer
from onboardd.cli.progress import ProgressBar
from onboardd.config import Config
from onboardd.importing.preview import Preview
from onboardd.importing.quality_words import consent_sentence, quality_lead, quality_lines
from onboardd.runtime import open_services
from onboardd.services.imports import ImportProblem, confirm_batch, create_batch
from onboardd.services.imports import batch_status as read_status

# How several columns of one field combine, as the preview lists them.
_JOINERS = {"phone": " then ", "consent": " and "}
_UNKNOWN_CONSENT = {"assume": "may be invited", "require": "are imported opted out"}


def _print_preview(preview: Preview, out: TextIO) -> None:
    mapping = ", ".join(
        f"{field} <- {cols if isinstance(cols, str) else _JOINERS.get(field, ' + ').join(cols)}"
        for field, cols in preview.mapping.items())
    source = f", {preview.detected_source_label}" if preview.detected_source_label else ""
    print(f"{preview.file_name}: {preview.total_rows} rows ({preview.file_kind}{source})",
          file=out)
    print(f"columns: {mapping}", file=out)
    if preview.unmapped_columns:
        print(f"not imported: {', '.join(preview.unmapped_columns)}", file=out)
    if preview.quality is not None:  # the whole file, in the admin UI's words
        print(quality_lead(preview.quality), file=out)
        for line in quality_lines(preview.quality):
            print(f"  {line}", file=out)
        print(consent_sentence(preview.quality, preview.consent.columns), file=out)
    else:
        policy = preview.consent.default_consent
        print(f"consent: customers with no recorded consent "
              f"{_UNKNOWN_CONSENT.get(policy, policy)} ([import] default_consent = {policy})",
              file=out)
    for row in preview.preview:
        verdict = "ok" if row.valid else "; ".join(row.errors)
        if row.valid and row.status == "opted_out":
            verdict = f"ok, opted out: {row.opt_out_reason}"
        print(f"  row {row.row_number}: {row.name or '-'} {row.phone or '-'} "
              f"{row.email or ''} [{verdict}]", file=out)


def _read_limited(path: Path, limit: int) -> bytes | None:
    """The file's bytes, or None when it is over the limit (without reading it all)."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    return None if len(data) > limit else data


def _ask(question: str) -> bool:
    print(question, end=" ", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


async def run_import(cfg: Config, path: Path, salon_id: str, *, assume_yes: bool) -> int:
    """Run the import; exit code 0 completed, 1 failed/refused, 2 bad input, 130 stopped."""
    err = sys.stderr
    limit = cfg.import_.max_file_bytes
    try:
        data = await asyncio.to_thread(_read_limited, path, limit)
    except OSError as exc:
        print(f"onboardd: cannot read {path}: {exc.strerror}", file=err)
        return 2
    if data is None:
        print(f"onboardd: {path}: larger than the [import] max_file_bytes limit ({limit} bytes); "
              "split the file", file=err)
        return 2
    if not assume_yes and not sys.stdin.isatty():
        print("onboardd: no terminal to confirm on; pass --yes to import without asking",
              file=err)
        return 2
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    async with open_services(cfg) as services:
        try:
            preview = await create_batch(services, salon_id=salon_id,
                                         user=f"cli:{getpass.getuser()}", file_name=path.name,
                                         data=data, requested=None)
            _print_preview(preview, err)
            if not assume_yes and not await asyncio.to_thread(
                    _ask, f"Import {preview.total_rows} rows into salon {salon_id}? [y/N]"):
                print(f"not imported; batch {preview.batch_id} stays in preview", file=err)
                return 1
            # An operator's shell is not rate limited; the lease keeps a daemon's importer off
            # the batch while this process works on it.
            await confirm_batch(services, salon_id=salon_id, batch_id=preview.batch_id,
                                requested=None, rate_limited=False, lease_s=importer.LEASE_S)
        except ImportProblem as exc:
            print(f"onboardd: {exc.message}", file=err)
            return 2
        bar = ProgressBar(err, "imported {done}/{total} rows")
        outcome = await importer.import_now(services, preview.batch_id, stopping, bar)
        state = await read_status(services, salon_id, preview.batch_id)
    summary = (f"batch {state.id}: {state.status}; imported {state.successful_imports}, "
               f"failed {state.failed_imports}, duplicates {state.duplicate_skipped} "
               f"of {state.total_records}")
    if state.imported_opted_out or state.existing_opted_out:
        summary += (f"; {state.imported_opted_out} imported opted out (said no, blocked or no "
                    f"consent), {state.existing_opted_out} existing customers opted out")
    print(summary)
    if outcome == "released":
        print("interrupted: the batch was handed back; `onboardd serve` resumes it", file=err)
        return 130
    if state.status == "failed":
        print(f"failed: {state.failure_reason}", file=err)
        return 1
    if state.error_count:
        print(f"{state.error_count} rows not imported; first ones:", file=err)
        for entry in state.first_errors[:10]:
            print(f"  row {entry.get('rowNumber')}: {'; '.join(entry.get('errors', []))}",
                  file=err)
    return 0
