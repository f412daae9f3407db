"""Phone normalisation, spreadsheet cell text and masking."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onboardd.domain.phones import (
    INVALID_PHONE,
    NOT_MOBILE,
    PhoneError,
    cell_to_text,
    mask_phone,
    normalize_phone,
)

SPEC_TABLE = [
    ("9876543210", "+919876543210"),
    ("09876543210", "+919876543210"),
    ("919876543210", "+919876543210"),
    ("+919876543210", "+919876543210"),
    ("98765 43210", "+919876543210"),
    ("98765-432-10", "+919876543210"),
]

REAL_WORLD_IN = [
    ("(+91) 98765-43210", "+919876543210"),
    ("+91 98765 43210", "+919876543210"),
    ("+91-98765-43210", "+919876543210"),
    ("0091 98765 43210", "+919876543210"),
    ("tel:+919876543210", "+919876543210"),
    ("TEL:+91 98765 43210", "+919876543210"),
    ("  9876543210  ", "+919876543210"),
    ("\u00a09876543210\u00a0", "+919876543210"),
    ("\t+91 98765\u00a043210\n", "+919876543210"),
    ("98765.43210", "+919876543210"),
    ("(98765) 43210", "+919876543210"),
    ("+91 (0) 98765 43210", "+919876543210"),
    ("９８７６５４３２１０", "+919876543210"),
    ("+９１９８７６５４３２１０", "+919876543210"),
    ("7012345678", "+917012345678"),
    ("6001234567", "+916001234567"),
]

OTHER_COUNTRIES_FROM_IN = [
    # Spec rule: more than 10 digits that are not an Indian number carry a country code.
    ("447911123456", "+447911123456"),
    ("+44 7911 123456", "+447911123456"),
    ("971501234567", "+971501234567"),
    ("00971501234567", "+971501234567"),
    ("+1 (415) 555-2671", "+14155552671"),
    ("14155552671", "+14155552671"),
]

REGIONS = [
    ("2025550123", "US", "+12025550123"),
    ("(415) 555-2671", "US", "+14155552671"),
    ("1-415-555-2671", "US", "+14155552671"),
    ("07911 123456", "GB", "+447911123456"),
    ("7911 123456", "GB", "+447911123456"),
    ("050 123 4567", "AE", "+971501234567"),
    ("501234567", "AE", "+971501234567"),
    ("+919876543210", "US", "+919876543210"),
    ("0091 98765 43210", "GB", "+919876543210"),
    ("011 91 98765 43210", "US", "+919876543210"),
]

INVALID = [
    "12345",
    "abcdefghij",
    "",
    "   ",
    "+",
    "98765",
    "987654321",  # nine digits
    "0000000000",
    "+91 00000 00000",
    "+91 98765 4321",  # nine national digits
    "98765432101234567890",
    "9876543210 ext 12",
    "98765 43210 x12",
    "CALL-ME-NOW",
    "9876543210abc",
    "tel:",
    "+999 9876543210",
    "not a phone",
]

LANDLINES = [
    ("011 2345 6789", "IN"),  # Delhi
    ("+91 11 2345 6789", "IN"),
    ("022 2345 6789", "IN"),  # Mumbai
    ("020 7946 0958", "GB"),  # London
    ("+44 20 7946 0958", "IN"),
    ("0800 123 4567", "GB"),  # toll-free is not a mobile either
    ("+1 800 555 0199", "US"),
    ("04 234 5678", "AE"),  # Dubai
    ("1234567890", "IN"),  # reads as an Indian landline, not as garbage
]


@pytest.mark.parametrize(("raw", "expected"), SPEC_TABLE)
def test_spec_table(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), REAL_WORLD_IN + OTHER_COUNTRIES_FROM_IN)
def test_real_world_formats_default_region(raw: str, expected: str) -> None:
    assert normalize_phone(raw, "IN") == expected


@pytest.mark.parametrize(("raw", "region", "expected"), REGIONS)
def test_other_regions(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize("raw", INVALID)
def test_invalid(raw: str) -> None:
    with pytest.raises(PhoneError) as caught:
        normalize_phone(raw)
    assert caught.value.message == INVALID_PHONE
    assert str(caught.value) == "Invalid phone number format"


@pytest.mark.parametrize(("raw", "region"), LANDLINES)
def test_landline_rejected(raw: str, region: str) -> None:
    with pytest.raises(PhoneError) as caught:
        normalize_phone(raw, region)
    assert caught.value.message == NOT_MOBILE
    assert NOT_MOBILE == "Phone number is a landline and cannot receive SMS or WhatsApp"


def test_national_reading_wins_over_plus_rule() -> None:
    # 12 digits starting 91 are an Indian number with its country code, not "+91...".
    assert normalize_phone("919876543210", "IN") == "+919876543210"
    # A valid national landline is refused rather than reinterpreted abroad.
    with pytest.raises(PhoneError):
        normalize_phone("02025550123", "IN")


def test_phone_error_is_value_error() -> None:
    assert issubclass(PhoneError, ValueError)


_SEPARATORS = st.sampled_from(["", " ", "-", ".", "  ", "\u00a0", "(", ")", "/"])


@st.composite
def messy_numbers(draw: st.DrawFn) -> str:
    """Digit strings with random separators and optional prefixes."""
    digits = draw(st.text(alphabet="0123456789", min_size=5, max_size=16))
    prefix = draw(st.sampled_from(["", "+", "00", "0", "+91", "91", "tel:", "(+91) ", "+44 "]))
    pieces = [prefix]
    for digit in digits:
        pieces.append(digit)
        pieces.append(draw(_SEPARATORS))
    return "".join(pieces)


@st.composite
def plausible_numbers(draw: st.DrawFn) -> str:
    """Mostly-valid mobiles so the property does not only see rejections."""
    national = draw(st.sampled_from(["9", "8", "7", "6"])) + draw(
        st.text(alphabet="0123456789", min_size=9, max_size=9)
    )
    prefix = draw(st.sampled_from(["", "0", "91", "+91", "+91 ", "0091"]))
    return prefix + national


_MOBILES = st.builds(
    lambda prefix, head, tail: prefix + head + tail,
    st.sampled_from(["", "0", "91", "+91", "+91 ", "0091"]),
    st.sampled_from(["98", "99"]),  # mobile series only (7100..., say, is a landline)
    st.text(alphabet="0123456789", min_size=8, max_size=8),
)


@settings(max_examples=400, deadline=None)
@given(raw=_MOBILES, region=st.sampled_from(["IN", "US", "GB", "AE"]))
def test_idempotent(raw: str, region: str) -> None:
    # An Indian mobile, read in India or written with +91 anywhere, is always valid:
    # no PhoneError may end this property early.
    national = raw[-10:]
    if region != "IN":
        raw = "+91 " + national
    once = normalize_phone(raw, region)
    assert once == "+91" + national
    assert normalize_phone(once, region) == once
    # E.164 carries its own country, so any salon region reads it the same way.
    assert normalize_phone(once, "US") == once


@settings(max_examples=400, deadline=None)
@given(raw=messy_numbers(), region=st.sampled_from(["IN", "US", "GB", "AE"]))
def test_messy_numbers_are_idempotent_or_refused_with_a_reason(raw: str, region: str) -> None:
    refusal: PhoneError | None = None
    try:
        once = normalize_phone(raw, region)
    except PhoneError as exc:
        refusal = exc
    if refusal is not None:
        # The expected refusal: a PhoneError (nothing else) with a reason a user can read.
        assert type(refusal) is PhoneError
        assert refusal.message.strip() and refusal.message == str(refusal)
        return
    assert once.startswith("+") and once[1:].isdigit()
    assert normalize_phone(once, region) == once
    assert normalize_phone(once, "US") == once


@settings(max_examples=200, deadline=None)
@given(raw=st.text(max_size=30), region=st.sampled_from(["IN", "US", "GB", "AE"]))
def test_never_raises_anything_but_phone_error(raw: str, region: str) -> None:
    outcome: str
    try:
        outcome = normalize_phone(raw, region)
    except PhoneError as exc:
        outcome = exc.message
    assert outcome in {INVALID_PHONE, NOT_MOBILE} or outcome.startswith("+")


def test_10k_mobiles_normalize() -> None:
    """Ten thousand numbers in a row (the speed is measured by tests/bench/bench_import.py)."""
    raws = [f"98{i:08d}" for i in range(10_000)]
    assert [normalize_phone(raw) for raw in raws] == [f"+91{raw}" for raw in raws]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (9876543210.0, "9876543210"),
        (919876543210.0, "919876543210"),
        (9876543210, "9876543210"),
        (0, "0"),
        (12.5, "12.5"),
        (-3.0, "-3"),
        ("9.87654321E9", "9876543210"),
        ("9.876543210E+09", "9876543210"),
        ("9.19876543210E+11", "919876543210"),
        ("9.8765432E+09", "9876543200"),
        # Excel's rounded display: converting would invent a wrong number.
        ("9.87654E+09", "9.87654E+09"),
        ("9.19877E+11", "9.19877E+11"),
        # Not integral, too short or too long: left as typed.
        ("9.87654321E5", "9.87654321E5"),
        ("1.5E3", "1.5E3"),
        ("1.234567890123456E+16", "1.234567890123456E+16"),
        ("-9.87654321E9", "-9.87654321E9"),
        ("  Ravi Kumar \t", "Ravi Kumar"),
        # NUL characters (Excel's _x0000_) are dropped: PostgreSQL text cannot hold them.
        ("Ra\x00vi\x00 ", "Ravi"),
        ("98765\x0043210", "9876543210"),
        ("\x00", ""),
        ("+91 98765 43210", "+91 98765 43210"),
        ("", ""),
        (None, ""),
        (True, "TRUE"),
        (False, "FALSE"),
        (dt.datetime(2024, 3, 1), "2024-03-01"),
        (dt.datetime(2024, 3, 1, 9, 30), "2024-03-01T09:30:00"),
        (dt.date(2024, 3, 1), "2024-03-01"),
        (dt.time(9, 30), "09:30:00"),
        (dt.timedelta(hours=1), "1:00:00"),
    ],
)
def test_cell_to_text(value: object, expected: str) -> None:
    assert cell_to_text(value) == expected


def test_excel_cells_normalize() -> None:
    assert normalize_phone(cell_to_text(9876543210.0)) == "+919876543210"
    assert normalize_phone(cell_to_text(919876543210.0)) == "+919876543210"
    assert normalize_phone(cell_to_text("9.87654321E9")) == "+919876543210"


@pytest.mark.parametrize(
    ("e164", "expected"),
    [
        ("+919876543210", "+91******3210"),
        ("+14155552671", "+1******2671"),
        ("+447911123456", "+44******3456"),
        ("+971501234567", "+971*****4567"),
        ("9876543210", "******3210"),
        ("", ""),
    ],
)
def test_mask_phone(e164: str, expected: str) -> None:
    assert mask_phone(e164) == expected
