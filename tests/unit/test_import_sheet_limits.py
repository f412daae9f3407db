"""Spreadsheets and CSV files checked against max_rows / max_columns before the reader builds
a grid: the declared range, the real cell extent, and what the reader would read otherwise."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable

import pytest
import xlsxwriter

from onboardd.importing.files import FileRejected, Table, read_table
from onboardd.importing.grid import GridLimits
from onboardd.importing.xls_scan import check_xls
from tests.hostile_files import (
    SHEET,
    far_cell_xlsx,
    lying_dimension,
    rewrite_parts,
    shared_string_bomb,
    wide_header_csv,
    with_sheet_xml,
    xlsx_bytes,
)
from tests.xls_support import compound_file, workbook_stream, xls_bytes

HEADER_AND_ONE = {(0, 0): "Name", (0, 1): "Phone", (1, 0): "Asha", (1, 1): "9876543210"}


def rejected(call: Callable[[], object]) -> FileRejected:
    with pytest.raises(FileRejected) as caught:
        call()
    return caught.value


# --- xlsx ----------------------------------------------------------------------------


def test_tiny_far_cell_xlsx_is_refused_by_columns_before_the_grid() -> None:
    """A1:B2 plus XFD1048576: the reader would ask for a 17-billion-cell grid (549 GB)."""
    data = far_cell_xlsx("XFD1048576")
    assert len(data) < 8 * 1024
    error = rejected(lambda: read_table("xlsx", data, max_rows=10_000))
    assert error.code == "too_many_columns"
    assert error.details["limit"] == 200
    assert error.details["limitKey"] == "[import] max_columns"
    assert error.details["range"] == "A1:XFD1048576"
    assert "200 columns ([import] max_columns)" in error.message
    assert "Delete the columns" in error.message


def test_far_cell_at_zz100000_is_refused() -> None:
    error = rejected(lambda: read_table("xlsx", far_cell_xlsx("ZZ100000"), max_rows=10_000))
    assert error.code == "too_many_columns"
    assert (error.details["columns"], error.details["rows"]) == (702, 100_000)


def test_lying_dimension_is_caught_by_the_real_cell_extent() -> None:
    data = lying_dimension(far_cell_xlsx("XFD1048576"))
    error = rejected(lambda: read_table("xlsx", data, max_rows=10_000))
    assert error.code == "too_many_columns"
    assert "has a cell at XFD1048576" in error.message


def test_far_cell_down_one_column_is_refused_by_rows() -> None:
    data = lying_dimension(far_cell_xlsx("B1048576"))
    error = rejected(lambda: read_table("xlsx", data, max_rows=10_000))
    assert error.code == "too_many_rows"
    assert error.details["limit"] == 10_000
    assert error.details["limitKey"] == "[import] max_rows"


def test_declared_range_alone_refuses_a_million_row_sheet() -> None:
    data = lying_dimension(far_cell_xlsx("B3"), "A1:E1000001")
    error = rejected(lambda: read_table("xlsx", data, max_rows=10_000))
    assert error.code == "too_many_rows"
    assert "declares its used range as A1:E1000001" in error.message


def test_configured_max_columns_is_used() -> None:
    def build(workbook: xlsxwriter.Workbook) -> None:
        sheet = workbook.add_worksheet()
        sheet.write_row(0, 0, ["Name", "Phone"] + [f"x{i}" for i in range(8)])
        sheet.write_row(1, 0, ["Asha", "9876543210"])

    data = xlsx_bytes(build)
    assert read_table("xlsx", data, max_rows=10, max_columns=10).headers[:2] == ["Name", "Phone"]
    error = rejected(lambda: read_table("xlsx", data, max_rows=10, max_columns=9))
    assert (error.code, error.details["limit"]) == ("too_many_columns", 9)


def test_cells_without_references_follow_the_reader() -> None:
    """Cells without r sit right of the one before; a row end starts column A again."""
    def unnumbered(xml: bytes) -> bytes:
        cells = "".join(f"<c t=\"inlineStr\"><is><t>v{i}</t></is></c>" for i in range(201))
        return re.sub(rb"<sheetData>.*</sheetData>", (
            "<sheetData><row><c t=\"inlineStr\"><is><t>Name</t></is></c>"
            "<c t=\"inlineStr\"><is><t>Phone</t></is></c></row>"
            f"<row>{cells}</row></sheetData>").encode(), xml, flags=re.S)

    data = with_sheet_xml(lying_dimension(far_cell_xlsx("B3")), unnumbered)
    error = rejected(lambda: read_table("xlsx", data, max_rows=10))
    assert error.code == "too_many_columns"
    assert "has a cell at GS2" in error.message  # the 201st cell of the second row


def test_styled_empty_cells_far_away_do_not_count() -> None:
    """A formatted cell without a value is not in the reader's grid."""
    data = with_sheet_xml(lying_dimension(far_cell_xlsx("B3")), lambda xml: xml.replace(
        b"</sheetData>", b'<row r="900000"><c r="XFD900000" s="1"/></row></sheetData>'))
    assert read_table("xlsx", data, max_rows=10).rows[0] == ["Asha", "9876543210"]


def test_a_cell_inside_a_cell_is_damaged() -> None:
    data = with_sheet_xml(far_cell_xlsx("B3"), lambda xml: xml.replace(
        b"<v>0</v></c>", b'<v>0</v><c r="XFD1"><v>1</v></c></c>', 1))
    error = rejected(lambda: read_table("xlsx", data, max_rows=10))
    assert error.code == "unreadable"


def test_shared_string_count_bomb_is_refused_before_the_reader() -> None:
    """The reader reserves memory for the announced count: 21 TB, and the process aborts."""
    error = rejected(lambda: read_table("xlsx", shared_string_bomb(), max_rows=10))
    assert error.code == "unreadable"
    assert "900000000000" in error.message


def test_duplicate_and_foreign_parts_are_refused() -> None:
    base = far_cell_xlsx("B3")
    buffer = io.BytesIO(base)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(SHEET.upper(), b"<worksheet/>")
    error = rejected(lambda: read_table("xlsx", buffer.getvalue(), max_rows=10))
    assert error.code == "unreadable"
    assert "two parts" in error.message
    ods_inside = rewrite_parts(base, lambda name, part: part)
    buffer = io.BytesIO(ods_inside)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr("content.xml", b"<x/>")
    error = rejected(lambda: read_table("xlsx", buffer.getvalue(), max_rows=10))
    assert "another file format" in error.message


def test_a_hidden_or_later_sheet_is_not_loaded_so_not_checked() -> None:
    def build(workbook: xlsxwriter.Workbook) -> None:
        first = workbook.add_worksheet("Customers")
        first.write_row(0, 0, ["Name", "Phone"])
        first.write_row(1, 0, ["Asha", "9876543210"])
        workbook.add_worksheet("Notes").write("XFD1048576", "x")

    table = read_table("xlsx", xlsx_bytes(build), max_rows=10)
    assert table.rows == [["Asha", "9876543210"]]


# --- xls -----------------------------------------------------------------------------


def test_xls_reads() -> None:
    table = read_table("xls", xls_bytes(HEADER_AND_ONE, (0, 2, 0, 2)), max_rows=10)
    assert (table.headers, table.rows) == (["Name", "Phone"], [["Asha", "9876543210"]])


def test_xls_far_cell_is_refused_before_the_reader_opens_it() -> None:
    data = xls_bytes({**HEADER_AND_ONE, (65_535, 255): "x"}, (0, 2, 0, 2))
    error = rejected(lambda: read_table("xls", data, max_rows=10_000))
    assert error.code == "too_many_columns"
    assert "has a cell at IV65536" in error.message


def test_xls_dimensions_record_that_would_abort_the_reader_is_refused() -> None:
    """4 billion rows x 65,535 columns: the reader reserves 11 PB at open and aborts."""
    data = xls_bytes(HEADER_AND_ONE, (0, 0xFFFF_FFFF, 0, 0xFFFF))
    error = rejected(lambda: read_table("xls", data, max_rows=10_000))
    assert error.code == "too_many_columns"
    assert "declares its used range" in error.message


def test_xls_dimensions_with_rows_backwards_is_refused() -> None:
    """The reader's u32 arithmetic turns last < first into 4 billion rows."""
    data = xls_bytes(HEADER_AND_ONE, (100, 50, 0, 2))
    assert rejected(lambda: read_table("xls", data, max_rows=10_000)).code == "too_many_rows"


def test_xls_stream_longer_than_the_file_is_damaged() -> None:
    data = bytearray(xls_bytes(HEADER_AND_ONE, (0, 2, 0, 2)))
    data[1024 + 128 + 120:1024 + 128 + 124] = (10 ** 9).to_bytes(4, "little")
    assert rejected(lambda: read_table("xls", bytes(data), max_rows=10)).code == "unreadable"


def test_xls_stream_named_book_reads() -> None:
    """The reader looks for Workbook, then Book (BIFF5), WORKBOOK and BOOK."""
    data = compound_file(workbook_stream(HEADER_AND_ONE, (0, 2, 0, 2)), name="Book")
    assert read_table("xls", data, max_rows=10).headers == ["Name", "Phone"]


def patched(data: bytes, *edits: tuple[int, int]) -> bytes:
    """The file with a u32 written at each offset."""
    out = bytearray(data)
    for at, value in edits:
        out[at:at + 4] = value.to_bytes(4, "little")
    return bytes(out)


def workbook_outside_the_tree() -> bytes:
    """The stream is named Sheet; an empty entry after it, linked nowhere, is named Workbook
    (the reader takes it: it looks entries up by name in directory order)."""
    data = bytearray(compound_file(workbook_stream(HEADER_AND_ONE, (0, 2, 0, 2)), name="Sheet"))
    data[1024 + 256:1024 + 272] = "Workbook".encode("utf-16-le")
    return bytes(data)


# xls_bytes writes the FAT in sector 0 (entry i at 512 + 4 i), the directory in sector 1 and
# the workbook stream in sectors 2 to 9.
XLS = xls_bytes(HEADER_AND_ONE, (0, 2, 0, 2))


@pytest.mark.parametrize(("data", "reason"), [
    pytest.param(XLS[:-512], "sector index out of range", id="truncated"),
    pytest.param(patched(XLS, (512 + 4 * 3, 5000)), "sector index out of range",
                 id="chain-leaves-the-file"),
    pytest.param(patched(XLS, (512 + 4 * 1, 1)), "directory chain loops", id="directory-loop"),
    pytest.param(patched(XLS, (68, 9), (512 * 10 + 508, 9)), "DIFAT chain loops",
                 id="difat-loop"),
    pytest.param(patched(XLS, (44, 200)), "sector counts", id="fat-count"),
    pytest.param(compound_file(workbook_stream(HEADER_AND_ONE, (0, 2, 0, 2)),
                               directory_sectors=1025), "more than 4096 entries",
                 id="huge-directory"),
    pytest.param(workbook_outside_the_tree(), "not a stream at the top", id="entry-outside-tree"),
])
def test_damaged_compound_file_is_refused_before_the_reader(data: bytes, reason: str) -> None:
    """check_xls alone: the reader would abort or never finish on the loops."""
    error = rejected(lambda: check_xls(data, GridLimits(max_rows=10, max_columns=200)))
    assert error.code == "unreadable"
    assert "damaged" in error.message
    assert reason in str(error.details["reason"])


def test_a_large_directory_still_reads() -> None:
    data = compound_file(workbook_stream(HEADER_AND_ONE, (0, 2, 0, 2)), directory_sectors=1024)
    assert read_table("xls", data, max_rows=10).headers == ["Name", "Phone"]


# --- CSV -----------------------------------------------------------------------------


def test_wide_header_csv_is_refused_by_max_columns() -> None:
    data = wide_header_csv(50_002)
    assert len(data) < 400_000
    error = rejected(lambda: read_table("csv", data, max_rows=10_000))
    assert error.code == "too_many_columns"
    assert (error.details["columns"], error.details["limit"]) == (50_002, 200)
    assert "header row" in error.message and "[import] max_columns" in error.message


def test_wide_data_row_is_refused_naming_the_row() -> None:
    data = b"Name,Phone\nAsha,9876543210\n" + b"B,1," + b"x," * 300 + b"\n"
    error = rejected(lambda: read_table("csv", data, max_rows=10))
    assert (error.code, error.details["row"]) == ("too_many_columns", 3)


def test_trailing_empty_cells_do_not_count_as_columns() -> None:
    data = b"Name,Phone" + b"," * 500 + b"\nAsha,9876543210" + b"," * 500 + b"\n"
    table: Table = read_table("csv", data, max_rows=10)
    assert table.headers == ["Name", "Phone"]
    assert table.rows == [["Asha", "9876543210"]]


def test_ragged_rows_are_not_padded_to_the_header() -> None:
    header = ",".join(["Name", "Phone"] + [f"extra{i}" for i in range(150)])
    table = read_table("csv", f"{header}\nAsha,9876543210\nRavi\n".encode(), max_rows=10)
    assert len(table.headers) == 152
    assert table.rows == [["Asha", "9876543210"], ["Ravi"]]
