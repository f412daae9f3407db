"""Uploaded customer files: type detection and CSV/Excel parsing into a table of text cells."""

from __future__ import annotations

import codecs
import csv
import io
import os
import zipfile
from collections.abc import Iterable, Sequence
from typing import Final, Literal, NoReturn

import msgspec
from python_calamine import CalamineError, CalamineWorkbook, PasswordError, SheetVisibleEnum

from onboardd.phones import cell_to_text

Kind = Literal["csv", "xlsx", "xls"]

_EXTENSIONS: Final[dict[str, Kind]] = {".csv": "csv", ".xlsx": "xlsx", ".xls": "xls"}
_ZIP_MAGIC: Final = b"PK\x03\x04"
_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_TEXT_PROBE_BYTES: Final = 8192
_DELIMITERS: Final = (",", ";", "\t", "|")
_SNIFF_CHARS: Final = 64 * 1024
_SNIFF_RECORDS: Final = 20
# Real xlsx parts compress 5-30x; a ratio far above that is a bomb, not a spreadsheet.
_MAX_COMPRESSION_RATIO: Final = 200
_RATIO_CHECK_FLOOR: Final = 1024 * 1024
_MAX_ZIP_ENTRIES: Final = 10_000


class FileRejected(Exception):
    """An upload that cannot be imported; message names the problem and the fix."""

    def __init__(self, code: str, message: str, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details: dict[str, object] = details or {}


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
    max_uncompressed_bytes: int = 100 * 1024 * 1024,
) -> Table:
    """Parse an uploaded file into a Table, or raise FileRejected."""
    if kind == "csv":
        return _read_csv(data, max_rows)
    if kind == "xlsx":
        _check_zip(data, max_uncompressed_bytes)
    return _read_workbook(data, max_rows)


# --- CSV -----------------------------------------------------------------------------


def _read_csv(data: bytes, max_rows: int) -> Table:
    """Decode, pick the delimiter and read the records of a CSV file."""
    text, encoding = _decode(data)
    delimiter = _choose_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True)
    try:
        builder = _build(_numbered_csv_records(reader), max_rows)
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


def _check_zip(data: bytes, limit: int) -> None:
    """Refuse decompression bombs before calamine inflates the workbook."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        _reject(
            "unreadable",
            "The .xlsx file is damaged and cannot be opened. Open it in Excel, "
            "save it again and upload the new file.",
        )
    total = sum(entry.file_size for entry in entries)
    if len(entries) > _MAX_ZIP_ENTRIES or total > limit or any(map(_bomb_ratio, entries)):
        _reject(
            "too_large_uncompressed",
            f"The workbook expands to {total} bytes when opened (limit {limit}). "
            "Delete unused sheets and formatting, or save the customer list as CSV.",
            {"uncompressed_bytes": total, "limit": limit, "entries": len(entries)},
        )


def _bomb_ratio(entry: zipfile.ZipInfo) -> bool:
    """True when an entry is large and compressed far beyond what XML achieves."""
    if entry.file_size < _RATIO_CHECK_FLOOR:
        return False
    return entry.file_size > _MAX_COMPRESSION_RATIO * max(entry.compress_size, 1)


def _read_workbook(data: bytes, max_rows: int) -> Table:
    """Read the first visible sheet that has a non-blank row."""
    try:
        return _first_sheet_table(CalamineWorkbook.from_filelike(io.BytesIO(data)), max_rows)
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


def _first_sheet_table(workbook: CalamineWorkbook, max_rows: int) -> Table:
    """Build the table from the first visible sheet holding any text."""
    for meta in workbook.sheets_metadata:
        if meta.visible != SheetVisibleEnum.Visible:
            continue
        sheet = workbook.get_sheet_by_name(meta.name)
        start = sheet.start
        if start is None:
            continue
        rows = sheet.to_python(skip_empty_area=True)
        numbered = ((start[0] + index + 1, row) for index, row in enumerate(rows))
        try:
            builder = _build(((n, _texts(row)) for n, row in numbered), max_rows)
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


def _build(records: Iterable[tuple[int, list[str]]], max_rows: int) -> _Builder:
    """Take the first non-blank record as header and the following ones as data."""
    builder = _Builder()
    width = 0
    for number, cells in records:
        if not any(cells):
            continue
        if not builder.headers:
            builder.headers = _unique_headers(cells)
            width = len(builder.headers)
            continue
        builder.count += 1
        if builder.count <= max_rows:
            builder.rows.append(_fit(cells, width))
            builder.numbers.append(number)
    _check_counts(builder, max_rows)
    return builder


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


def _fit(cells: list[str], width: int) -> list[str]:
    """Pad a short row to the header width; drop empty cells past the last header."""
    if len(cells) < width:
        return cells + [""] * (width - len(cells))
    end = len(cells)
    while end > width and not cells[end - 1]:
        end -= 1
    return cells if end == len(cells) else cells[:end]


def _unique_headers(cells: list[str]) -> list[str]:
    """Name blank header cells 'Column N' and suffix repeats, so every header is a key."""
    end = len(cells)
    while end > 0 and not cells[end - 1]:
        end -= 1
    used: set[str] = set()
    headers: list[str] = []
    for index, cell in enumerate(cells[:end]):
        base = cell or f"Column {index + 1}"
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
