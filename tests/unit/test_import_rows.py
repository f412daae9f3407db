"""Row validation (spec §3.4) and duplicates within one file."""

from __future__ import annotations

import pytest

from onboardd.domain.columns import PhoneSource as P
from onboardd.importing.files import Table, read_table
from onboardd.importing.mapping import ColumnMapping, guess_mapping
from onboardd.importing.rows import (
    DUPLICATE_PHONE,
    INVALID_EMAIL,
    INVALID_PHONE,
    NAME_REQUIRED,
    NOT_MOBILE,
    ROW_TOO_LONG,
    RowResult,
    mark_in_file_duplicates,
    validate_row,
    validate_table,
)

HEADERS = ["Name", "Phone", "Email"]
MAPPING = ColumnMapping(name=0, phones=(P(1),), email=2)


def check(cells: list[str], mapping: ColumnMapping = MAPPING, region: str = "IN") -> RowResult:
    """Validate one row with the standard headers."""
    headers = HEADERS if mapping is MAPPING else ["First", "Last", "Phone"]
    return validate_row(cells, 7, headers, mapping, region)


def test_error_texts_are_the_spec_ones() -> None:
    assert (INVALID_PHONE, NAME_REQUIRED, INVALID_EMAIL, DUPLICATE_PHONE, ROW_TOO_LONG) == (
        "Invalid phone number format",
        "Name is required",
        "Invalid email format",
        "Duplicate phone number",
        "Row exceeds maximum length",
    )
    assert NOT_MOBILE == "Phone number is a landline and cannot receive SMS or WhatsApp"


def test_valid_row() -> None:
    result = check(["  Ravi Kumar ", "98765 43210", " ravi@example.com "])
    assert result == RowResult(
        row_number=7,
        original={"Name": "  Ravi Kumar ", "Phone": "98765 43210", "Email": " ravi@example.com "},
        name="Ravi Kumar",
        phone="+919876543210",
        email="ravi@example.com",
        errors=[],
        phone_column=1,
        phone_value="98765 43210",
    )
    assert result.valid


def test_empty_email_is_none() -> None:
    result = check(["Ravi", "9876543210", "   "])
    assert (result.email, result.errors, result.valid) == (None, [], True)


def test_first_last_joined() -> None:
    mapping = ColumnMapping(first_name=0, last_name=1, phones=(P(2),))
    assert check([" Ravi ", " Kumar ", "9876543210"], mapping).name == "Ravi Kumar"
    assert check(["Ravi", "", "9876543210"], mapping).name == "Ravi"
    assert check(["", "Kumar", "9876543210"], mapping).name == "Kumar"
    result = check(["", " ", "9876543210"], mapping)
    assert (result.name, result.errors) == (None, [NAME_REQUIRED])


@pytest.mark.parametrize("name", ["", "   "])
def test_name_required(name: str) -> None:
    result = check([name, "9876543210", ""])
    assert (result.name, result.errors, result.valid) == (None, [NAME_REQUIRED], False)


def test_name_unmapped_is_required() -> None:
    result = validate_row(["9876543210"], 2, ["Phone"], ColumnMapping(phones=(P(0),)), "IN")
    assert result.errors == [NAME_REQUIRED]


def test_name_length_bounds() -> None:
    assert check(["x" * 255, "9876543210", ""]).errors == []
    assert check(["x" * 256, "9876543210", ""]).errors == [ROW_TOO_LONG]


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("", INVALID_PHONE),
        ("12345", INVALID_PHONE),
        ("987654321", INVALID_PHONE),  # nine characters, below the spec minimum
        ("abcdefghij", INVALID_PHONE),
        ("+91 98765 43210 0000000", INVALID_PHONE),  # 23 characters, above the maximum
        ("011 2345 6789", NOT_MOBILE),
    ],
)
def test_phone_errors(raw: str, error: str) -> None:
    result = check(["Ravi", raw, ""])
    assert (result.phone, result.errors) == (None, [error])


@pytest.mark.parametrize(
    "raw",
    ["98765-432-10", "9876543210", "+91 98765 43210", "(+91) 98765-43210", "0091 98765 43210"],
)
def test_phone_accepted_formats(raw: str) -> None:
    assert check(["Ravi", raw, ""]).phone == "+919876543210"


def test_phone_region() -> None:
    assert check(["Ravi", "(415) 555-2671", ""], region="US").phone == "+14155552671"


@pytest.mark.parametrize(
    "email",
    ["plainaddress", "a@b", "a @b.com", "@example.com", "a@@b.com", "a@b.", "a@.com", "a@b..com",
     "x" * 250 + "@b.com"],
)  # fmt: skip
def test_invalid_email(email: str) -> None:
    result = check(["Ravi", "9876543210", email])
    assert (result.email, result.errors) == (None, [INVALID_EMAIL])


@pytest.mark.parametrize("email", ["a@b.co", "first.last+tag@mail.example.co.in", "Ü@exämple.de"])
def test_valid_email(email: str) -> None:
    assert check(["Ravi", "9876543210", email]).email == email


def test_several_errors() -> None:
    result = check(["", "12345", "bad"])
    assert result.errors == [NAME_REQUIRED, INVALID_PHONE, INVALID_EMAIL]


def test_row_too_long() -> None:
    result = check(["Ravi", "9876543210", "", "n" * 1001], ColumnMapping(name=0, phones=(P(1),)))
    assert result.errors == [ROW_TOO_LONG]
    wide = ["Ravi", "9876543210"] + ["n" * 900] * 5
    assert check(wide, ColumnMapping(name=0, phones=(P(1),))).errors == [ROW_TOO_LONG]


def test_row_too_long_reported_once() -> None:
    result = check(["x" * 1001, "9876543210", ""])
    assert result.errors == [ROW_TOO_LONG]


def test_original_keeps_extra_cells_and_short_rows() -> None:
    result = validate_row(["Ravi", "9876543210", "", "vip"], 3, HEADERS, MAPPING, "IN")
    assert result.original == {
        "Name": "Ravi",
        "Phone": "9876543210",
        "Email": "",
        "Column 4": "vip",
    }
    short = validate_row(["Ravi"], 3, HEADERS, MAPPING, "IN")
    assert short.original == {"Name": "Ravi"}
    assert short.errors == [INVALID_PHONE]


def _row(number: int, phone: str | None, errors: list[str] | None = None) -> RowResult:
    return RowResult(number, {}, "N", phone, None, errors or [])


def test_in_file_duplicates_first_wins() -> None:
    results = [
        _row(2, "+919876543210"),
        _row(3, "+919876543211"),
        _row(4, "+919876543210"),
        _row(5, None, [INVALID_PHONE]),
        _row(6, "+919876543210"),
    ]
    marked = mark_in_file_duplicates(results)
    assert [r.errors for r in marked] == [
        [],
        [],
        [DUPLICATE_PHONE],
        [INVALID_PHONE],
        [DUPLICATE_PHONE],
    ]
    assert marked[2].phone == "+919876543210"
    assert [r.valid for r in marked] == [True, True, False, False, False]


def test_invalid_row_does_not_claim_phone() -> None:
    # The first row has a bad email, so the second is the first valid one with this phone.
    results = [_row(2, "+919876543210", [INVALID_EMAIL]), _row(3, "+919876543210")]
    assert [r.errors for r in mark_in_file_duplicates(results)] == [[INVALID_EMAIL], []]


def test_validate_table_end_to_end() -> None:
    data = (
        b"First Name;Last Name;Mobile No.;E-mail\r\n"
        b"Ravi;Kumar;98765 43210;ravi@x.in\r\n"
        b"\r\n"
        b"Asha;;09876543210;\r\n"
        b";;12345;nope\r\n"
        b"Dev;Rao;011 2345 6789;\r\n"
    )
    table = read_table("csv", data, max_rows=100)
    results = validate_table(table, guess_mapping(table.headers), "IN")
    summary = [(r.row_number, r.name, r.phone, r.errors) for r in results]
    assert summary == [
        (2, "Ravi Kumar", "+919876543210", []),
        (4, "Asha", "+919876543210", [DUPLICATE_PHONE]),
        (5, None, None, [NAME_REQUIRED, INVALID_PHONE, INVALID_EMAIL]),
        (6, "Dev Rao", None, [NOT_MOBILE]),
    ]


def test_validate_table_10k_rows() -> None:
    """Ten thousand valid rows all validate (the speed is measured by
    tests/bench/bench_import.py)."""
    rows = [[f"Person {i}", f"98{i:08d}", f"p{i}@example.com"] for i in range(10_000)]
    table = Table(HEADERS, rows, list(range(2, 10_002)), "utf-8", ",")
    results = validate_table(table, MAPPING, "IN")
    assert len(results) == 10_000
    assert all(not r.errors for r in results)
    assert [r.row_number for r in results] == list(range(2, 10_002))
    assert (results[-1].name, results[-1].phone, results[-1].email) == (
        "Person 9999", "+919800009999", "p9999@example.com")
