"""Admin API for welcome offers (spec §7.3): create, list, read, update, deactivate, redemptions."""

from __future__ import annotations

import msgspec
from aiohttp import web

from onboardd.db import offers as db
from onboardd.db.offers import OfferFields, OfferRow
from onboardd.domain.offers import OfferInput, validate_offer_input
from onboardd.web.body import query_choice, query_int, read_json
from onboardd.web.errors import ApiError, json_response
from onboardd.web.keys import salon_of, services
from onboardd.web.shapes import offer_json, redemption_json

routes = web.RouteTableDef()

BASE = "/api/salons/{salonId}/welcome-offers"
REDEMPTION_STATUSES = ("active", "redeemed", "expired")
MAX_PAGE_SIZE = 100


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
    row = await db.get_offer(services(request).pool, salon_of(request), offer_id)
    if row is None:
        raise _not_found(offer_id)
    return row


@routes.post(BASE)
async def create_offer(request: web.Request) -> web.Response:
    """Create a welcome offer."""
    fields = _checked(await read_json(request, OfferBody))
    row = await db.create_offer(services(request).pool, salon_of(request), fields)
    return json_response(offer_json(row, admin=True), status=201)


@routes.get(BASE)
async def list_offers(request: web.Request) -> web.Response:
    """A salon's offers, newest first; ?active=true|false filters."""
    active = query_choice(request, "active", ("true", "false"))
    rows = await db.list_offers(services(request).pool, salon_of(request),
                                None if active is None else active == "true")
    return json_response({"offers": [offer_json(r, admin=True) for r in rows]})


@routes.get(BASE + "/{offerId}")
async def get_offer(request: web.Request) -> web.Response:
    """One offer."""
    return json_response(offer_json(await _offer_or_404(request), admin=True))


@routes.put(BASE + "/{offerId}")
async def update_offer(request: web.Request) -> web.Response:
    """Change an offer; existing grants keep their expiry, later validations use the new rules.

    Read, merge, validate and write happen under the offer's row lock in one transaction, so
    two concurrent edits apply one after the other: the second merges into (and is validated
    against) what the first wrote, instead of writing back fields it read before.
    """
    patch = await read_json(request, OfferPatch)
    salon_id, offer_id = salon_of(request), request.match_info["offerId"]
    changes = {k: v for k, v in msgspec.structs.asdict(patch).items()
               if v is not msgspec.UNSET}
    async with services(request).pool.acquire() as conn, conn.transaction():
        current = await db.get_offer(conn, salon_id, offer_id, lock=True)
        if current is None:
            raise _not_found(offer_id)
        fields = _checked(msgspec.structs.replace(_as_input(current), **changes))
        row = await db.update_offer(conn, salon_id, offer_id, fields)
    if row is None:
        raise _not_found(offer_id)
    return json_response(offer_json(row, admin=True))


@routes.post(BASE + "/{offerId}/deactivate")
@routes.delete(BASE + "/{offerId}")
async def deactivate_offer(request: web.Request) -> web.Response:
    """Deactivate an offer (rows stay for the redemption history); DELETE is an alias."""
    row = await db.deactivate_offer(services(request).pool, salon_of(request),
                                    request.match_info["offerId"])
    if row is None:
        raise _not_found(request.match_info["offerId"])
    return json_response(offer_json(row, admin=True))


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
