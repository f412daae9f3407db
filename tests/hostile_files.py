"""Hostile customer files for the tests and the benchmark: tiny workbooks with a far cell,
wide headers, lying sheet dimensions, announced string counts no file holds."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable

import xlsxwriter

SHEET = "xl/worksheets/sheet1.xml"


def xlsx_bytes(build: Callable[[xlsxwriter.Workbook], None]) -> bytes:
    """An in-memory workbook written by XlsxWriter."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    build(workbook)
    workbook.close()
    return buffer.getvalue()


def far_cell_xlsx(cell: str = "XFD1048576") -> bytes:
    """Cells A1:B2 (a header and one customer) plus one cell far away: a few KB."""

    def build(workbook: xlsxwriter.Workbook) -> None:
        sheet = workbook.add_worksheet()
        sheet.write_row(0, 0, ["Name", "Phone"])
        sheet.write_row(1, 0, ["Asha", "9876543210"])
        sheet.write(cell, "x")

    return xlsx_bytes(build)


def rewrite_parts(data: bytes, edit: Callable[[str, bytes], bytes]) -> bytes:
    """The same package with each part passed through edit(name, bytes)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            out.writestr(info.filename, edit(info.filename, source.read(info)))
    return buffer.getvalue()


def with_sheet_xml(data: bytes, edit: Callable[[bytes], bytes]) -> bytes:
    """The same workbook with its first sheet's XML edited."""
    return rewrite_parts(data, lambda name, part: edit(part) if name == SHEET else part)


def lying_dimension(data: bytes, ref: str = "A1:B2") -> bytes:
    """The sheet declares a small used range whatever its cells are."""
    return with_sheet_xml(data, lambda xml: re.sub(rb'<dimension ref="[^"]*"/>',
                                                   f'<dimension ref="{ref}"/>'.encode(), xml))


def shared_string_bomb() -> bytes:
    """A normal small workbook whose shared strings announce 900 billion entries."""
    return rewrite_parts(far_cell_xlsx("B3"), lambda name, part: re.sub(
        rb'uniqueCount="\d+"', b'uniqueCount="900000000000"', part)
        if name == "xl/sharedStrings.xml" else part)


def wide_header_csv(columns: int = 50_002, rows: int = 3) -> bytes:
    """A header of `columns` names over short rows (the padding trap: ~370 KB)."""
    header = ",".join(f"c{i}" for i in range(columns - 2))
    body = "".join(f"Customer {i},98765432{i:02d}\n" for i in range(rows))
    return f"Name,Phone,{header}\n{body}".encode()
