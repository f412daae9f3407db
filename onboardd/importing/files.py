"""Uploaded customer files: type detection and CSV/Excel parsing into a table of text cells."""

from __future__ import annotations

import codecs
import csv
import io
import os
import struct
from collections.abc import Iterable, Sequence
from typing import Final, Literal, NoReturn

import msgspec
from python_calamine import CalamineError, CalamineWorkbook, PasswordError, SheetVisibleEnum

from onboardd.domain.phones import cell_to_text
from onboardd.importing.errors import FileRejected
from onboardd.importing.grid import Box, GridLimits, refuse_cell
from onboardd.importing.xls_scan import check_xls
from onboardd.importing.xlsx_scan import XlsxGuard, check_zip, open_zip

__all__ = ["DEFAULT_MAX_COLUMNS", "FileRejected", "Kind", "Table", "detect_kind", "read_table"]

Kind = Literal["csv", "xlsx", "xls"]

_EXTENSIONS: Final[dict[str, Kind]] = {".csv": "csv", ".xlsx": "xlsx", ".xls": "xls"}
_ZIP_MAGIC: Final = b"PK\x03\x04"
_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_TEXT_PROBE_BYTES: Final = 8192
_DELIMITERS: Final = (",", ";", "\t", "|")
_SNIFF_CHARS: Final = 64 * 1024
_SNIFF_RECORDS: Final = 20
# The [import] max_columns default, for callers without a configuration.
DEFAULT_MAX_COLUMNS: Final = 200
# A header cell longer than this is cut: it is a column's label, shown in every preview.
MAX_HEADER_CHARS: Final = 120


class Table(msgspec.Struct, frozen=True):
    """Header and data rows of an uploaded file, every cell as text."""

    headers: list[str]
    rows: list[list[str]]
    row_numbers: list[int]
    encoding: str | None
    delimiter: str | None


def detect_kind(filename: str, head: bytes) -> Kind:
    """Return the file kind when the extension is allowed and the content agrees."""
    ext = os.path.splitext(filename)[1].lower()
    kind = _EXTENSIONS.get(ext)
    if kind is None:
        raise FileRejected(
            "unsupported_type",
            f"Files of type '{ext or 'without extension'}' are not supported. "
            "Upload a .csv, .xlsx or .xls file.",
            {"filename": filename, "extension": ext},
        )
    actual = _sniff_content(head)
    if actual != kind:
        raise FileRejected(
            "content_mismatch",
            f"The file '{filename}' is named {ext} but its content is {_DESCRIPTIONS[actual]}. "
            f"Open it in Excel and save it again as {ext}, or upload it with its real extension.",
            {"filename": filename, "extension": ext, "content": actual},
        )
    return kind


_DESCRIPTIONS: Final[dict[str, str]] = {
    "xlsx": "an Excel .xlsx workbook (or another ZIP archive)",
    "xls": "an old Excel .xls workbook (or another Office/encrypted document)",
    "csv": "plain text, not an Excel workbook",
    "binary": "binary data, not CSV text",
}


def _sniff_content(head: bytes) -> str:
    """Classify the first bytes as xlsx, xls, csv text or other binary."""
    if head.startswith(_ZIP_MAGIC):
        return "xlsx"
    if head.startswith(_OLE_MAGIC):
        return "xls"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "csv"
    if b"\x00" in head[:_TEXT_PROBE_BYTES]:
        return "binary"
    return "csv"


def read_table(
    kind: Kind,
    data: bytes,
    *,
    max_rows: int,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    max_uncompressed_bytes: int = 100 * 1024 * 1024,
) -> Table:
    """Parse an uploaded file into a Table, or raise FileRejected."""
    limits = GridLimits(max_rows=max_rows, max_columns=max_columns)
    if kind == "csv":
        return _read_csv(data, limits)
    if kind == "xlsx":
        with open_zip(data) as archive:
            check_zip(archive, max_uncompressed_bytes)
            return _read_workbook(data, limits, XlsxGuard(archive, limits))
    try:
        check_xls(data, limits)
    except (IndexError, ValueError, struct.error, OverflowError) as exc:
        _reject("unreadable", "The workbook is damaged or not a real Excel file and cannot be "
                "opened. Open it in Excel, save it again as .xlsx and upload the new file.",
                {"reason": f"{type(exc).__name__}: {exc}"[:300]})
    return _read_workbook(data, limits, None)


# --- CSV -----------------------------------------------------------------------------


def _read_csv(data: bytes, limits: GridLimits) -> Table:
    """Decode, pick the delimiter and read the records of a CSV file."""
    text, encoding = _decode(data)
    delimiter = _choose_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
    try:
        builder = _build(_numbered_csv_records(reader), limits, "the file")
    except csv.Error as exc:
        _reject(
            "unreadable",
            f"The CSV file could not be read near line {reader.line_num} ({exc}). "
            'Check for a quote (") that is never closed, then save the file again as CSV.',
            {"line": reader.line_num},
        )
    return Table(builder.headers, builder.rows, builder.numbers, encoding, delimiter)


def _numbered_csv_records(records: Iterable[list[str]]) -> Iterable[tuple[int, list[str]]]:
    """Number records as Excel shows a CSV: one row per record, blank lines included. (A NUL
    rejects the file before this; dropping it here too keeps every cell fit for PostgreSQL.)"""
    for number, record in enumerate(records, start=1):
        yield number, [cell.replace("\x00", "").strip() for cell in record]


def _decode(data: bytes) -> tuple[str, str]:
    """Decode by BOM, else UTF-8, else Windows-1252 (what Excel on Windows writes)."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            return _decode_as(data[len(bom) :], codec), codec
    try:
        return _decode_as(data, "utf-8"), "utf-8"
    except FileRejected:
        pass
    try:
        return _decode_as(data, "cp1252"), "cp1252"
    except FileRejected:
        # cp1252 leaves five bytes undefined; latin-1 maps every byte, so it always works.
        return _decode_as(data, "latin-1"), "latin-1"


def _decode_as(data: bytes, codec: str) -> str:
    """Decode strictly; NUL characters mean this is not a text file after all."""
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        _reject(
            "unreadable",
            f"The file is not valid {codec} text ({exc.reason} at byte {exc.start}). "
            "Save it again as 'CSV UTF-8' and upload it again.",
            {"encoding": codec},
        )
    if "\x00" in text:
        _reject(
            "unreadable",
            "The file contains binary data, not CSV text. Save it again as 'CSV UTF-8'.",
            {"encoding": codec},
        )
    return text


def _choose_delimiter(text: str) -> str:
    """Pick the delimiter that splits the header widest and the rows most consistently."""
    sample = text[:_SNIFF_CHARS]
    truncated = len(text) > len(sample)
    best, best_score = ",", (0.0, 0)
    for delimiter in _DELIMITERS:
        counts = _field_counts(sample, delimiter, truncated)
        if not counts or counts[0] < 2:
            continue
        consistency = sum(1 for count in counts if count == counts[0]) / len(counts)
        score = (consistency, counts[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _field_counts(sample: str, delimiter: str, truncated: bool) -> list[int]:
    """Field counts of the first non-blank records of the sample under a delimiter."""
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter, skipinitialspace=True)
    counts: list[int] = []
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                counts.append(len(record))
            if len(counts) > _SNIFF_RECORDS:
                return counts[:-1]
    except csv.Error:
        return []
    # The last record of a cut sample may be cut in half.
    return counts[:-1] if truncated and len(counts) > 1 else counts


# --- Excel ---------------------------------------------------------------------------


def _read_workbook(data: bytes, limits: GridLimits, guard: XlsxGuard | None) -> Table:
    """Read the first visible sheet that has a non-blank row."""
    try:
        with CalamineWorkbook.from_filelike(io.BytesIO(data)) as workbook:
            return _first_sheet_table(workbook, limits, guard)
    except FileRejected:
        raise
    except PasswordError:
        _reject(
            "unreadable",
            "The workbook is password protected. Remove the password in Excel and upload it again.",
        )
    except BaseException as exc:
        if not _is_reader_failure(exc):
            raise
        _reject(
            "unreadable",
            "The workbook is damaged or not a real Excel file and cannot be opened. "
            "Open it in Excel, save it again as .xlsx and upload the new file.",
            {"reason": f"{type(exc).__name__}: {exc}"[:300]},
        )


def _is_reader_failure(exc: BaseException) -> bool:
    """Errors of a corrupt file; pyo3 panics derive from BaseException, so name them."""
    if isinstance(exc, CalamineError | ValueError | OSError | TypeError | IndexError):
        return True
    return type(exc).__name__ == "PanicException"


def _first_sheet_table(workbook: CalamineWorkbook, limits: GridLimits,
                       guard: XlsxGuard | None) -> Table:
    """Build the table from the first visible sheet holding any text. Each sheet's grid is
    checked against the limits before the reader builds it (xlsx: from the file, by the
    guard) and again from the reader's own extent before it is converted."""
    metadata = workbook.sheets_metadata
    if guard is not None and guard.names() != [meta.name for meta in metadata]:
        _reject("unreadable", "The workbook's sheets cannot be told apart (two sheets share a "
                "name, or a sheet has no part). Open it in Excel, save it again as .xlsx and "
                "upload the new file.")
    for index, meta in enumerate(metadata):
        if meta.visible != SheetVisibleEnum.Visible:
            continue
        if guard is not None:
            guard.check_sheet(meta.name)
        sheet = workbook.get_sheet_by_index(index)
        start, end = sheet.start, sheet.end
        if start is None or end is None:
            continue
        box = Box(start[0], start[1], end[0], end[1])
        if not limits.fits(box):
            refuse_cell(meta.name, box, end[0], end[1], limits)
        # iter_rows would also yield every blank row above the data (a million for a sheet
        # that starts far down, seconds of CPU); the grid is bounded by now, so it is
        # converted at once.
        rows = sheet.to_python(skip_empty_area=True, nrows=box.rows)
        numbered = ((start[0] + offset + 1, row) for offset, row in enumerate(rows))
        try:
            builder = _build(((n, _texts(row)) for n, row in numbered), limits,
                             f"the sheet '{meta.name}'")
        except FileRejected as exc:
            if exc.code == "empty_file" and exc.details.get("header") is None:
                continue
            raise
        return Table(builder.headers, builder.rows, builder.numbers, None, None)
    raise _empty_error(None)


def _texts(row: Sequence[object]) -> list[str]:
    """Cells of a sheet row as the text Excel displays."""
    return [cell_to_text(value) for value in row]


# --- shared --------------------------------------------------------------------------


class _Builder:
    """Collects header and data rows, keeping at most max_rows in memory."""

    __slots__ = ("count", "headers", "numbers", "rows")

    def __init__(self) -> None:
        self.headers: list[str] = []
        self.rows: list[list[str]] = []
        self.numbers: list[int] = []
        self.count = 0


def _build(records: Iterable[tuple[int, list[str]]], limits: GridLimits, where: str
           ) -> _Builder:
    """Take the first non-blank record as header and the following ones as data. A row keeps
    its own cells: never padded to the header's width (a short row stays short)."""
    builder = _Builder()
    max_rows, width = limits.max_rows, 0
    for number, cells in records:
        used = _used_width(cells)
        if used == 0:
            continue
        if used > limits.max_columns:
            _too_wide(where, number, used, limits.max_columns, not builder.headers)
        if not builder.headers:
            builder.headers = _unique_headers(cells[:used])
            width = used
            continue
        builder.count += 1
        if builder.count <= max_rows:
            builder.rows.append(cells[:max(used, min(width, len(cells)))])
            builder.numbers.append(number)
    _check_counts(builder, max_rows)
    return builder


def _too_wide(where: str, number: int, width: int, limit: int, header: bool) -> NoReturn:
    """422: a header or row wider than max_columns."""
    what = "header row" if header else "row"
    _reject(
        "too_many_columns",
        f"The {what} of {where} (row {number}) has {width:,} columns; one import reads at "
        f"most {limit:,} columns ([import] max_columns). Keep only the customer columns "
        "(name, phone, email), delete the others, save and upload again.",
        {"row": number, "columns": width, "limit": limit, "limitKey": "[import] max_columns"},
    )


def _check_counts(builder: _Builder, max_rows: int) -> None:
    """Reject files without data rows and files over the row limit."""
    if not builder.headers:
        raise _empty_error(None)
    if builder.count == 0:
        raise _empty_error(builder.headers)
    if builder.count > max_rows:
        _reject(
            "too_many_rows",
            f"The file has {builder.count} customer rows but one import takes at most "
            f"{max_rows}. Split it into files of at most {max_rows} rows and import each one.",
            {"rows": builder.count, "limit": max_rows},
        )


def _used_width(cells: list[str]) -> int:
    """Cells up to and including the last non-empty one."""
    end = len(cells)
    while end > 0 and not cells[end - 1]:
        end -= 1
    return end


def _unique_headers(cells: list[str]) -> list[str]:
    """Name blank header cells 'Column N' and suffix repeats, so every header is a key."""
    used: set[str] = set()
    headers: list[str] = []
    for index, cell in enumerate(cells):
        base = cell[:MAX_HEADER_CHARS] or f"Column {index + 1}"
        name, repeat = base, 1
        while name.casefold() in used:
            repeat += 1
            name = f"{base} ({repeat})"
        used.add(name.casefold())
        headers.append(name)
    return headers


def _empty_error(headers: list[str] | None) -> FileRejected:
    """The empty_file rejection, saying whether a header row was found."""
    if headers is None:
        message = "The file is empty. Add a header row (Name, Phone, Email) and a row per customer."
    else:
        message = "The file has a header row but no customer rows below it. Add a row per customer."
    return FileRejected("empty_file", message, {"header": headers})


def _reject(code: str, message: str, details: dict[str, object] | None = None) -> NoReturn:
    """Raise FileRejected."""
    raise FileRejected(code, message, details)
