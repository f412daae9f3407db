"""Admin API for welcome offers (spec §7.3): create, list, read, update, deactivate, redemptions."""

from __future__ import annotations

from aiohttp import web

from onboardd.domain.offers import OfferInput, OfferPatch
from onboardd.services import offers as service
from onboardd.web.body import query_choice, query_int, read_json
from onboardd.web.errors import json_response
from onboardd.web.keys import salon_of, services
from onboardd.web.shapes import offer_json, redemption_json

routes = web.RouteTableDef()

BASE = "/api/salons/{salonId}/welcome-offers"
REDEMPTION_STATUSES = ("active", "redeemed", "expired")
MAX_PAGE_SIZE = 100


class OfferBody(OfferInput, forbid_unknown_fields=True):
    """POST body: every field of an offer; unknown (misspelt) fields are refused."""


class OfferPatchBody(OfferPatch, forbid_unknown_fields=True):
    """PUT body: the fields to change; unknown (misspelt) fields are refused."""


@routes.post(BASE)
async def create_offer(request: web.Request) -> web.Response:
    """Create a welcome offer."""
    data = await read_json(request, OfferBody)
    offer = await service.create_offer(services(request), salon_of(request), data)
    return json_response(offer_json(offer, admin=True), status=201)


@routes.get(BASE)
async def list_offers(request: web.Request) -> web.Response:
    """A salon's offers, newest first; ?active=true|false filters."""
    active = query_choice(request, "active", ("true", "false"))
    offers = await service.list_offers(services(request), salon_of(request),
                                       None if active is None else active == "true")
    return json_response({"offers": [offer_json(o, admin=True) for o in offers]})


@routes.get(BASE + "/{offerId}")
async def get_offer(request: web.Request) -> web.Response:
    """One offer."""
    offer = await service.get_offer(services(request), salon_of(request),
                                    request.match_info["offerId"])
    return json_response(offer_json(offer, admin=True))


@routes.put(BASE + "/{offerId}")
async def update_offer(request: web.Request) -> web.Response:
    """Change an offer (merged and validated under its row lock, see the service)."""
    patch = await read_json(request, OfferPatchBody)
    offer = await service.update_offer(services(request), salon_of(request),
                                       request.match_info["offerId"], patch)
    return json_response(offer_json(offer, admin=True))


@routes.post(BASE + "/{offerId}/deactivate")
@routes.delete(BASE + "/{offerId}")
async def deactivate_offer(request: web.Request) -> web.Response:
    """Deactivate an offer (rows stay for the redemption history); DELETE is an alias."""
    offer = await service.deactivate_offer(services(request), salon_of(request),
                                           request.match_info["offerId"])
    return json_response(offer_json(offer, admin=True))


@routes.get(BASE + "/{offerId}/redemptions")
async def list_redemptions(request: web.Request) -> web.Response:
    """An offer's grants and uses, newest first: ?status=active|redeemed|expired&page=&limit=."""
    status = query_choice(request, "status", REDEMPTION_STATUSES)
    page = query_int(request, "page", 1, minimum=1, maximum=1_000_000)
    limit = query_int(request, "limit", 20, minimum=1, maximum=MAX_PAGE_SIZE)
    found = await service.redemptions(services(request), salon_of(request),
                                      request.match_info["offerId"], status=status, page=page,
                                      limit=limit)
    return json_response({"redemptions": [redemption_json(r) for r in found.items],
                          "page": page, "limit": limit, "total": found.total})
