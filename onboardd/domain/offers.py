"""Welcome offers: redemption validation (spec §5.3) and admin input checks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import msgspec

from onboardd.domain.money import rupees_plain

DISCOUNT_TYPES: Final = ("percentage", "fixed")
# Offer amounts live in PostgreSQL `integer` columns.
INT32_MAX: Final = 2_147_483_647

NOT_FOUND: Final = "Offer not found or inactive"
EXPIRED: Final = "Offer has expired"
USED: Final = "Offer already used"


class Offer(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A salon's welcome offer: the one shape from the database row to the JSON boundary.

    ``is_active`` is a bool here; the column is an integer, converted once where the row is
    read (onboardd.db.offers). The bookkeeping fields have defaults so the pure rules can be
    exercised on an offer that never was a row.
    """

    id: str
    discount_type: str
    discount_value: int
    max_discount_in_paisa: int | None
    minimum_purchase_in_paisa: int | None
    validity_days: int
    usage_limit: int
    is_active: bool
    name: str = ""
    salon_id: str = ""
    total_redemptions: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Validation(msgspec.Struct, frozen=True):
    """The outcome of checking an offer against a booking."""

    valid: bool
    discount: int
    reason: str | None


class OfferInput(msgspec.Struct, kw_only=True, rename="camel"):
    """The admin-editable fields of an offer, as the API receives them (camelCase on the
    wire) and as they are written."""

    name: str
    discount_type: str
    discount_value: int
    max_discount_in_paisa: int | None = None
    minimum_purchase_in_paisa: int | None = None
    validity_days: int = 30
    usage_limit: int = 1
    is_active: bool = True


class OfferPatch(msgspec.Struct, kw_only=True, rename="camel"):
    """A change to an offer: absent fields keep their value, null clears an optional one."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    discount_type: str | msgspec.UnsetType = msgspec.UNSET
    discount_value: int | msgspec.UnsetType = msgspec.UNSET
    max_discount_in_paisa: int | msgspec.UnsetType | None = msgspec.UNSET
    minimum_purchase_in_paisa: int | msgspec.UnsetType | None = msgspec.UNSET
    validity_days: int | msgspec.UnsetType = msgspec.UNSET
    usage_limit: int | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET


def editable(offer: Offer) -> OfferInput:
    """The editable fields of a stored offer (the base a patch is merged into)."""
    return OfferInput(**{name: getattr(offer, name) for name in OfferInput.__struct_fields__})


def patched(offer: Offer, patch: OfferPatch) -> OfferInput:
    """The offer's editable fields with the patch's given fields applied."""
    changes = {name: value for name, value in msgspec.structs.asdict(patch).items()
               if value is not msgspec.UNSET}
    return msgspec.structs.replace(editable(offer), **changes)


class FieldError(msgspec.Struct):
    """One invalid field and how to fix it."""

    field: str
    message: str


def _invalid(reason: str) -> Validation:
    """Return a rejection with no discount."""
    return Validation(valid=False, discount=0, reason=reason)


def compute_discount(offer: Offer, amount: int) -> int:
    """Return the discount in paisa that an offer gives on a booking amount."""
    if amount < 0:
        raise ValueError(f"booking amount must not be negative: {amount} paisa")
    if offer.discount_type == "percentage":
        # Integer floor division is the spec's Math.floor without float error.
        discount = amount * offer.discount_value // 100
        if offer.max_discount_in_paisa and discount > offer.max_discount_in_paisa:
            discount = offer.max_discount_in_paisa
        # Only a stored value above 100% (which input validation forbids) could
        # exceed the booking; clamp it for the same reason as fixed offers.
        return min(discount, amount)
    if offer.discount_type == "fixed":
        # Deviation from the spec, which returns the full value: a ₹100 offer on
        # a ₹50 booking gives ₹50, never a negative bill or cash back.
        return min(offer.discount_value, amount)
    raise ValueError(f"offer {offer.id} has unknown discount type {offer.discount_type!r}")


def validate_offer(
    offer: Offer | None,
    *,
    expires_at: datetime | None,
    used_count: int,
    booking_amount_in_paisa: int,
    now: datetime,
) -> Validation:
    """Check an offer against a booking in the spec's order and compute the discount."""
    if offer is None or not offer.is_active:
        return _invalid(NOT_FOUND)
    # No redemption row means no expiry yet, as in the spec.
    if expires_at is not None and now > expires_at:
        return _invalid(EXPIRED)
    if used_count >= offer.usage_limit:
        return _invalid(USED)
    minimum = offer.minimum_purchase_in_paisa
    if minimum and booking_amount_in_paisa < minimum:
        return _invalid(f"Minimum purchase of ₹{rupees_plain(minimum)} required")
    return Validation(
        valid=True, discount=compute_discount(offer, booking_amount_in_paisa), reason=None
    )


def expires_at(registered_at: datetime, validity_days: int) -> datetime:
    """Return when an offer claimed at registration stops being valid."""
    return registered_at + timedelta(days=validity_days)


def _check_name(name: str) -> list[FieldError]:
    """Check the offer name."""
    if not name.strip():
        return [FieldError("name", "name is required: give the offer a name")]
    if len(name) > 255:
        return [FieldError("name", f"name must be at most 255 characters (got {len(name)})")]
    return []


def _check_value(data: OfferInput) -> list[FieldError]:
    """Check the discount value against the discount type."""
    value = data.discount_value
    if data.discount_type == "percentage" and not 1 <= value <= 100:
        msg = f"discountValue must be between 1 and 100 for a percentage offer (got {value})"
        return [FieldError("discountValue", msg)]
    if data.discount_type == "fixed" and not 1 <= value <= INT32_MAX:
        msg = (
            "discountValue must be a positive amount in paisa for a fixed offer, "
            f"at most {INT32_MAX} (e.g. 10000 for ₹100; got {value})"
        )
        return [FieldError("discountValue", msg)]
    return []


def _check_type(data: OfferInput) -> list[FieldError]:
    """Check the discount type, then the value that depends on it."""
    if data.discount_type not in DISCOUNT_TYPES:
        msg = f"discountType must be 'percentage' or 'fixed' (got {data.discount_type!r})"
        return [FieldError("discountType", msg)]
    return _check_value(data)


def _check_cap(data: OfferInput) -> list[FieldError]:
    """Check the percentage cap."""
    cap = data.max_discount_in_paisa
    if cap is None:
        return []
    if data.discount_type == "fixed":
        msg = "maxDiscountInPaisa applies only to percentage offers: remove it for a fixed offer"
        return [FieldError("maxDiscountInPaisa", msg)]
    if not 1 <= cap <= INT32_MAX:
        msg = (
            f"maxDiscountInPaisa must be between 1 and {INT32_MAX} paisa, "
            f"or omitted for no cap (got {cap})"
        )
        return [FieldError("maxDiscountInPaisa", msg)]
    return []


def _check_minimum(minimum: int | None) -> list[FieldError]:
    """Check the minimum purchase."""
    if minimum is None or 0 <= minimum <= INT32_MAX:
        return []
    msg = (
        f"minimumPurchaseInPaisa must be between 0 and {INT32_MAX} paisa, "
        f"or omitted for no minimum (got {minimum})"
    )
    return [FieldError("minimumPurchaseInPaisa", msg)]


def _check_limits(data: OfferInput) -> list[FieldError]:
    """Check validity days and the per-customer usage limit."""
    errors: list[FieldError] = []
    if not 1 <= data.validity_days <= 365:
        msg = f"validityDays must be between 1 and 365 (got {data.validity_days})"
        errors.append(FieldError("validityDays", msg))
    if not 1 <= data.usage_limit <= INT32_MAX:
        msg = (
            f"usageLimit must be between 1 and {INT32_MAX} uses per customer "
            f"(got {data.usage_limit})"
        )
        errors.append(FieldError("usageLimit", msg))
    return errors


def validate_offer_input(data: OfferInput) -> list[FieldError]:
    """Return every problem with an offer the admin submitted; empty when valid."""
    return [
        *_check_name(data.name),
        *_check_type(data),
        *_check_cap(data),
        *_check_minimum(data.minimum_purchase_in_paisa),
        *_check_limits(data),
    ]
