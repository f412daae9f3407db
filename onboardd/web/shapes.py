"""JSON shapes of welcome offers and redemptions, shared by the admin and the mobile APIs."""

from __future__ import annotations

from datetime import datetime

import msgspec

from onboardd.db.offers import RedemptionRow
from onboardd.domain.offers import Offer
from onboardd.domain.templates import offer_amount_text


class AppOffer(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A welcome offer as the app shows it: what a customer needs to use it."""

    id: str
    name: str
    discount_type: str
    discount_value: int
    max_discount_in_paisa: int | None
    minimum_purchase_in_paisa: int | None
    validity_days: int
    # The discount as the invitation says it: "₹100" (fixed) or "15%" (percentage).
    offer_amount: str


class AdminOffer(AppOffer, frozen=True, kw_only=True):
    """A welcome offer as its salon's admin sees it: also its limits, state and counters."""

    salon_id: str
    usage_limit: int
    is_active: bool
    total_redemptions: int
    created_at: datetime | None
    updated_at: datetime | None


def app_offer(offer: Offer) -> AppOffer:
    """The offer as the app sees it."""
    return AppOffer(id=offer.id, name=offer.name, discount_type=offer.discount_type,
                    discount_value=offer.discount_value,
                    max_discount_in_paisa=offer.max_discount_in_paisa,
                    minimum_purchase_in_paisa=offer.minimum_purchase_in_paisa,
                    validity_days=offer.validity_days,
                    offer_amount=offer_amount_text(offer.discount_type, offer.discount_value))


def admin_offer(offer: Offer) -> AdminOffer:
    """The offer as the admin API answers it."""
    return AdminOffer(**msgspec.structs.asdict(app_offer(offer)), salon_id=offer.salon_id,
                      usage_limit=offer.usage_limit, is_active=offer.is_active,
                      total_redemptions=offer.total_redemptions, created_at=offer.created_at,
                      updated_at=offer.updated_at)


class Redemption(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A grant of a welcome offer to a customer, or one use of it on a booking."""

    id: str
    welcome_offer_id: str
    user_id: str
    imported_customer_id: str | None
    booking_id: str | None
    discount_applied_in_paisa: int
    expires_at: datetime
    redeemed_at: datetime | None
    # active (granted, usable), redeemed (a use) or expired.
    status: str
    created_at: datetime


def redemption(row: RedemptionRow, *, status: str | None = None) -> Redemption:
    """A redemption row in the API's shape (status overrides the stored one)."""
    shaped = msgspec.convert(row, Redemption, from_attributes=True)
    return shaped if status is None else msgspec.structs.replace(shaped, status=status)
