"""JSON shapes of welcome offers and redemptions, shared by the admin and the mobile APIs."""

from __future__ import annotations

from typing import Any

from onboardd.db.offers import OfferRow, RedemptionRow
from onboardd.domain.templates import offer_amount_text


def offer_json(row: OfferRow, *, admin: bool) -> dict[str, Any]:
    """An offer in the API's camelCase shape.

    The app (admin=False) sees what a customer needs to use the offer; the admin API adds the
    salon, usage limit, state, counters and timestamps.
    """
    data: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "discountType": row.discount_type,
        "discountValue": row.discount_value,
        "maxDiscountInPaisa": row.max_discount_in_paisa,
        "minimumPurchaseInPaisa": row.minimum_purchase_in_paisa,
        "validityDays": row.validity_days,
        "offerAmount": offer_amount_text(row.discount_type, row.discount_value),
    }
    if admin:
        data.update({
            "salonId": row.salon_id,
            "usageLimit": row.usage_limit,
            "isActive": row.is_active == 1,
            "totalRedemptions": row.total_redemptions,
            "createdAt": row.created_at,
            "updatedAt": row.updated_at,
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
