"""Admin API for welcome offers (spec §7.3): create, list, read, update, deactivate, redemptions."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from onboardd.db import offers as db
from onboardd.db.offers import OfferFields, OfferRow, RedemptionRow
from onboardd.offers import OfferInput, validate_offer_input
from onboardd.templates import offer_amount_text
from onboardd.web.body import query_choice, query_int, read_json
from onboardd.web.errors import ApiError, json_response
from onboardd.web.keys import services

routes = web.RouteTableDef()

BASE = "/api/salons/{salonId}/welcome-offers"
REDEMPTION_STATUSES = ("active", "redeemed", "expired")
MAX_PAGE_SIZE = 100

T = TypeVar("T")
_MISSING_RE = re.compile(r"missing required field `([^`]+)`")
_UNKNOWN_RE = re.compile(r"unknown field `([^`]+)`")


class OfferBody(OfferInput, forbid_unknown_fields=True):
    """POST body: every field of an offer; unknown (misspelt) fields are refused."""


class OfferPatch(msgspec.Struct, forbid_unknown_fields=True):
    """PUT body: the fields to change; absent fields keep their value, null clears an optional."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    discountType: str | msgspec.UnsetType = msgspec.UNSET
    discountValue: int | msgspec.UnsetType = msgspec.UNSET
    maxDiscountInPaisa: int | msgspec.UnsetType | None = msgspec.UNSET
    minimumPurchaseInPaisa: int | msgspec.UnsetType | None = msgspec.UNSET
    validityDays: int | msgspec.UnsetType = msgspec.UNSET
    usageLimit: int | msgspec.UnsetType = msgspec.UNSET
    isActive: bool | msgspec.UnsetType = msgspec.UNSET


def offer_amount(row: OfferRow) -> str:
    """Display text of the discount: '15%' or '₹100'."""
    return offer_amount_text(row.discount_type, row.discount_value)


def offer_json(row: OfferRow) -> dict[str, Any]:
    """An offer in the API's camelCase shape."""
    return {
        "id": row.id,
        "salonId": row.salon_id,
        "name": row.name,
        "discountType": row.discount_type,
        "discountValue": row.discount_value,
        "maxDiscountInPaisa": row.max_discount_in_paisa,
        "minimumPurchaseInPaisa": row.minimum_purchase_in_paisa,
        "validityDays": row.validity_days,
        "usageLimit": row.usage_limit,
        "isActive": row.is_active == 1,
        "totalRedemptions": row.total_redemptions,
        "offerAmount": offer_amount(row),
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
    }


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


async def read_body(request: web.Request, kind: type[T]) -> T:
    """read_json, naming the field when a required one is missing."""
    try:
        return await read_json(request, kind)
    except ApiError as err:
        if err.status != 422 or err.details:
            raise
        if missing := _MISSING_RE.search(err.message):
            field = missing.group(1)
            raise ApiError(422, f"{field}: is required", details={"field": field}) from None
        if unknown := _UNKNOWN_RE.search(err.message):
            field = unknown.group(1)
            raise ApiError(422, f"{field}: unknown field; check the spelling (names are "
                           "camelCase, e.g. discountValue)", details={"field": field}) from None
        raise


def _checked(data: OfferInput) -> OfferFields:
    """Validate an offer; every problem at once, the first one named in the message."""
    errors = validate_offer_input(data)
    if errors:
        raise ApiError(422, errors[0].message, details={
            "field": errors[0].field,
            "errors": [{"field": e.field, "message": e.message} for e in errors],
        })
    return OfferFields(
        name=data.name.strip(), discount_type=data.discountType,
        discount_value=data.discountValue, max_discount_in_paisa=data.maxDiscountInPaisa,
        minimum_purchase_in_paisa=data.minimumPurchaseInPaisa, validity_days=data.validityDays,
        usage_limit=data.usageLimit, is_active=1 if data.isActive else 0)


def _as_input(row: OfferRow) -> OfferInput:
    return OfferInput(
        name=row.name, discountType=row.discount_type, discountValue=row.discount_value,
        maxDiscountInPaisa=row.max_discount_in_paisa,
        minimumPurchaseInPaisa=row.minimum_purchase_in_paisa, validityDays=row.validity_days,
        usageLimit=row.usage_limit, isActive=row.is_active == 1)


def _not_found(offer_id: str) -> ApiError:
    return ApiError(404, f"welcome offer '{offer_id}' not found in this salon",
                    code="offer_not_found")


async def _offer_or_404(request: web.Request) -> OfferRow:
    offer_id = request.match_info["offerId"]
    row = await db.get_offer(services(request).pool, request.match_info["salonId"], offer_id)
    if row is None:
        raise _not_found(offer_id)
    return row


@routes.post(BASE)
async def create_offer(request: web.Request) -> web.Response:
    """Create a welcome offer."""
    fields = _checked(await read_body(request, OfferBody))
    row = await db.create_offer(services(request).pool, request.match_info["salonId"], fields)
    return json_response(offer_json(row), status=201)


@routes.get(BASE)
async def list_offers(request: web.Request) -> web.Response:
    """A salon's offers, newest first; ?active=true|false filters."""
    active = query_choice(request, "active", ("true", "false"))
    rows = await db.list_offers(services(request).pool, request.match_info["salonId"],
                                None if active is None else active == "true")
    return json_response({"offers": [offer_json(r) for r in rows]})


@routes.get(BASE + "/{offerId}")
async def get_offer(request: web.Request) -> web.Response:
    """One offer."""
    return json_response(offer_json(await _offer_or_404(request)))


@routes.put(BASE + "/{offerId}")
async def update_offer(request: web.Request) -> web.Response:
    """Change an offer; existing grants keep their expiry, later validations use the new rules."""
    patch = await read_body(request, OfferPatch)
    current = await _offer_or_404(request)
    changes = {k: v for k, v in msgspec.structs.asdict(patch).items()
               if v is not msgspec.UNSET}
    merged = msgspec.structs.replace(_as_input(current), **changes)
    fields = _checked(merged)
    row = await db.update_offer(services(request).pool, current.salon_id, current.id, fields)
    if row is None:
        raise _not_found(current.id)
    return json_response(offer_json(row))


@routes.post(BASE + "/{offerId}/deactivate")
@routes.delete(BASE + "/{offerId}")
async def deactivate_offer(request: web.Request) -> web.Response:
    """Deactivate an offer (rows stay for the redemption history); DELETE is an alias."""
    row = await db.deactivate_offer(services(request).pool, request.match_info["salonId"],
                                    request.match_info["offerId"])
    if row is None:
        raise _not_found(request.match_info["offerId"])
    return json_response(offer_json(row))


@routes.get(BASE + "/{offerId}/redemptions")
async def list_redemptions(request: web.Request) -> web.Response:
    """An offer's grants and uses, newest first: ?status=active|redeemed|expired&page=&limit=."""
    status = query_choice(request, "status", REDEMPTION_STATUSES)
    page = query_int(request, "page", 1, minimum=1, maximum=1_000_000)
    limit = query_int(request, "limit", 20, minimum=1, maximum=MAX_PAGE_SIZE)
    offer = await _offer_or_404(request)
    rows, total = await db.redemptions_page(services(request).pool, offer.id, status, limit,
                                            (page - 1) * limit)
    return json_response({"redemptions": [redemption_json(r) for r in rows],
                          "page": page, "limit": limit, "total": total})
