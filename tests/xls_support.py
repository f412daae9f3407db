"""A minimal .xls (BIFF8 in a compound file) writer for tests: one sheet of text cells, with
an optional DIMENSIONS record that may say anything. The spreadsheet reader opens what it
writes; tests use it to build hostile files no office suite would save."""

from __future__ import annotations

import struct

_FREE, _END, _FAT_SECTOR, _NONE = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF


def _record(kind: int, data: bytes) -> bytes:
    return struct.pack("<HH", kind, len(data)) + data


def _bof(kind: int) -> bytes:
    return _record(0x0809, struct.pack("<HHHHII", 0x0600, kind, 0x0DBB, 0x07CC, 0, 0x0206))


def _label(row: int, column: int, text: str) -> bytes:
    raw = text.encode("latin-1")
    return _record(0x0204, struct.pack("<HHHHB", row, column, 0, len(raw), 0) + raw)


def workbook_stream(cells: dict[tuple[int, int], str],
                    dimensions: tuple[int, int, int, int] | None, sheet: str = "Sheet1"
                    ) -> bytes:
    """BIFF8 globals and one worksheet; dimensions = (first row, last row + 1, first column,
    last column + 1) as the record stores them, or None to leave the record out."""
    name = sheet.encode("latin-1")
    boundsheet_size = 4 + 8 + len(name)
    globals_ = _bof(0x0005)
    offset = len(globals_) + boundsheet_size + 4
    globals_ += _record(0x0085, struct.pack("<IBBBB", offset, 0, 0, len(name), 0) + name)
    globals_ += _record(0x000A, b"")
    body = _bof(0x0010)
    if dimensions is not None:
        body += _record(0x0200, struct.pack("<IIHHH", *dimensions, 0))
    for (row, column), text in sorted(cells.items()):
        body += _label(row, column, text)
    body += _record(0x000A, b"")
    return globals_ + body


def compound_file(stream: bytes, name: str = "Workbook", directory_sectors: int = 1) -> bytes:
    """A version 3 compound file (512-byte sectors) holding one stream in regular sectors,
    after a directory of `directory_sectors` sectors (the entries past the first two empty)."""
    stream = stream.ljust(max(len(stream), 4096), b"\x00")
    sectors = -(-len(stream) // 512)
    fats = 1
    while fats * 128 < fats + directory_sectors + sectors:
        fats += 1
    assert fats <= 109
    first = fats + directory_sectors  # the stream's first sector

    def chain(start: int, length: int) -> list[int]:
        return [start + 1 + i for i in range(length - 1)] + [_END]

    fat = [_FAT_SECTOR] * fats + chain(fats, directory_sectors) + chain(first, sectors)
    fat += [_FREE] * (fats * 128 - len(fat))
    header = bytearray(512)
    header[0:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIIII", header, 40, 0, fats, fats, 0, 4096, _END, 0, _END, 0)
    for index in range(109):
        struct.pack_into("<I", header, 76 + 4 * index, index if index < fats else _FREE)

    def entry(entry_name: str, kind: int, child: int, start: int, size: int) -> bytes:
        raw = entry_name.encode("utf-16-le") + b"\x00\x00"
        out = bytearray(128)
        out[0:len(raw)] = raw
        struct.pack_into("<HBB", out, 64, len(raw), kind, 1)
        struct.pack_into("<III", out, 68, _NONE, _NONE, child)
        struct.pack_into("<II", out, 116, start, size)
        return bytes(out)

    directory = (entry("Root Entry", 5, 1, _END, 0) + entry(name, 2, _NONE, first, len(stream))
                 ).ljust(directory_sectors * 512, b"\x00")
    fat_sectors = b"".join(struct.pack("<I", value) for value in fat)
    return bytes(header) + fat_sectors + directory + stream.ljust(sectors * 512, b"\x00")


def xls_bytes(cells: dict[tuple[int, int], str],
              dimensions: tuple[int, int, int, int] | None = None) -> bytes:
    """An .xls file of one sheet with these text cells (0-based row, column)."""
    return compound_file(workbook_stream(cells, dimensions))
