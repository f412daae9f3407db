"""Which E.164 number an app-side phone is: one reading, with its own region."""

from __future__ import annotations

import pytest

from onboardd.domain.matching import caller_region, user_number


@pytest.mark.parametrize(("phone", "region", "expected"), [
    ("98765 43210", "IN", "+919876543210"),
    ("098765 43210", "IN", "+919876543210"),
    ("+91 98765 43210", "IN", "+919876543210"),
    ("+91 98765 43210", "", "+919876543210"),
    ("0091 98765 43210", "", "+919876543210"),
    ("919876543210", "", "+919876543210"),  # more than 10 digits: the country code is there
    ("9876543210", "", None),  # national form and no region: not read at all
    # The same ten digits are an Indian mobile: read as one, never as +19172345678.
    ("(917) 234-5678", "IN", "+919172345678"),
    ("(917) 234-5678", "US", "+19172345678"),
    ("+1 917 234 5678", "IN", "+19172345678"),
    ("050 123 4567", "IN", None),  # an Emirati national number is not read as one
    ("050 123 4567", "AE", "+971501234567"),
    ("", "IN", None),
    (None, "IN", None),
    ("not a phone", "IN", None),
])
def test_user_number(phone: str | None, region: str, expected: str | None) -> None:
    assert user_number(phone, region) == expected


@pytest.mark.parametrize(("own", "default", "expected"), [
    ("+919876543210", "IN", "IN"),
    ("+19172345678", "IN", "US"),
    ("+971501234567", "", "AE"),
    ("+80012345678", "IN", "IN"),  # non-geographic (region 001): the default
    (None, "IN", "IN"),
    (None, "", ""),
])
def test_caller_region(own: str | None, default: str, expected: str) -> None:
    assert caller_region(own, default) == expected
