"""JSON shapes of welcome offers and redemptions, shared by the admin and the mobile APIs."""

from __future__ import annotations

from typing import Any

from onboardd.db.offers import RedemptionRow
from onboardd.domain.offers import Offer
from onboardd.domain.templates import offer_amount_text


def offer_json(offer: Offer, *, admin: bool) -> dict[str, Any]:
    """An offer in the API's camelCase shape.

    The app (admin=False) sees what a customer needs to use the offer; the admin API adds the
    salon, usage limit, state, counters and timestamps.
    """
    data: dict[str, Any] = {
        "id": offer.id,
        "name": offer.name,
        "discountType": offer.discount_type,
        "discountValue": offer.discount_value,
        "maxDiscountInPaisa": offer.max_discount_in_paisa,
        "minimumPurchaseInPaisa": offer.minimum_purchase_in_paisa,
        "validityDays": offer.validity_days,
        "offerAmount": offer_amount_text(offer.discount_type, offer.discount_value),
    }
    if admin:
        data.update({
            "salonId": offer.salon_id,
            "usageLimit": offer.usage_limit,
            "isActive": offer.is_active,
            "totalRedemptions": offer.total_redemptions,
            "createdAt": offer.created_at,
            "updatedAt": offer.updated_at,
        })
    return data


def redemption_json(row: RedemptionRow) -> dict[str, Any]:
    """A redemption (grant or use) in the API's camelCase shape."""
    return {
        "id": row.id,
        "welcomeOfferId": row.welcome_offer_id,
        "userId": row.user_id,
        "importedCustomerId": row.imported_customer_id,
        "bookingId": row.booking_id,
        "discountAppliedInPaisa": row.discount_applied_in_paisa,
        "expiresAt": row.expires_at,
        "redeemedAt": row.redeemed_at,
        "status": row.status,
        "createdAt": row.created_at,
    }
