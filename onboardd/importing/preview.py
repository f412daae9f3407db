"""The upload's answer, kept small whatever the file: long cells and wide rows are cut in the
preview (never in the import), and the answer says so."""

from __future__ import annotations

import datetime as dt
from typing import Final

import msgspec

from onboardd.importing.quality import Quality
from onboardd.importing.rows import RowResult

# The whole preview answer stays under this many bytes of JSON.
PREVIEW_MAX_BYTES: Final = 512 * 1024
# What the service may use of it; the web layer adds the confirm URL.
_BODY_BUDGET: Final = PREVIEW_MAX_BYTES - 16 * 1024
# A cell longer than this is cut in originalData, with an ellipsis.
PREVIEW_CELL_CHARS: Final = 100
# JSON bytes of one row's originalData; the columns past it are left out.
PREVIEW_ROW_BYTES: Final = 16 * 1024
_ELLIPSIS: Final = "\u2026"


class PreviewRow(msgspec.Struct, frozen=True, rename="camel"):
    """One of the first rows as it will be imported: the number chosen and where it came from
    (phone_column, phone_value), the status it will get (opted_out when its consent columns
    say no, or say nothing while consent is required) and why, and whether the name is the
    contact's organisation."""

    row_number: int
    name: str | None
    phone: str | None
    email: str | None
    valid: bool
    errors: list[str]
    original_data: dict[str, str]
    phone_column: str | None = None
    phone_value: str | None = None
    name_from_organisation: bool = False
    consent: str = "unknown"
    consent_column: str | None = None
    status: str = "pending"
    opt_out_reason: str | None = None


class ConsentSummary(msgspec.Struct, frozen=True, rename="camel"):
    """The columns read for marketing consent, and what a blank one means for this file
    ([import] default_consent: "assume" imports it pending, "require" opted out)."""

    columns: list[str]
    default_consent: str


class Preview(msgspec.Struct, frozen=True, rename="camel"):
    """The upload's answer: what was found and how the first rows will be imported.
    detected_source names a recognised export (e.g. google-contacts), None for any other file.
    preview_truncated: some originalData was cut to keep the answer small. quality counts the
    whole file (onboardd.importing.quality). mapping_fields is the mapping in force in the
    shape a request's `mapping` takes (every field; None when unmapped)."""

    batch_id: str
    status: str
    file_name: str
    file_kind: str
    detected_source: str | None
    detected_source_label: str | None
    total_rows: int
    columns: list[str]
    mapping: dict[str, str | list[str]]
    unmapped_columns: list[str]
    consent: ConsentSummary
    preview: list[PreviewRow]
    created_at: dt.datetime
    preview_truncated: bool = False
    quality: Quality | None = None
    mapping_fields: dict[str, str | list[str] | None] = msgspec.field(default_factory=dict)


def preview_row(result: RowResult, errors: list[str], original: dict[str, str],
                headers: list[str]) -> PreviewRow:
    """A validated row as the preview shows it (errors may add a duplicate found in the
    database)."""

    def header(index: int | None) -> str | None:
        return None if index is None or index >= len(headers) else headers[index]

    return PreviewRow(
        row_number=result.row_number, name=result.name, phone=result.phone,
        email=result.email, valid=not errors, errors=errors, original_data=original,
        phone_column=header(result.phone_column), phone_value=result.phone_value,
        name_from_organisation=result.name_from_organisation, consent=result.consent,
        consent_column=header(result.consent_column), status=result.status,
        opt_out_reason=result.opt_out_reason)


def _json_len(text: str) -> int:
    return len(msgspec.json.encode(text))


def shape_original(original: dict[str, str]) -> tuple[dict[str, str], bool]:
    """The original cells for the preview: each cut to PREVIEW_CELL_CHARS, and only as many
    columns as fit in PREVIEW_ROW_BYTES; True when anything was cut."""
    shaped: dict[str, str] = {}
    cut = False
    used = 2
    for key, value in original.items():
        if len(value) > PREVIEW_CELL_CHARS:
            value, cut = value[:PREVIEW_CELL_CHARS] + _ELLIPSIS, True
        used += _json_len(key) + _json_len(value) + 2
        if used > PREVIEW_ROW_BYTES:
            return shaped, True
        shaped[key] = value
    return shaped, cut


def capped(preview: Preview) -> Preview:
    """The preview itself if its JSON fits the budget, else without originalData (flagged)."""
    if len(msgspec.json.encode(preview)) <= _BODY_BUDGET:
        return preview
    rows = [msgspec.structs.replace(row, original_data={}) for row in preview.preview]
    return msgspec.structs.replace(preview, preview=rows, preview_truncated=True)
