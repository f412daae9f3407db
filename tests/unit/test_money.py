"""Tests for rupee formatting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onboardd.domain.money import format_rupees, rupees_plain


@pytest.mark.parametrize(
    ("paisa", "expected"),
    [
        (0, "₹0"),
        (1, "₹0.01"),
        (10, "₹0.10"),
        (99, "₹0.99"),
        (100, "₹1"),
        (150, "₹1.50"),
        (10000, "₹100"),
        (99900, "₹999"),
        (100000, "₹1,000"),
        (999999, "₹9,999.99"),
        (1000000, "₹10,000"),
        (10000000, "₹1,00,000"),
        (100000000, "₹10,00,000"),
        (1000000000, "₹1,00,00,000"),
        (12345678900, "₹12,34,56,789"),
        (12345678901, "₹12,34,56,789.01"),
        (123456789012300, "₹12,34,56,78,90,123"),
    ],
)
def test_format_rupees(paisa: int, expected: str) -> None:
    assert format_rupees(paisa) == expected


def test_format_rupees_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_rupees(-1)


@pytest.mark.parametrize("bad", [1.5, True, "100"])
def test_format_rupees_rejects_non_int(bad: object) -> None:
    with pytest.raises(TypeError):
        format_rupees(bad)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=10**15))
def test_format_rupees_round_trips(paisa: int) -> None:
    text = format_rupees(paisa)
    whole, _, paise = text[1:].partition(".")
    groups = whole.split(",")
    assert len(groups[-1]) <= 3
    assert all(len(g) == 2 for g in groups[1:-1])
    assert int(whole.replace(",", "")) * 100 + int(paise or "0") == paisa


@pytest.mark.parametrize(
    ("paisa", "expected"),
    [
        (0, "0"),
        (1, "0.01"),
        (5, "0.05"),
        (10, "0.1"),
        (50000, "500"),
        (49950, "499.5"),
        (49999, "499.99"),
        (100000, "1000"),
        (12345678900, "123456789"),
    ],
)
def test_rupees_plain_matches_javascript(paisa: int, expected: str) -> None:
    assert rupees_plain(paisa) == expected


@given(st.integers(min_value=0, max_value=10**12))
def test_rupees_plain_equals_js_number_text(paisa: int) -> None:
    # Python's repr of a float is the same shortest round-trip text JS prints.
    as_js = repr(paisa / 100)
    assert rupees_plain(paisa) == as_js.removesuffix(".0")


def test_rupees_plain_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        rupees_plain(-100)
