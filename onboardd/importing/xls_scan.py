"""Checks an old .xls workbook against the grid limits before the spreadsheet reader opens it.

The reader (calamine) parses every sheet of an .xls when it opens the file: it reserves room
for the cells each sheet's DIMENSIONS record announces and builds a dense grid from the first
to the last cell record. This module gets the Workbook stream from olefile, walks the BIFF
records of every sheet the same way (the announced range with the reader's own arithmetic,
the position of every cell record) and refuses a sheet beyond the limits before the reader
sees the file. What the reader trusts in the compound file (sector counts, stream sizes,
chains it follows to their end) and what would make olefile itself slow is checked first.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator
from typing import Final

import olefile

from onboardd.importing.grid import Box, Extent, GridLimits, damaged, refuse_cell, refuse_declared

_NO_SECTOR: Final = olefile.MAXREGSECT  # ids from here up are markers, not sectors
_STREAM_NAMES: Final = ("Workbook", "Book", "WORKBOOK", "BOOK")
# A workbook's directory holds a few dozen entries; olefile's work grows with their square.
_MAX_ENTRIES: Final = 4096
_BOF, _EOF, _BOUNDSHEET, _DIMENSIONS = 0x0809, 0x000A, 0x0085, 0x0200
_FORMULA, _MULRK = 0x0006, 0x00BD
# Records holding one cell at (row u16, column u16): Number, Label, RString, BoolErr, Rk,
# LabelSst, Formula (whose String record lands on the formula's cell).
_CELL_RECORDS: Final = frozenset({0x0203, 0x0204, 0x00D6, 0x0205, 0x027E, 0x00FD, _FORMULA})
_U32: Final = 0xFFFFFFFF
# The reader walks each sheet from its offset; thousands of sheets would be a CPU trap.
_MAX_SHEETS: Final = 1000


def _u16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "little")


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")


def _chain(first: int, step: Callable[[int], int], what: str) -> int:
    """The number of sectors along a chain that the reader follows to its end without a
    bound (a loop would never end)."""
    seen: set[int] = set()
    sector = first
    while sector < _NO_SECTOR:
        if sector in seen:
            damaged(f"the {what} chain loops")
        seen.add(sector)
        sector = step(sector)
    return len(seen)


class _OleFile(olefile.OleFileIO):  # type: ignore[misc]  # olefile ships no types
    """olefile, checking before it reads each table what the reader trusts there and what
    olefile's own work grows with. DEFECT_INCORRECT (olefile's setting for untrusted files)
    makes it raise on broken chains and on streams longer than the file's sectors."""

    def __init__(self, data: bytes) -> None:
        self.file_size = len(data)
        super().__init__(io.BytesIO(data), raise_defects=olefile.DEFECT_INCORRECT)

    def loadfat(self, header: bytes) -> None:
        # A FAT sector maps sectorsize/4 sectors. Past the 109 FAT sectors the header lists,
        # olefile follows the DIFAT for as many as the header counts, joining the table one
        # sector at a time (quadratic in the count), and the reader reserves a u32 per counted
        # sector: more FAT sectors than the file can use is damage. The reader also reserves
        # memory from the mini-FAT count, and from the u32 at offset 62 (where it reads the
        # DIFAT count, across the mini-FAT start and count: a few hundred KB in most files,
        # hence the slack).
        needed = -(-self.nb_sect // (self.sectorsize // 4)) + 1
        if (self.num_fat_sectors > max(109, needed)
                or self.num_mini_fat_sectors * self.sectorsize > self.file_size
                or _u32(header, 62) * 4 > self.file_size + 4 * 1024 * 1024):
            damaged("sector counts beyond the file's size")
        super().loadfat(header)
        # The reader follows the DIFAT from the header whatever its count says (olefile only
        # as far as counted, and not at all for a count of 0).
        _chain(self.first_difat_sector,
               lambda sector: _u32(self.getsect(sector), self.sectorsize - 4), "DIFAT")

    def loaddirectory(self, sect: int) -> None:
        # The reader reads the directory's chain to its end; olefile checks each stream it
        # meets against a list of those before it (quadratic in the entries).
        def step(sector: int) -> int:
            if sector >= len(self.fat):
                damaged("the directory's sector chain leaves the file")
            return int(self.fat[sector])

        if _chain(sect, step, "directory") * self.sectorsize // 128 > _MAX_ENTRIES:
            damaged(f"the directory holds more than {_MAX_ENTRIES} entries")
        super().loaddirectory(sect)


def _workbook_stream(data: bytes) -> bytes:
    """The workbook stream, as the reader finds it."""
    try:
        with _OleFile(data) as ole:
            return _stream(ole, len(data))
    except RecursionError:
        damaged("the directory tree is too deep")
    except (OSError, ValueError, IndexError, OverflowError, struct.error) as exc:
        damaged(f"compound file: {exc}")


def _stream(ole: olefile.OleFileIO, file_size: int) -> bytes:
    """The reader takes the first directory entry, in directory order, named by the first of
    the names that any entry has (exact names, the entries linked in the tree or not); olefile
    reads streams by path, so that entry must be the same-named stream at the top level."""
    raw = ole.directory_fp.getvalue()
    names = [raw[at:at + 64].decode("utf-16-le", errors="replace").split("\x00")[0]
             for at in range(0, len(raw) - 127, 128)]
    name = next((wanted for wanted in _STREAM_NAMES if wanted in names), None)
    if name is None:
        damaged("the document holds no workbook stream")
    entry = ole.direntries[names.index(name)]
    if entry is None or entry.name != name or ole.root.kids_dict.get(name.lower()) is not entry:
        damaged(f"the '{name}' entry is not a stream at the top of the document")
    if entry.size > file_size:
        damaged("the workbook stream claims to be larger than the file")
    if ole.root.size > file_size:
        damaged("the mini stream claims to be larger than the file")
    return bytes(ole.openstream(name).read())


def _records(stream: bytes, at: int) -> Iterator[tuple[int, bytes]]:
    """BIFF records from an offset on (CONTINUE records as records of their own)."""
    while at + 4 <= len(stream):
        kind, size = _u16(stream, at), _u16(stream, at + 2)
        if at + 4 + size > len(stream):
            damaged("a record runs past the end of the workbook stream")
        yield kind, stream[at + 4:at + 4 + size]
        at += 4 + size


def _declared(data: bytes) -> Box:
    """A DIMENSIONS record as the reader reads it, its u32 arithmetic included."""
    if len(data) == 10:
        first_row, last_row, first_col, last_col = struct.unpack_from("<HHHH", data)
    elif len(data) == 14:
        first_row, last_row, first_col, last_col = struct.unpack_from("<IIHH", data)
    else:
        damaged("a DIMENSIONS record has an unknown size")
    if first_col > 0xFF or last_col < first_col:
        first_col = 0
    end_row, end_col = first_row, first_col
    if last_row >= 1 and last_col >= 1:
        end_row, end_col = last_row - 1, last_col - 1
    rows = (end_row - first_row + 1) & _U32
    columns = (end_col - first_col + 1) & _U32
    return Box(first_row, first_col, first_row + rows - 1, first_col + columns - 1)


def _sheets(records: Iterator[tuple[int, bytes]]) -> list[tuple[str, int]]:
    """(name, stream offset) of every sheet the globals list, up to their EOF."""
    sheets = []
    for kind, data in records:
        if kind == _EOF:
            break
        if kind == _BOUNDSHEET:
            if len(data) < 8:
                damaged("a sheet entry is too short")
            length, wide = data[6], data[7] & 1
            name = data[8:8 + length * (2 if wide else 1)]
            sheets.append((name.decode("utf-16-le" if wide else "latin-1", errors="replace")
                           .replace("\x00", ""), _u32(data, 0)))
            if len(sheets) > _MAX_SHEETS:
                damaged(f"more than {_MAX_SHEETS} sheets")
    return sheets


def _check_sheet(name: str, records: Iterator[tuple[int, bytes]], limits: GridLimits) -> None:
    extent, depth, seen_bof = Extent(), 0, False
    for kind, data in records:
        if depth:
            depth += 1 if kind == _BOF else -1 if kind == _EOF else 0
            continue
        if kind == _BOF:
            depth, seen_bof = (1, seen_bof) if seen_bof else (0, True)
        elif kind == _EOF:
            return
        elif kind == _DIMENSIONS:
            box = _declared(data)
            if not limits.fits(box):
                refuse_declared(name, box, limits)
        elif kind in _CELL_RECORDS or kind == _MULRK:
            if len(data) < 6:
                damaged("a cell record is too short")
            row, column = _u16(data, 0), _u16(data, 2)
            last = column + (len(data) - 6) // 6 - 1 if kind == _MULRK else column
            for col in {column, max(column, last)}:
                box = extent.add(row, col)
                if not limits.fits(box):
                    refuse_cell(name, box, row, col, limits)


def check_xls(data: bytes, limits: GridLimits) -> None:
    """Refuse the workbook when any sheet's announced range or real cells pass the limits
    (the reader builds every sheet's grid as it opens the file)."""
    stream = _workbook_stream(data)
    for name, offset in _sheets(_records(stream, 0)):
        if offset >= len(stream):
            damaged(f"the sheet '{name}' starts past the end of the workbook stream")
        _check_sheet(name, _records(stream, offset), limits)
