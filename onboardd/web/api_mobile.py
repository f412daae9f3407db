"""Mobile app API (spec §7.4, customer JWT): check a phone, claim, validate and redeem offers.

The handlers parse and shape; the rules (who may see and claim which offer) are in
onboardd.services.offer_check, onboardd.services.offers and onboardd.services.offer_claims.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from aiohttp import web

from onboardd.db.offers import RedemptionRow
from onboardd.domain import claim_throttle
from onboardd.domain.offers import INT32_MAX, Offer
from onboardd.services import offer_check, offer_claims
from onboardd.services import offers as service
from onboardd.web.body import read_json
from onboardd.web.errors import ApiError, field_error, json_response
from onboardd.web.keys import principal, services
from onboardd.web.shapes import offer_json, redemption_json

routes = web.RouteTableDef()

MAX_ID_LENGTH: Final = 255


class ClaimBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    offer_id: str | None = None
    offer_code: str | None = None


class ValidateBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    offer_id: str
    booking_amount_in_paisa: int


class RedeemBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    offer_id: str
    booking_id: str
    booking_amount_in_paisa: int


def welcome_offer_json(offer: Offer | None) -> dict[str, Any] | None:
    """An offer as the app shows it (None when there is none)."""
    return None if offer is None else offer_json(offer, admin=False)


def _effective(row: RedemptionRow, now: datetime) -> dict[str, Any]:
    """A redemption with an active grant past its expiry shown as expired."""
    data = redemption_json(row)
    if row.status == "active" and row.expires_at < now:
        data["status"] = "expired"
    return data


def _check_id(field: str, value: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_ID_LENGTH:
        raise field_error(field, f"must be a non-empty id of at most {MAX_ID_LENGTH} characters")
    return value


def _check_amount(amount: int) -> int:
    if not 0 <= amount <= INT32_MAX:
        raise field_error("bookingAmountInPaisa",
                          f"must be a whole number of paisa between 0 and {INT32_MAX} "
                          f"(e.g. 150000 for ₹1,500; got {amount})")
    return amount


@routes.get("/api/mobile/check-imported-customer")
async def check_imported_customer(request: web.Request) -> web.Response:
    """Is this phone a salon's imported customer? Answered only about the caller's own number
    (phone claim or users.phone; any other gets the unknown number's answer), rate-limited."""
    who = principal(request)
    result = await offer_check.check_customer(services(request), who.sub,
                                              request.query.get("phone", "").strip(), who.phone)
    items: list[dict[str, Any]] = []
    for match in result.matches:
        item: dict[str, Any] = {
            "salonId": match.salon_id,
            "salonName": match.salon_name,
            "welcomeOffer": welcome_offer_json(match.offer),
        }
        if result.own_number:  # what they need to claim, nothing about anyone else
            item["offerCode"] = match.offer_code
            item["claimed"] = match.claimed
        items.append(item)
    best = items[0] if items else None
    body: dict[str, Any] = {
        "isImported": best is not None,
        "salonName": best["salonName"] if best else None,
        "welcomeOffer": best["welcomeOffer"] if best else None,
        "matches": items,
    }
    if result.own_number:
        body["ownNumber"] = True
    return json_response(body)


def client_address(request: web.Request) -> str:
    """The client address subject a code attempt is charged to ([http] trust_forwarded says
    whether X-Forwarded-For is believed)."""
    return claim_throttle.address_subject(request.remote, request.headers.get("X-Forwarded-For"),
                                          services(request).cfg.http.trust_forwarded)


@routes.post("/api/mobile/claim-welcome-offer")
async def claim_welcome_offer(request: web.Request) -> web.Response:
    """Create (idempotently) the caller's grant, by offer id or by the code they were sent."""
    body = await read_json(request, ClaimBody)
    if (body.offer_id is None) == (body.offer_code is None):
        raise ApiError(422, "send exactly one of offerId or offerCode",
                       details={"field": "offerId" if body.offer_id is None else "offerCode"})
    offer_id = None if body.offer_id is None else _check_id("offerId", body.offer_id)
    claimed = await offer_claims.claim(services(request), principal(request).sub,
                                       offer_id=offer_id, offer_code=body.offer_code,
                                       address=client_address(request))
    return json_response({"redemption": _effective(claimed.grant, datetime.now(UTC)),
                          "welcomeOffer": welcome_offer_json(claimed.offer)},
                         status=201 if claimed.created else 200)


@routes.post("/api/mobile/welcome-offers/validate")
async def validate(request: web.Request) -> web.Response:
    """Spec §5.3: {valid, discount, reason} for the caller's grant and a booking amount."""
    body = await read_json(request, ValidateBody)
    offer_id = _check_id("offerId", body.offer_id)
    amount = _check_amount(body.booking_amount_in_paisa)
    result = await service.validate(services(request), principal(request).sub, offer_id, amount)
    out: dict[str, Any] = {"valid": result.valid, "discount": result.discount}
    if result.reason is not None:
        out["reason"] = result.reason
    return json_response(out)


@routes.post("/api/mobile/welcome-offers/redeem")
async def redeem(request: web.Request) -> web.Response:
    """Validate and record one use atomically; the same bookingId again returns the first result."""
    body = await read_json(request, RedeemBody)
    offer_id = _check_id("offerId", body.offer_id)
    booking_id = _check_id("bookingId", body.booking_id)
    amount = _check_amount(body.booking_amount_in_paisa)
    redeemed = await service.redeem(services(request), principal(request).sub, offer_id,
                                    booking_id, amount)
    row = redeemed.redemption
    return json_response({"valid": True, "discount": row.discount_applied_in_paisa,
                          "redemption": redemption_json(row)},
                         status=201 if redeemed.created else 200)
