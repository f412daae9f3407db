"""Checks an .xlsx workbook against the grid limits before the spreadsheet reader opens it.

The reader (calamine) resolves each sheet to its XML part through the package relationships,
reserves memory for as many shared strings as the file announces, and builds a dense grid
from a sheet's first to its last non-empty cell. This module follows the same paths and the
same cell positions (a cell without `r` follows the one before it, a row end starts column A
of the next row), streaming the XML with expat, so a sheet is refused as soon as its declared
range or a real cell passes the limits, without building anything. What the reader would
read differently (duplicate part names, other package formats, nested rows or cells, a DTD) is
refused as damaged rather than guessed at.
"""

from __future__ import annotations

import io
import zipfile
from typing import Final, NoReturn
from xml.parsers import expat

from onboardd.importing.grid import (
    Box,
    Extent,
    GridLimits,
    damaged,
    refuse_cell,
    refuse_declared,
    reject,
)

_READ_CHUNK: Final = 64 * 1024
# Real xlsx parts compress 5-30x; a ratio far above that is a bomb, not a spreadsheet.
_MAX_COMPRESSION_RATIO: Final = 200
_RATIO_CHECK_FLOOR: Final = 1024 * 1024
_MAX_ZIP_ENTRIES: Final = 10_000
# Package parts of the other formats the reader would try when the .xlsx reading fails.
_FOREIGN_PARTS: Final = ("mimetype", "content.xml", "xl/_rels/workbook.bin.rels")
# Relationship, workbook and shared-string headers are small; this much is plenty to find them.
_OFFICE_DOCUMENT: Final = "/relationships/officeDocument"
# The shortest shared string, <si/>, takes five bytes of XML.
_MIN_SHARED_STRING_BYTES: Final = 5
_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def open_zip(data: bytes) -> zipfile.ZipFile:
    """The .xlsx package, or the damaged-file refusal."""
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        reject(
            "unreadable",
            "The .xlsx file is damaged and cannot be opened. Open it in Excel, "
            "save it again and upload the new file.",
        )


def check_zip(archive: zipfile.ZipFile, limit: int) -> None:
    """Refuse decompression bombs before calamine inflates the workbook."""
    entries = archive.infolist()
    total = sum(entry.file_size for entry in entries)
    if len(entries) > _MAX_ZIP_ENTRIES or total > limit or any(map(_bomb_ratio, entries)):
        reject(
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


class _Stop(Exception):
    """Ends a scan early: what was wanted has been found."""


def _local(name: str) -> str:
    """Element or attribute name without its namespace prefix."""
    return name.rpartition(":")[2]


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def parse_position(ref: str, *, need_column: bool) -> tuple[int, int | None]:
    """A cell reference (letters then digits) as 0-based (row, column), like the reader."""
    index, column, length = 0, 0, len(ref)
    while index < length and ref[index].isascii() and ref[index].isalpha():
        column = column * 26 + ord(ref[index].upper()) - ord("A") + 1
        index += 1
    digits = ref[index:]
    if not digits or not (digits.isascii() and digits.isdigit()) or int(digits) == 0:
        damaged(f"the cell reference '{ref[:40]}' has no row number")
    if need_column and column == 0:
        damaged(f"the cell reference '{ref[:40]}' has no column")
    return int(digits) - 1, (column - 1 if column else None)


def _cell(ref: str) -> tuple[int, int]:
    row, column = parse_position(ref, need_column=True)
    assert column is not None
    return row, column


def _dimension(ref: str) -> Box:
    parts = ref.split(":")
    if len(parts) not in (1, 2):
        damaged(f"the sheet dimension '{ref[:40]}' is not a range")
    (top, left), (bottom, right) = _cell(parts[0]), _cell(parts[-1])
    return Box(min(top, bottom), min(left, right), max(top, bottom), max(left, right))


def _no_doctype(*_args: object) -> NoReturn:
    damaged("an XML part declares a DTD")


def _parser() -> expat.XMLParserType:
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _no_doctype
    parser.EntityDeclHandler = _no_doctype
    return parser


def _feed(archive: zipfile.ZipFile, info: zipfile.ZipInfo, parser: expat.XMLParserType) -> None:
    """Stream a part through the parser until its end or a _Stop."""
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_READ_CHUNK):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except _Stop:
        return
    except expat.ExpatError as exc:
        damaged(f"{info.filename}: {exc}")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        damaged(f"{info.filename}: {exc}")


class XlsxGuard:
    """The workbook's sheets as the reader will find them, and a check of each one."""

    def __init__(self, archive: zipfile.ZipFile, limits: GridLimits) -> None:
        self.archive = archive
        self.limits = limits
        self.parts = self._index_parts()
        xl_path = self._office_document_folder()
        targets = self._relationships(f"{xl_path}_rels/workbook.xml.rels")
        self.sheets = self._sheets(f"{xl_path}workbook.xml", targets, xl_path)
        self._check_shared_strings(f"{xl_path}sharedStrings.xml")

    def _index_parts(self) -> dict[str, zipfile.ZipInfo]:
        """Parts by the reader's lookup key; two parts under one key make the file ambiguous."""
        parts: dict[str, zipfile.ZipInfo] = {}
        for info in self.archive.infolist():
            key = _ascii_lower(info.filename.replace("\\", "/"))
            if key in parts:
                damaged(f"the package holds two parts named '{info.filename[:80]}'")
            parts[key] = info
        for foreign in _FOREIGN_PARTS:
            if foreign in parts:
                damaged(f"the package holds '{foreign}', a part of another file format")
        return parts

    def _part(self, path: str) -> zipfile.ZipInfo | None:
        found = self.parts.get(_ascii_lower(path))
        if found is not None:
            return found
        try:
            return self.archive.getinfo(path)
        except KeyError:
            return None

    def _starts(self, path: str, wanted: str) -> list[dict[str, str]]:
        """Attributes of every element of a part with this local name; none when missing."""
        info = self._part(path)
        if info is None:
            return []
        found: list[dict[str, str]] = []

        def start(name: str, attrs: dict[str, str]) -> None:
            if _local(name) == wanted:
                found.append(attrs)

        parser = _parser()
        parser.StartElementHandler = start
        _feed(self.archive, info, parser)
        return found

    def _office_document_folder(self) -> str:
        if self._part("_rels/.rels") is None:
            damaged("_rels/.rels is missing")
        document = None  # the reader keeps the last one
        for attrs in self._starts("_rels/.rels", "Relationship"):
            if attrs.get("Type", "").endswith(_OFFICE_DOCUMENT) and "Target" in attrs:
                document = attrs["Target"]
        if document is None:
            damaged("the package names no workbook")
        folder = document[: document.rfind("/") + 1] if "/" in document else ""
        return folder.removeprefix("/")

    def _relationships(self, path: str) -> dict[str, str]:
        if self._part(path) is None:
            damaged(f"{path} is missing")
        targets: dict[str, str] = {}
        for attrs in self._starts(path, "Relationship"):
            if "Id" in attrs:
                target = attrs.get("Target", "")
                if "&" in target:
                    damaged("a sheet path holds an escaped character")
                targets[attrs["Id"]] = target
        return targets

    def _sheets(self, path: str, targets: dict[str, str], xl_path: str) -> list[tuple[str, str]]:
        sheets: list[tuple[str, str]] = []
        for attrs in self._starts(path, "sheet"):
            # The reader keeps the last attribute named id, whatever its prefix.
            ids = [value for key, value in attrs.items() if _local(key) == "id"]
            rel = ids[-1] if ids else ""
            if rel not in targets:
                damaged("a sheet has no relationship")
            target = targets[rel]
            part = target[1:] if target.startswith("/") else f"{xl_path}{target}"
            sheets.append((attrs.get("name", ""), part))
        return sheets

    def _check_shared_strings(self, path: str) -> None:
        """The reader reserves memory for the count the file announces: it must be real."""
        info = self._part(path)
        if info is None:
            return
        announced: list[str] = []

        def start(name: str, attrs: dict[str, str]) -> None:
            if _local(name) == "sst":
                announced.append(attrs.get("uniqueCount", ""))
                raise _Stop

        parser = _parser()
        parser.StartElementHandler = start
        _feed(self.archive, info, parser)
        count = announced[0] if announced else ""
        if count.isascii() and count.isdigit() and (
                int(count) > info.file_size // _MIN_SHARED_STRING_BYTES + 1):
            damaged(f"the shared strings announce {count[:20]} strings but hold at most "
                    f"{info.file_size // _MIN_SHARED_STRING_BYTES}")

    def names(self) -> list[str]:
        """Sheet names in workbook order."""
        return [name for name, _ in self.sheets]

    def check_sheet(self, name: str) -> None:
        """Refuse the sheet the reader would load under this name if its grid is too large."""
        part = next((path for sheet, path in self.sheets if sheet == name), None)
        info = None if part is None else self._part(part)
        if info is None:
            return  # the reader finds no such part either: an empty sheet or its own error
        scan = _SheetScan(name, self.limits)
        parser = _parser()
        parser.StartElementHandler = scan.start
        parser.EndElementHandler = scan.end
        _feed(self.archive, info, parser)


class _SheetScan:
    """Follows a worksheet's XML as the reader does, refusing at the first cell too far."""

    def __init__(self, sheet: str, limits: GridLimits) -> None:
        self.sheet = sheet
        self.limits = limits
        self.extent = Extent()
        self.in_data = False
        self.in_row = False
        self.row = 0
        self.column = 0
        self.cell: tuple[int, int] | None = None
        self.filled = False

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = _local(name)
        if not self.in_data:
            if local == "dimension":
                if "ref" not in attrs:
                    damaged("a sheet dimension has no range")
                box = _dimension(attrs["ref"])
                if not self.limits.fits(box):
                    refuse_declared(self.sheet, box, self.limits)
            elif local == "sheetData":
                self.in_data = True
            return
        if self.cell is not None:
            if local in ("c", "row"):
                damaged(f"a <{local}> inside a cell")
            self.filled = True
        elif local == "row":
            if self.in_row:
                damaged("a row inside a row")
            self.in_row = True
            if "r" in attrs:
                self.row = parse_position(attrs["r"], need_column=False)[0]
        elif local == "c":
            if "r" in attrs:
                row, self.column = _cell(attrs["r"])
                self.cell = (row, self.column)
            else:
                self.cell = (self.row, self.column)
            self.filled = False

    def end(self, name: str) -> None:
        if not self.in_data:
            return
        local = _local(name)
        if self.cell is not None:
            if local == "c":
                if self.filled:
                    self._add(*self.cell)
                self.column += 1
                self.cell = None
            return
        if local == "row":
            self.row += 1
            self.column = 0
            self.in_row = False
        elif local == "sheetData":
            raise _Stop

    def _add(self, row: int, column: int) -> None:
        box = self.extent.add(row, column)
        if not self.limits.fits(box):
            refuse_cell(self.sheet, box, row, column, self.limits)
