"""Mobile app API (spec §7.4, customer JWT): check a phone, claim, validate and redeem offers.

The handlers parse and shape; the rules (who may see and claim which offer) are in
onboardd.services.offer_check, onboardd.services.offers and onboardd.services.offer_claims.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

import msgspec
from aiohttp import web

from onboardd.db.offers import RedemptionRow
from onboardd.domain import claim_throttle
from onboardd.domain.offers import INT32_MAX, Offer
from onboardd.services import offer_check, offer_claims
from onboardd.services import offers as service
from onboardd.web.body import read_json, read_query
from onboardd.web.contract import operation
from onboardd.web.errors import ApiError, field_error, json_response
from onboardd.web.keys import principal, services
from onboardd.web.shapes import AppOffer, Redemption, app_offer, redemption

routes = web.RouteTableDef()

MAX_ID_LENGTH: Final = 255
# Longer than any way of writing a phone number (spaces, dashes, a tel: prefix).
MAX_PHONE_CHARS: Final = 64
OFFER_MISSING: Final = ("The offer does not exist, is not active, or is not this caller's (one "
                        "answer for all, code offer_not_found)")


class CheckQuery(msgspec.Struct, frozen=True, rename="camel"):
    """The number to check (required): as the customer typed it, e.g. 9876543210 or
    +919876543210."""

    phone: Annotated[str, msgspec.Meta(max_length=MAX_PHONE_CHARS)]


class ClaimBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Exactly one of offerId (the offer shown by the check) or offerCode (from the
    invitation)."""

    offer_id: str | None = None
    offer_code: str | None = None


class ValidateBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """The caller's offer and the booking amount to check it against."""

    offer_id: str
    booking_amount_in_paisa: int


class RedeemBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """The caller's offer, the booking it is used on (the idempotency key) and its amount."""

    offer_id: str
    booking_id: str
    booking_amount_in_paisa: int


class SalonMatch(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A salon where the number is an imported customer, with the offer they would get;
    offerCode and claimed only when the number is the caller's own."""

    salon_id: str
    salon_name: str
    welcome_offer: AppOffer | None
    offer_code: str | msgspec.UnsetType | None = msgspec.UNSET
    claimed: bool | msgspec.UnsetType = msgspec.UNSET


class CheckAnswer(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Whether the number is a salon's imported customer (best match first); a number the
    caller has not shown to be theirs gets the unknown number's answer."""

    is_imported: bool
    salon_name: str | None
    welcome_offer: AppOffer | None
    matches: list[SalonMatch]
    # Present (true) only when the number is the caller's own.
    own_number: bool | msgspec.UnsetType = msgspec.UNSET


class ClaimAnswer(msgspec.Struct, frozen=True, rename="camel"):
    """The caller's grant of the offer (an active grant past its expiry shows expired)."""

    redemption: Redemption
    welcome_offer: AppOffer


class ValidateAnswer(msgspec.Struct, frozen=True, rename="camel"):
    """Whether the caller's offer applies to the booking, the discount, and why not."""

    valid: bool
    discount: int
    reason: str | msgspec.UnsetType = msgspec.UNSET


class RedeemAnswer(msgspec.Struct, frozen=True, rename="camel"):
    """The recorded use of the offer on the booking (the first one for a repeated bookingId)."""

    valid: bool
    discount: int
    redemption: Redemption


def welcome_offer_json(offer: Offer | None) -> AppOffer | None:
    """An offer as the app shows it (None when there is none)."""
    return None if offer is None else app_offer(offer)


def _effective(row: RedemptionRow, now: datetime) -> Redemption:
    """A redemption with an active grant past its expiry shown as expired."""
    expired = row.status == "active" and row.expires_at < now
    return redemption(row, status="expired" if expired else None)


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
@operation("Is this phone a salon's imported customer? Answered only about the caller's own "
           "number", query=CheckQuery, answers={200: CheckAnswer},
           description="The number is the caller's own when it equals the token's phone claim "
                       "or the user's stored phone; any other number gets the very answer of "
                       "an unknown number (isImported false), and the attempt is logged.")
async def check_imported_customer(request: web.Request) -> web.Response:
    """Is this phone a salon's imported customer? Answered only about the caller's own number
    (phone claim or users.phone; any other gets the unknown number's answer), rate-limited."""
    who = principal(request)
    query = read_query(request, CheckQuery)
    result = await offer_check.check_customer(services(request), who.sub, query.phone,
                                              who.phone)
    own = result.own_number  # only then what they need to claim, nothing about anyone else
    items = [SalonMatch(salon_id=match.salon_id, salon_name=match.salon_name,
                        welcome_offer=welcome_offer_json(match.offer),
                        offer_code=match.offer_code if own else msgspec.UNSET,
                        claimed=match.claimed if own else msgspec.UNSET)
             for match in result.matches]
    best = items[0] if items else None
    return json_response(CheckAnswer(
        is_imported=best is not None, salon_name=best.salon_name if best else None,
        welcome_offer=best.welcome_offer if best else None, matches=items,
        own_number=True if own else msgspec.UNSET))


def client_address(request: web.Request) -> str:
    """The client address subject a code attempt is charged to ([http] trust_forwarded says
    whether X-Forwarded-For is believed)."""
    return claim_throttle.address_subject(request.remote, request.headers.get("X-Forwarded-For"),
                                          services(request).cfg.http.trust_forwarded)


@routes.post("/api/mobile/claim-welcome-offer")
@operation("Claim the caller's welcome offer by offerId or by the code they were sent",
           body=ClaimBody, answers={201: ClaimAnswer, 200: ClaimAnswer},
           description="201 when the grant is new, 200 when the caller already held it.",
           refusals={404: "The user, the offer or the code is not found, or not the "
                          "caller's to claim (codes user_not_found, offer_not_found, "
                          "offer_code_not_found)",
                     409: "Not the welcome offer for the caller at this salon (code "
                          "offer_not_assigned; details.assignedOfferIds)",
                     429: "Too many offer code attempts from this account or network; "
                          "retry after Retry-After seconds, or claim by offerId"})
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
    return json_response(ClaimAnswer(redemption=_effective(claimed.grant, datetime.now(UTC)),
                                     welcome_offer=app_offer(claimed.offer)),
                         status=201 if claimed.created else 200)


@routes.post("/api/mobile/welcome-offers/validate")
@operation("Would the caller's offer apply to a booking of this amount, and for how much?",
           body=ValidateBody, answers={200: ValidateAnswer})
async def validate(request: web.Request) -> web.Response:
    """Spec §5.3: {valid, discount, reason} for the caller's grant and a booking amount."""
    body = await read_json(request, ValidateBody)
    offer_id = _check_id("offerId", body.offer_id)
    amount = _check_amount(body.booking_amount_in_paisa)
    result = await service.validate(services(request), principal(request).sub, offer_id, amount)
    return json_response(ValidateAnswer(
        valid=result.valid, discount=result.discount,
        reason=msgspec.UNSET if result.reason is None else result.reason))


@routes.post("/api/mobile/welcome-offers/redeem")
@operation("Use the caller's offer on a booking (idempotent per bookingId)", body=RedeemBody,
           answers={201: RedeemAnswer, 200: RedeemAnswer},
           description="201 when this call recorded the use, 200 with the first result when "
                       "the bookingId had used the offer before.",
           refusals={404: OFFER_MISSING,
                     409: "The offer has expired or been used up (codes offer_expired, "
                          "offer_used), or the bookingId used it for another account (code "
                          "booking_already_used)",
                     422: "A field is missing or invalid, or the booking is below the "
                          "offer's minimum purchase (code minimum_purchase_not_met)"})
async def redeem(request: web.Request) -> web.Response:
    """Validate and record one use atomically; the same bookingId again returns the first result."""
    body = await read_json(request, RedeemBody)
    offer_id = _check_id("offerId", body.offer_id)
    booking_id = _check_id("bookingId", body.booking_id)
    amount = _check_amount(body.booking_amount_in_paisa)
    redeemed = await service.redeem(services(request), principal(request).sub, offer_id,
                                    booking_id, amount)
    row = redeemed.redemption
    return json_response(RedeemAnswer(valid=True, discount=row.discount_applied_in_paisa,
                                      redemption=redemption(row)),
                         status=201 if redeemed.created else 200)
