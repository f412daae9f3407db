"""Tests for welcome offer validation (spec §5.3) and offer input checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from onboardd.domain.offers import (
    FieldError,
    Offer,
    OfferInput,
    Validation,
    compute_discount,
    expires_at,
    validate_offer,
    validate_offer_input,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def offer(**changes: object) -> Offer:
    """Return a 15% offer capped at ₹200, with the given fields replaced."""
    fields: dict[str, object] = {
        "id": "offer-1",
        "discount_type": "percentage",
        "discount_value": 15,
        "max_discount_in_paisa": 20000,
        "minimum_purchase_in_paisa": None,
        "validity_days": 30,
        "usage_limit": 1,
        "is_active": True,
    }
    fields.update(changes)
    return Offer(**fields)  # type: ignore[arg-type]


def check(
    o: Offer | None,
    amount: int = 100000,
    *,
    used: int = 0,
    expiry: datetime | None = None,
) -> Validation:
    """Validate with defaults for the arguments a test does not care about."""
    return validate_offer(
        o, expires_at=expiry, used_count=used, booking_amount_in_paisa=amount, now=NOW
    )


def test_missing_offer() -> None:
    assert check(None) == Validation(False, 0, "Offer not found or inactive")


def test_inactive_offer() -> None:
    assert check(offer(is_active=False)) == Validation(False, 0, "Offer not found or inactive")


def test_expired() -> None:
    result = check(offer(), expiry=NOW - timedelta(seconds=1))
    assert result == Validation(False, 0, "Offer has expired")


def test_expiring_exactly_now_is_still_valid() -> None:
    # The spec rejects only when now > expiresAt.
    assert check(offer(), expiry=NOW).valid


def test_no_redemption_row_means_no_expiry() -> None:
    assert check(offer(), expiry=None).valid


def test_used() -> None:
    assert check(offer(), used=1) == Validation(False, 0, "Offer already used")
    assert check(offer(usage_limit=3), used=2).valid
    assert check(offer(usage_limit=3), used=3) == Validation(False, 0, "Offer already used")
    assert check(offer(usage_limit=3), used=4).reason == "Offer already used"


@pytest.mark.parametrize(
    ("minimum", "reason"),
    [
        (50000, "Minimum purchase of ₹500 required"),
        (49950, "Minimum purchase of ₹499.5 required"),
        (49999, "Minimum purchase of ₹499.99 required"),
        (150001, "Minimum purchase of ₹1500.01 required"),
    ],
)
def test_below_minimum(minimum: int, reason: str) -> None:
    assert check(offer(minimum_purchase_in_paisa=minimum), amount=10000) == Validation(
        False, 0, reason
    )


def test_minimum_met_exactly() -> None:
    assert check(offer(minimum_purchase_in_paisa=50000), amount=50000).valid


def test_zero_minimum_is_no_minimum() -> None:
    assert check(offer(minimum_purchase_in_paisa=0), amount=0) == Validation(True, 0, None)


def test_checks_run_in_the_spec_order() -> None:
    everything_wrong = offer(is_active=False, minimum_purchase_in_paisa=10**9)
    past = NOW - timedelta(days=1)
    assert check(everything_wrong, used=5, expiry=past).reason == "Offer not found or inactive"
    still_wrong = offer(minimum_purchase_in_paisa=10**9)
    assert check(still_wrong, used=5, expiry=past).reason == "Offer has expired"
    assert check(still_wrong, used=5).reason == "Offer already used"
    assert check(still_wrong).reason == "Minimum purchase of ₹10000000 required"


@pytest.mark.parametrize(
    ("value", "cap", "amount", "discount"),
    [
        (15, 20000, 100000, 15000),  # under the cap
        (15, 20000, 200000, 20000),  # capped
        (15, 20000, 133334, 20000),  # 20000.1 -> capped
        (15, None, 1000000, 150000),  # no cap
        (15, 0, 1000000, 150000),  # a 0 cap is no cap, like the spec's falsy check
        (15, 20000, 999, 149),  # 149.85 floors
        (33, None, 1, 0),  # 0.33 floors to 0
        (33, None, 100, 33),
        (10, None, 99999, 9999),  # 9999.9 floors
        (100, None, 54321, 54321),
        (1, None, 0, 0),
    ],
)
def test_percentage_discount(value: int, cap: int | None, amount: int, discount: int) -> None:
    o = offer(discount_value=value, max_discount_in_paisa=cap)
    assert check(o, amount) == Validation(True, discount, None)
    assert compute_discount(o, amount) == discount


@pytest.mark.parametrize(
    ("value", "amount", "discount"),
    [
        (10000, 100000, 10000),
        (10000, 10000, 10000),
        # Deviation from the spec: never more than the booking itself.
        (10000, 5000, 5000),
        (10000, 0, 0),
    ],
)
def test_fixed_discount(value: int, amount: int, discount: int) -> None:
    o = offer(discount_type="fixed", discount_value=value, max_discount_in_paisa=None)
    assert check(o, amount) == Validation(True, discount, None)


def test_fixed_ignores_a_stored_cap() -> None:
    o = offer(discount_type="fixed", discount_value=10000, max_discount_in_paisa=500)
    assert compute_discount(o, 100000) == 10000


@given(
    value=st.integers(min_value=1, max_value=100),
    cap=st.none() | st.integers(min_value=1, max_value=10**7),
    amount=st.integers(min_value=0, max_value=10**10),
)
def test_percentage_discount_matches_exact_math(value: int, cap: int | None, amount: int) -> None:
    o = offer(discount_value=value, max_discount_in_paisa=cap)
    discount = compute_discount(o, amount)
    exact = amount * value // 100
    assert discount == (min(exact, cap) if cap else exact)
    assert 0 <= discount <= amount


def test_negative_amount_is_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        compute_discount(offer(), -1)


def test_unknown_discount_type() -> None:
    with pytest.raises(ValueError, match="discount type"):
        compute_discount(offer(discount_type="bogo"), 100)


def test_expires_at() -> None:
    registered = datetime(2025, 1, 31, 23, 30, tzinfo=UTC)
    assert expires_at(registered, 30) == datetime(2025, 3, 2, 23, 30, tzinfo=UTC)
    assert expires_at(registered, 1) == datetime(2025, 2, 1, 23, 30, tzinfo=UTC)


# --- offer input ------------------------------------------------------------------


def offer_input(**changes: object) -> OfferInput:
    """Return a valid percentage offer input with the given fields replaced."""
    fields: dict[str, object] = {
        "name": "Welcome 15%",
        "discountType": "percentage",
        "discountValue": 15,
    }
    fields.update(changes)
    return msgspec.convert(fields, OfferInput)  # camelCase keys, as the API sends them


def errors(**changes: object) -> list[tuple[str, str]]:
    """Return (field, message) pairs for an input."""
    return [(e.field, e.message) for e in validate_offer_input(offer_input(**changes))]


def test_defaults() -> None:
    data = offer_input()
    assert (data.validity_days, data.usage_limit, data.is_active) == (30, 1, True)
    assert data.max_discount_in_paisa is None
    assert data.minimum_purchase_in_paisa is None


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"name": "x"},
        {"name": "x" * 255},
        {"discountValue": 1},
        {"discountValue": 100},
        {"maxDiscountInPaisa": 1},
        {"minimumPurchaseInPaisa": 0},
        {"minimumPurchaseInPaisa": 50000},
        {"validityDays": 1},
        {"validityDays": 365},
        {"usageLimit": 5},
        {"isActive": False},
        {"discountType": "fixed", "discountValue": 10000},
        {"discountType": "fixed", "discountValue": 1},
        {"discountType": "fixed", "discountValue": 2_147_483_647},
    ],
)
def test_valid_inputs(changes: dict[str, object]) -> None:
    assert errors(**changes) == []


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": ""}, "name", "name is required: give the offer a name"),
        ({"name": "  \t"}, "name", "name is required: give the offer a name"),
        ({"name": "x" * 256}, "name", "name must be at most 255 characters (got 256)"),
        (
            {"discountType": "bogo"},
            "discountType",
            "discountType must be 'percentage' or 'fixed' (got 'bogo')",
        ),
        (
            {"discountType": "Percentage"},
            "discountType",
            "discountType must be 'percentage' or 'fixed' (got 'Percentage')",
        ),
        (
            {"discountValue": 0},
            "discountValue",
            "discountValue must be between 1 and 100 for a percentage offer (got 0)",
        ),
        (
            {"discountValue": 101},
            "discountValue",
            "discountValue must be between 1 and 100 for a percentage offer (got 101)",
        ),
        (
            {"discountType": "fixed", "discountValue": 0},
            "discountValue",
            "discountValue must be a positive amount in paisa for a fixed offer, "
            "at most 2147483647 (e.g. 10000 for ₹100; got 0)",
        ),
        (
            {"discountType": "fixed", "discountValue": 2_147_483_648},
            "discountValue",
            "discountValue must be a positive amount in paisa for a fixed offer, "
            "at most 2147483647 (e.g. 10000 for ₹100; got 2147483648)",
        ),
        (
            {"discountType": "fixed", "discountValue": 100, "maxDiscountInPaisa": 50},
            "maxDiscountInPaisa",
            "maxDiscountInPaisa applies only to percentage offers: remove it for a fixed offer",
        ),
        (
            {"maxDiscountInPaisa": 0},
            "maxDiscountInPaisa",
            "maxDiscountInPaisa must be between 1 and 2147483647 paisa, "
            "or omitted for no cap (got 0)",
        ),
        (
            {"minimumPurchaseInPaisa": -1},
            "minimumPurchaseInPaisa",
            "minimumPurchaseInPaisa must be between 0 and 2147483647 paisa, "
            "or omitted for no minimum (got -1)",
        ),
        (
            {"validityDays": 0},
            "validityDays",
            "validityDays must be between 1 and 365 (got 0)",
        ),
        (
            {"validityDays": 366},
            "validityDays",
            "validityDays must be between 1 and 365 (got 366)",
        ),
        (
            {"usageLimit": 0},
            "usageLimit",
            "usageLimit must be between 1 and 2147483647 uses per customer (got 0)",
        ),
    ],
)
def test_invalid_field(changes: dict[str, object], field: str, message: str) -> None:
    assert errors(**changes) == [(field, message)]


def test_unknown_type_skips_the_value_check() -> None:
    assert [f for f, _ in errors(discountType="bogo", discountValue=-5)] == ["discountType"]


def test_every_error_is_reported() -> None:
    result = validate_offer_input(
        OfferInput(
            name="",
            discount_type="percentage",
            discount_value=0,
            max_discount_in_paisa=-1,
            minimum_purchase_in_paisa=-1,
            validity_days=0,
            usage_limit=0,
        )
    )
    assert [e.field for e in result] == [
        "name",
        "discountValue",
        "maxDiscountInPaisa",
        "minimumPurchaseInPaisa",
        "validityDays",
        "usageLimit",
    ]
    assert all(isinstance(e, FieldError) for e in result)


def test_stored_percentage_above_100_never_exceeds_the_booking() -> None:
    assert compute_discount(offer(discount_value=150, max_discount_in_paisa=None), 1000) == 1000
