"""Checks an old .xls workbook against the grid limits before the spreadsheet reader opens it.

The reader (calamine) parses every sheet of an .xls when it opens the file: it reserves room
for the cells each sheet's DIMENSIONS record announces and builds a dense grid from the first
to the last cell record. This module reads the compound file's Workbook stream itself, walks
the BIFF records of every sheet the same way (the announced range with the reader's own
arithmetic, the position of every cell record) and refuses a sheet beyond the limits before
the reader sees the file. Lengths the reader would trust (stream and sector counts) are
checked against the file's size.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Final

from onboardd.importing.grid import Box, Extent, GridLimits, damaged, refuse_cell, refuse_declared

_SIGNATURE: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_END_OF_CHAIN: Final = 0xFFFFFFFE
_NO_SECTOR: Final = 0xFFFFFFFA  # ids from here up are markers, not sectors
_MINI_SECTOR: Final = 64
_MINI_CUTOFF: Final = 4096
_STREAM_NAMES: Final = ("Workbook", "Book", "WORKBOOK", "BOOK")
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


class _Compound:
    """Just enough of the compound file format to read one stream."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 512 or not data.startswith(_SIGNATURE):
            damaged("not a compound document")
        self.data = data
        shift = _u16(data, 30)
        if shift not in (9, 12):
            damaged("bad sector size")
        self.size = 1 << shift
        self.header = 512 if shift == 9 else 4096
        limit = len(data)
        fat_len, self.mini_fat_len = _u32(data, 44), _u32(data, 64)
        # The reader reserves memory from these counts before it reads a sector.
        if fat_len * 4 > limit or self.mini_fat_len * self.size > limit or (
                _u32(data, 62) * 4 > limit + 4 * 1024 * 1024):
            damaged("sector counts beyond the file's size")
        self.fat = self._fat()
        self.entries = self._directory(_u32(data, 48))

    def _sector(self, sector: int) -> bytes:
        start = self.header + sector * self.size
        if sector >= _NO_SECTOR or start >= len(self.data):
            damaged(f"sector {sector} is beyond the end of the file")
        return self.data[start:start + self.size]

    def _fat(self) -> list[int]:
        difat = [_u32(self.data, 76 + 4 * i) for i in range(109)]
        sector, seen = _u32(self.data, 68), 0
        while sector < _NO_SECTOR:
            seen += 1
            if seen > len(self.data) // self.size:
                damaged("the sector table loops")
            block = self._sector(sector)
            difat.extend(_u32(block, at) for at in range(0, self.size - 4, 4))
            sector = _u32(block, self.size - 4)
        fat: list[int] = []
        for sector in difat:
            if sector < _NO_SECTOR:
                block = self._sector(sector)
                fat.extend(_u32(block, at) for at in range(0, len(block) - 3, 4))
        return fat

    def _chain(self, sector: int, length: int, table: list[int],
               get: Callable[[int], bytes] | None = None) -> bytes:
        """`length` bytes along a sector chain; a chain that loops or leaves the table is
        damage."""
        get = get or self._sector
        out, hops = bytearray(), 0
        while sector != _END_OF_CHAIN and len(out) < length:
            hops += 1
            if hops > len(self.data) // _MINI_SECTOR + 1 or sector >= len(table):
                damaged("a stream's sector chain is broken")
            out += get(sector)
            sector = table[sector]
        return bytes(out[:length])

    def _directory(self, first: int) -> list[tuple[str, int, int]]:
        raw = self._chain(first, len(self.data), self.fat)
        entries = []
        for at in range(0, len(raw) - 127, 128):
            name = raw[at:at + 64].decode("utf-16-le", errors="replace").split("\x00")[0]
            size = _u32(raw, at + 120) if self.size == 512 else int.from_bytes(
                raw[at + 120:at + 128], "little")
            entries.append((name, _u32(raw, at + 116), size))
        if not entries:
            damaged("the document has no directory")
        return entries

    def stream(self) -> bytes:
        """The workbook stream, as the reader finds it."""
        for wanted in _STREAM_NAMES:
            found = next((e for e in self.entries if e[0] == wanted), None)
            if found is not None:
                break
        else:
            damaged("the document holds no workbook stream")
        _, start, size = found
        if size > len(self.data):
            damaged("the workbook stream claims to be larger than the file")
        if size >= _MINI_CUTOFF:
            return self._chain(start, size, self.fat)
        root_start, root_size = self.entries[0][1], self.entries[0][2]
        if root_size > len(self.data):
            damaged("the mini stream claims to be larger than the file")
        mini = self._chain(root_start, root_size, self.fat)
        mini_fat_raw = self._chain(_u32(self.data, 60), self.mini_fat_len * self.size,
                                   self.fat, None)
        mini_fat = [_u32(mini_fat_raw, at) for at in range(0, len(mini_fat_raw) - 3, 4)]

        def mini_sector(sector: int) -> bytes:
            return mini[sector * _MINI_SECTOR:(sector + 1) * _MINI_SECTOR]

        return self._chain(start, size, mini_fat, mini_sector)


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
    stream = _Compound(data).stream()
    for name, offset in _sheets(_records(stream, 0)):
        if offset >= len(stream):
            damaged(f"the sheet '{name}' starts past the end of the workbook stream")
        _check_sheet(name, _records(stream, offset), limits)
