"""File type detection and CSV/Excel parsing of customer uploads."""

from __future__ import annotations

import codecs
import io
import zipfile
from collections.abc import Callable

import pytest
import xlsxwriter

from onboardd.importing.files import FileRejected, Table, detect_kind, read_table

OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def csv_table(data: bytes, max_rows: int = 10_000) -> Table:
    """Detect and read a CSV upload the way the upload handler does."""
    kind = detect_kind("customers.csv", data[:8192])
    return read_table(kind, data, max_rows=max_rows)


def xlsx_bytes(build: Callable[[xlsxwriter.Workbook], None]) -> bytes:
    """An in-memory workbook written by XlsxWriter."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    build(workbook)
    workbook.close()
    return buffer.getvalue()


def rejected(call: Callable[[], object]) -> FileRejected:
    """Run call and return the FileRejected it raises."""
    with pytest.raises(FileRejected) as caught:
        call()
    return caught.value


# --- detect_kind ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "head", "kind"),
    [
        ("customers.csv", b"Name,Phone\n", "csv"),
        ("CUSTOMERS.CSV", b"Name,Phone\n", "csv"),
        ("list.XLSX", b"PK\x03\x04rest", "xlsx"),
        ("old.Xls", OLE + b"rest", "xls"),
        ("u16.csv", codecs.BOM_UTF16_LE + "Name".encode("utf-16-le"), "csv"),
        ("u16be.csv", codecs.BOM_UTF16_BE + "Name".encode("utf-16-be"), "csv"),
        ("empty.csv", b"", "csv"),
        ("my.customers.v2.csv", b"a,b\n", "csv"),
    ],
)
def test_detect_kind_accepts(filename: str, head: bytes, kind: str) -> None:
    assert detect_kind(filename, head) == kind


@pytest.mark.parametrize(
    "filename", ["customers.txt", "customers.pdf", "customers", "book.xlsm", "a.csv.exe", ".csv"]
)
def test_detect_kind_unsupported(filename: str) -> None:
    error = rejected(lambda: detect_kind(filename, b"Name,Phone\n"))
    assert error.code == "unsupported_type"
    assert ".csv, .xlsx or .xls" in error.message


@pytest.mark.parametrize(
    ("filename", "head", "content"),
    [
        ("book.xlsx", b"Name,Phone\nRavi,9876543210\n", "csv"),
        ("book.xlsx", OLE + b"\x00" * 100, "xls"),
        ("list.csv", b"PK\x03\x04\x14\x00\x06\x00", "xlsx"),
        ("list.csv", OLE, "xls"),
        ("list.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("old.xls", b"PK\x03\x04\x14\x00", "xlsx"),
        ("old.xls", b"<html><table><tr><td>Name</td></tr></table></html>", "csv"),
    ],
)
def test_detect_kind_content_mismatch(filename: str, head: bytes, content: str) -> None:
    error = rejected(lambda: detect_kind(filename, head))
    assert error.code == "content_mismatch"
    assert error.details == {
        "filename": filename,
        "extension": "." + filename.rsplit(".", 1)[1],
        "content": content,
    }
    assert filename in error.message


def test_detect_kind_nul_after_probe_window_is_text() -> None:
    head = b"Name,Phone\n" + b"x" * 9000 + b"\x00"
    assert detect_kind("a.csv", head) == "csv"


# --- CSV -----------------------------------------------------------------------------


def test_plain_csv() -> None:
    table = csv_table(b"Name,Phone,Email\nRavi,9876543210,r@example.com\nAsha,98765 43211,\n")
    assert table == Table(
        headers=["Name", "Phone", "Email"],
        rows=[["Ravi", "9876543210", "r@example.com"], ["Asha", "98765 43211", ""]],
        row_numbers=[2, 3],
        encoding="utf-8",
        delimiter=",",
    )


def test_utf8_bom() -> None:
    table = csv_table(codecs.BOM_UTF8 + "Name,Phone\nJosé,9876543210\n".encode())
    assert table.headers == ["Name", "Phone"]
    assert table.rows == [["José", "9876543210"]]
    assert table.encoding == "utf-8-sig"


@pytest.mark.parametrize(
    ("bom", "codec"), [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")]
)
def test_utf16_with_bom(bom: bytes, codec: str) -> None:
    # Excel's "Unicode Text" export: UTF-16 with BOM, tab separated, CRLF.
    text = "Name\tPhone\r\nJosé Ñúñez\t9876543210\r\nप्रिया\t09876543211\r\n"
    table = csv_table(bom + text.encode(codec))
    assert table.headers == ["Name", "Phone"]
    assert table.rows == [["José Ñúñez", "9876543210"], ["प्रिया", "09876543211"]]
    assert table.encoding == codec
    assert table.delimiter == "\t"


def test_cp1252_fallback() -> None:
    data = "Name;Phone\r\nJosé Müller;9876543210\r\nZoë “Zee”;9876543211\r\n".encode("cp1252")
    table = csv_table(data)
    assert table.encoding == "cp1252"
    assert table.rows == [["José Müller", "9876543210"], ["Zoë “Zee”", "9876543211"]]


def test_latin1_when_cp1252_has_undefined_bytes() -> None:
    table = csv_table(b"Name,Phone\nA\x81B,9876543210\n")
    assert table.encoding == "latin-1"
    assert table.rows == [["A\x81B", "9876543210"]]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter(delimiter: str) -> None:
    lines = ["Name", "Phone", "Email"], ["Ravi Kumar", "98765 43210", "r@x.in"], ["A", "1", ""]
    data = "\n".join(delimiter.join(line) for line in lines).encode()
    table = csv_table(data)
    assert table.delimiter == delimiter
    assert table.headers == ["Name", "Phone", "Email"]
    assert table.rows == [["Ravi Kumar", "98765 43210", "r@x.in"], ["A", "1", ""]]


def test_delimiter_not_fooled_by_commas_inside_values() -> None:
    data = b"Name;Phone;Spent\nKumar, Ravi;9876543210;1,5\nSen, A;9876543211;2,25\n"
    table = csv_table(data)
    assert table.delimiter == ";"
    assert table.rows[0] == ["Kumar, Ravi", "9876543210", "1,5"]


def test_delimiter_not_fooled_by_semicolons_inside_values() -> None:
    data = b"Name,Phone,Notes\nRavi,9876543210,likes; tea\nAsha,9876543211,x;y;z\n"
    table = csv_table(data)
    assert table.delimiter == ","
    assert table.rows[1] == ["Asha", "9876543211", "x;y;z"]


def test_delimiter_quote_aware() -> None:
    data = b'Name|Phone\n"a,b,c,d"|9876543210\n"e,f,g,h"|9876543211\n'
    table = csv_table(data)
    assert table.delimiter == "|"
    assert table.rows == [["a,b,c,d", "9876543210"], ["e,f,g,h", "9876543211"]]


def test_single_column_defaults_to_comma() -> None:
    table = csv_table(b"Phone\n9876543210\n9876543211\n")
    assert table.delimiter == ","
    assert table.rows == [["9876543210"], ["9876543211"]]


def test_quoted_newlines_and_doubled_quotes() -> None:
    data = (
        b'Name,Phone,Notes\r\n"Ravi ""RK"" Kumar",9876543210,"line one\r\nline two"\r\n'
        b'"Sen, Asha",9876543211,"say ""hi"""\r\nLast,9876543212,\r\n'
    )
    table = csv_table(data)
    assert table.rows == [
        ['Ravi "RK" Kumar', "9876543210", "line one\r\nline two"],
        ["Sen, Asha", "9876543211", 'say "hi"'],
        ["Last", "9876543212", ""],
    ]
    # Row numbers are rows as Excel shows the CSV: one per record.
    assert table.row_numbers == [2, 3, 4]


def test_cr_only_line_ends() -> None:
    table = csv_table(b"Name,Phone\rRavi,9876543210\rAsha,9876543211\r")
    assert table.rows == [["Ravi", "9876543210"], ["Asha", "9876543211"]]
    assert table.row_numbers == [2, 3]


def test_mixed_line_ends_without_final_newline() -> None:
    table = csv_table(b"Name,Phone\r\nRavi,9876543210\nAsha,9876543211\rLast,9876543212")
    assert [row[0] for row in table.rows] == ["Ravi", "Asha", "Last"]
    assert table.row_numbers == [2, 3, 4]


def test_blank_lines_skipped_but_counted() -> None:
    data = b"\n\n , ,\nName,Phone\n\nRavi,9876543210\n,\n  \nAsha,9876543211\n\n"
    table = csv_table(data)
    assert table.headers == ["Name", "Phone"]
    assert table.rows == [["Ravi", "9876543210"], ["Asha", "9876543211"]]
    assert table.row_numbers == [6, 9]


def test_padded_cells_stripped() -> None:
    data = b'  Name , Phone \n  Ravi Kumar  ,  "98765 43210"  \n\tAsha\t, 9876543211\t\n'
    table = csv_table(data)
    assert table.headers == ["Name", "Phone"]
    assert table.rows == [["Ravi Kumar", "98765 43210"], ["Asha", "9876543211"]]


def test_short_rows_not_padded_extra_cells_kept() -> None:
    data = b"Name,Phone,Email\nRavi\nAsha,9876543211,a@x.in,extra,\nLast,9876543212,,,\n"
    table = csv_table(data)
    assert table.rows == [
        ["Ravi"],
        ["Asha", "9876543211", "a@x.in", "extra"],
        ["Last", "9876543212", ""],
    ]


def test_blank_and_repeated_headers_made_unique() -> None:
    table = csv_table(b"Name,,Phone,phone,Phone,\nRavi,x,1,2,3\n")
    assert table.headers == ["Name", "Column 2", "Phone", "phone (2)", "Phone (3)"]
    assert table.rows == [["Ravi", "x", "1", "2", "3"]]


def test_too_many_rows() -> None:
    data = b"Name,Phone\n" + b"".join(b"P%d,98765%05d\n" % (i, i) for i in range(12))
    error = rejected(lambda: csv_table(data, max_rows=10))
    assert error.code == "too_many_rows"
    assert error.details == {"rows": 12, "limit": 10}
    assert "12" in error.message
    assert "10" in error.message


def test_exactly_max_rows_is_fine() -> None:
    data = b"Name,Phone\n" + b"".join(b"P%d,98765%05d\n\n" % (i, i) for i in range(10))
    table = csv_table(data, max_rows=10)
    assert len(table.rows) == 10
    assert table.row_numbers[-1] == 20


@pytest.mark.parametrize("data", [b"", b"\n\n", b" , ,\r\n\r\n", codecs.BOM_UTF8])
def test_empty_file(data: bytes) -> None:
    error = rejected(lambda: csv_table(data))
    assert error.code == "empty_file"
    assert error.details == {"header": None}


def test_header_only() -> None:
    error = rejected(lambda: csv_table(b"Name,Phone\n\n"))
    assert error.code == "empty_file"
    assert error.details == {"header": ["Name", "Phone"]}
    assert "no customer rows" in error.message


def test_unclosed_quote_is_unreadable() -> None:
    data = b'Name,Phone\n"Ravi,9876543210\n' + b"x" * 200_000 + b"\n"
    error = rejected(lambda: csv_table(data))
    assert error.code == "unreadable"
    assert "quote" in error.message


def test_nul_in_text_is_unreadable() -> None:
    data = b"Name,Phone\n" + b"a" * 9000 + b"\x00\n"
    error = rejected(lambda: read_table("csv", data, max_rows=10))
    assert error.code == "unreadable"


def test_odd_utf16_is_unreadable() -> None:
    error = rejected(lambda: read_table("csv", codecs.BOM_UTF16_LE + b"N\x00a", max_rows=10))
    assert error.code == "unreadable"


def test_csv_100k_rows() -> None:
    """A large file parses completely (its speed is measured by tests/bench/bench_import.py)."""
    lines = [b"Name,Phone,Email"] + [
        b'"Person %d, Jr",98765%05d,p%d@example.com' % (i, i, i) for i in range(100_000)
    ]
    table = read_table("csv", b"\r\n".join(lines), max_rows=100_000)
    assert len(table.rows) == 100_000
    assert table.row_numbers[-1] == 100_001
    assert table.rows[-1] == ["Person 99999, Jr", "9876599999", "p99999@example.com"]


# --- xlsx ----------------------------------------------------------------------------


def test_xlsx_nul_characters_are_dropped_from_cells() -> None:
    """Excel stores a NUL as _x0000_; it must never reach PostgreSQL (text cannot hold it)."""

    def build(workbook: xlsxwriter.Workbook) -> None:
        sheet = workbook.add_worksheet()
        sheet.write_row(0, 0, ["Na\x00me", "Phone"])
        sheet.write_row(1, 0, ["Ra\x00vi \x00", "98765\x0043210"])

    table = read_table("xlsx", xlsx_bytes(build), max_rows=10)
    assert table.headers == ["Name", "Phone"]
    assert table.rows == [["Ravi", "9876543210"]]


def test_xlsx_numeric_cells_and_leading_blank_rows() -> None:
    def build(workbook: xlsxwriter.Workbook) -> None:
        sheet = workbook.add_worksheet("Customers")
        sheet.write_row(2, 0, ["Name", "Phone", "Email", "Visits"])
        sheet.write_row(3, 0, ["Ravi Kumar", 9876543210, "r@x.in", 3])
        sheet.write_row(4, 0, [" Asha ", 919876543211, None, 2.5])
        sheet.write_row(6, 0, ["Last", "09876543212", "", True])

    table = read_table("xlsx", xlsx_bytes(build), max_rows=100)
    assert table == Table(
        headers=["Name", "Phone", "Email", "Visits"],
        rows=[
            ["Ravi Kumar", "9876543210", "r@x.in", "3"],
            ["Asha", "919876543211", "", "2.5"],
            ["Last", "09876543212", "", "TRUE"],
        ],
        row_numbers=[4, 5, 7],
        encoding=None,
        delimiter=None,
    )


def test_xlsx_data_not_in_column_a() -> None:
    def build(workbook: xlsxwriter.Workbook) -> None:
        sheet = workbook.add_worksheet()
        sheet.write_row(1, 2, ["Name", "Phone"])
        sheet.write_row(2, 2, ["Ravi", 9876543210])

    table = read_table("xlsx", xlsx_bytes(build), max_rows=100)
    assert table.headers == ["Name", "Phone"]
    assert table.rows == [["Ravi", "9876543210"]]
    assert table.row_numbers == [3]


def test_xlsx_first_sheet_empty_second_has_data() -> None:
    def build(workbook: xlsxwriter.Workbook) -> None:
        workbook.add_worksheet("Blank")
        formatted = workbook.add_worksheet("Only spaces")
        formatted.write_string(0, 0, "   ")
        data = workbook.add_worksheet("Data")
        data.write_row(0, 0, ["Customer Name", "Mobile"])
        data.write_row(1, 0, ["Ravi", 9876543210])

    table = read_table("xlsx", xlsx_bytes(build), max_rows=100)
    assert table.headers == ["Customer Name", "Mobile"]
    assert table.rows == [["Ravi", "9876543210"]]


def test_xlsx_hidden_sheet_skipped() -> None:
    def build(workbook: xlsxwriter.Workbook) -> None:
        hidden = workbook.add_worksheet("Lookup")
        hidden.write_row(0, 0, ["Code", "Value"])
        hidden.write_row(1, 0, ["x", 1])
        hidden.hide()
        data = workbook.add_worksheet("Customers")
        data.write_row(0, 0, ["Name", "Phone"])
        data.write_row(1, 0, ["Ravi", 9876543210])
        data.activate()

    table = read_table("xlsx", xlsx_bytes(build), max_rows=100)
    assert table.headers == ["Name", "Phone"]


def test_xlsx_header_only() -> None:
    def build(workbook: xlsxwriter.Workbook) -> None:
        workbook.add_worksheet().write_row(0, 0, ["Name", "Phone"])
        workbook.add_worksheet().write_row(0, 0, ["Other", "Sheet"])

    error = rejected(lambda: read_table("xlsx", xlsx_bytes(build), max_rows=100))
    assert error.code == "empty_file"
    assert error.details == {"header": ["Name", "Phone"]}


def test_xlsx_empty_workbook() -> None:
    def build(workbook: xlsxwriter.Workbook) -> None:
        workbook.add_worksheet()
        workbook.add_worksheet()

    error = rejected(lambda: read_table("xlsx", xlsx_bytes(build), max_rows=100))
    assert error.code == "empty_file"


def test_xlsx_too_many_rows() -> None:
    def build(workbook: xlsxwriter.Workbook) -> None:
        sheet = workbook.add_worksheet()
        sheet.write_row(0, 0, ["Name", "Phone"])
        for row in range(1, 26):
            sheet.write_row(row, 0, [f"P{row}", 9876500000 + row])

    error = rejected(lambda: read_table("xlsx", xlsx_bytes(build), max_rows=20))
    assert error.code == "too_many_rows"
    assert error.details == {"rows": 25, "limit": 20}


def test_xlsx_detected_from_bytes() -> None:
    def build(workbook: xlsxwriter.Workbook) -> None:
        workbook.add_worksheet().write_row(0, 0, ["Name"])

    assert detect_kind("Book1.xlsx", xlsx_bytes(build)[:8192]) == "xlsx"


def test_zip_that_is_not_a_workbook_is_unreadable() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    error = rejected(lambda: read_table("xlsx", buffer.getvalue(), max_rows=100))
    assert error.code == "unreadable"


def test_truncated_xlsx_is_unreadable() -> None:
    def build(workbook: xlsxwriter.Workbook) -> None:
        workbook.add_worksheet().write_row(0, 0, ["Name", "Phone"])

    data = xlsx_bytes(build)
    error = rejected(lambda: read_table("xlsx", data[: len(data) // 2], max_rows=100))
    assert error.code == "unreadable"


def _zip(name: str, size: int) -> bytes:
    """A zip holding one highly compressible entry of the given size."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open(name, "w") as entry:
            chunk = b"\x00" * (1024 * 1024)
            for _ in range(size // len(chunk)):
                entry.write(chunk)
    return buffer.getvalue()


def test_zip_bomb_over_total_limit() -> None:
    data = _zip("xl/worksheets/sheet1.xml", 64 * 1024 * 1024)
    assert len(data) < 200_000
    error = rejected(
        lambda: read_table("xlsx", data, max_rows=100, max_uncompressed_bytes=32 * 1024 * 1024)
    )
    assert error.code == "too_large_uncompressed"
    assert error.details["limit"] == 32 * 1024 * 1024
    assert error.details["uncompressed_bytes"] == 64 * 1024 * 1024 + len("<Types/>")


def test_zip_bomb_by_ratio_under_total_limit() -> None:
    data = _zip("xl/sharedStrings.xml", 16 * 1024 * 1024)
    error = rejected(lambda: read_table("xlsx", data, max_rows=100))
    assert error.code == "too_large_uncompressed"


# --- xls -----------------------------------------------------------------------------


def test_corrupt_ole_is_unreadable() -> None:
    data = OLE + b"\x00" * 504 + b"\xff" * 2048
    assert detect_kind("old.xls", data[:8192]) == "xls"
    error = rejected(lambda: read_table("xls", data, max_rows=100))
    assert error.code == "unreadable"
    assert "damaged" in error.message


def test_garbage_as_xls_is_unreadable() -> None:
    # read_table trusts the kind it is given; garbage must still end as FileRejected.
    error = rejected(lambda: read_table("xls", b"garbage" * 100, max_rows=100))
    assert error.code == "unreadable"


def test_file_rejected_fields() -> None:
    error = FileRejected("empty_file", "msg")
    assert (error.code, error.message, error.details, str(error)) == (
        "empty_file",
        "msg",
        {},
        "msg",
    )
