"""The PII access log's window, where an import row holds a number, and re-encryption."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from onboardd.domain.audit import DEFAULT_DAYS, BadParameter, parse_bound, window
from onboardd.pii import PiiCipher
from onboardd.services.import_holds import cell_holds, holds_phone

IST = timezone(timedelta(hours=5, minutes=30))
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_dates_are_whole_days_in_the_salons_timezone() -> None:
    start, end = window(parse_bound("from", "2026-11-01"), parse_bound("to", "2026-11-30"),
                        "Asia/Kolkata", NOW)
    assert start == datetime(2026, 11, 1, tzinfo=IST)
    assert end == datetime(2026, 12, 1, tzinfo=IST)  # the 30th included


def test_times_are_instants_and_defaults_end_now() -> None:
    start, end = window(parse_bound("from", "2026-12-02T10:00:00Z"), None, "Asia/Kolkata", NOW)
    assert (start, end) == (datetime(2026, 12, 2, 10, tzinfo=UTC), NOW)
    assert window(None, None, "UTC", NOW) == (NOW - timedelta(days=DEFAULT_DAYS), NOW)
    mixed = window(parse_bound("from", "2026-12-01"),
                   parse_bound("to", "2026-12-02T18:00:00+05:30"), "Asia/Kolkata", NOW)
    assert mixed == (datetime(2026, 12, 1, tzinfo=IST), datetime(2026, 12, 2, 18, tzinfo=IST))


@pytest.mark.parametrize(("name", "raw", "says"), [
    ("from", "yesterday", "not a date or time"),
    ("to", "2026-02-30", "not a date or time"),
    ("from", "2026-12-02T10:00:00", "no UTC offset"),
    ("to", "0001-01-01", "out of range"),
    ("from", "9999-12-31T00:00:00Z", "out of range"),
    ("from", "२०२६-१२-०२", "not a date or time"),
    ("to", "x" * 500, "not a date or time"),
])
def test_bad_bounds_name_the_parameter(name: str, raw: str, says: str) -> None:
    with pytest.raises(BadParameter) as caught:
        parse_bound(name, raw)
    assert caught.value.parameter == name and says in caught.value.reason


def test_from_must_come_before_to() -> None:
    with pytest.raises(BadParameter) as caught:
        window(date(2026, 12, 2), date(2026, 12, 1), "UTC", NOW)
    assert caught.value.parameter == "from"
    with pytest.raises(BadParameter):
        window(NOW, NOW, "UTC", NOW)


@pytest.mark.parametrize("cell", [
    "9876543210", "+91 98765 43210", "098765-432-10", "(+91) 98765.43210",
    "022 2345 6789 ::: 98765 43210", "9123456789 / 9876543210", "home: 9876543210; x",
])
def test_a_cell_holding_the_number_in_any_format(cell: str) -> None:
    assert cell_holds(cell, "+919876543210", "IN")


@pytest.mark.parametrize("cell", ["9876543211", "19876543210", "98765", "", "Priya"])
def test_cells_not_holding_it(cell: str) -> None:
    assert not cell_holds(cell, "+919876543210", "IN")


def test_a_row_holds_it_in_any_column_but_not_across_cells() -> None:
    assert holds_phone({"Name": "P", "Notes": "call 98765 43210"}, "+919876543210", "IN")
    assert not holds_phone({"A": "98765", "B": "43210"}, "+919876543210", "IN")


def test_reencrypt_moves_a_ciphertext_to_the_current_key() -> None:
    old = PiiCipher("k1", b"a" * 32, b"h" * 32)
    new = PiiCipher("k2", b"b" * 32, b"h" * 32, retired={"k1": b"a" * 32})
    token = old.encrypt("+919876543210", "phone")
    moved = new.reencrypt(token, "phone")
    assert moved.startswith("k2$") and new.reencrypt(moved, "phone") == moved
    assert PiiCipher("k2", b"b" * 32, b"h" * 32).decrypt(moved, "phone") == "+919876543210"
    assert new.knows("k1") and new.knows("k2") and not new.knows("k3")
