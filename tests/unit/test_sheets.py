"""Tests for the spreadsheet rules: sheet names Excel accepts, cell text, local times."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
import xlsxwriter
from hypothesis import given
from hypothesis import strategies as st

from onboardd.domain.sheets import (
    CELL_TEXT_MAX,
    SHEET_NAME_MAX,
    cell_text,
    export_filename,
    local_time,
    rupees,
    sheet_name,
    unique_sheet_names,
)

FORBIDDEN = set("[]:*?/\\")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Summary", "Summary"),
        ("Q1/Q2 [draft]: ok?", "Q1_Q2 _draft__ ok_"),
        ("a*b\\c", "a_b_c"),
        ("x" * 40, "x" * 31),
        ("'quoted'", "quoted"),
        ("  spaced  ", "spaced"),
        ("", "Sheet"),
        ("'''", "Sheet"),
        ("History", "History_"),
        ("history", "history_"),
        ("tab\there", "tab_here"),
        ("₹ offers", "₹ offers"),
        ("x" * 30 + "'y", "x" * 30),  # cut at 31, then no trailing apostrophe
    ],
)
def test_sheet_name(raw: str, expected: str) -> None:
    assert sheet_name(raw) == expected


def test_sheet_name_fallback_is_configurable() -> None:
    assert sheet_name("[]", fallback="Data") == "__"
    assert sheet_name(" ", fallback="Data") == "Data"


@given(st.text(max_size=80))
def test_any_text_gives_a_name_excel_accepts(raw: str) -> None:
    name = sheet_name(raw)
    assert 1 <= len(name) <= SHEET_NAME_MAX
    assert not FORBIDDEN & set(name)
    assert not name.startswith("'") and not name.endswith("'")
    # XlsxWriter applies Excel's rules when the sheet is added.
    book = xlsxwriter.Workbook(io.BytesIO(), {"in_memory": True})
    assert book.add_worksheet(name).name == name


def test_unique_names_differ_ignoring_case_and_fit() -> None:
    names = unique_sheet_names(["Daily", "daily", "DAILY", "x" * 40, "x" * 31])
    assert names == ["Daily", "daily (2)", "DAILY (3)", "x" * 31, "x" * 27 + " (2)"]
    assert all(len(n) <= SHEET_NAME_MAX for n in names)


@given(st.lists(st.text(max_size=40), max_size=12))
def test_unique_names_are_all_accepted_in_one_workbook(raws: list[str]) -> None:
    book = xlsxwriter.Workbook(io.BytesIO(), {"in_memory": True})
    for name in unique_sheet_names(raws):
        book.add_worksheet(name)


def test_cell_text_is_cut_to_excels_limit() -> None:
    assert cell_text("=HYPERLINK(\"x\")") == "=HYPERLINK(\"x\")"
    assert len(cell_text("a" * (CELL_TEXT_MAX + 5))) == CELL_TEXT_MAX


def test_local_time_is_the_wall_clock_without_zone() -> None:
    at = datetime(2026, 3, 31, 20, 0, tzinfo=UTC)
    assert local_time(at, "Asia/Kolkata") == datetime(2026, 4, 1, 1, 30)
    assert local_time(None, "Asia/Kolkata") is None
    assert local_time(datetime(2026, 1, 1, 9), "Asia/Kolkata") == datetime(2026, 1, 1, 9)


def test_rupees_and_file_name() -> None:
    assert rupees(12345) == 123.45
    assert rupees(0) == 0
    assert (export_filename(date(2026, 1, 1), date(2026, 3, 31))
            == "onboardd-analytics-2026-01-01-2026-03-31.xlsx")


def test_names_are_cut_by_utf16_units_as_excel_counts() -> None:
    astral = "𐀀"  # one character, two UTF-16 code units
    assert sheet_name("0" * 20 + astral * 6) == "0" * 20 + astral * 5
    assert unique_sheet_names([astral * 20, astral * 20])[1] == astral * 13 + " (2)"
