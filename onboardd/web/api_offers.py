"""Admin API for welcome offers (spec §7.3): create, list, read, update, deactivate, redemptions."""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
from aiohttp import web

from onboardd.domain.offers import OfferInput, OfferPatch
from onboardd.services import offers as service
from onboardd.web.body import QUERY_INT_MAX, read_json, read_query
from onboardd.web.contract import follow, operation
from onboardd.web.errors import json_response
from onboardd.web.keys import salon_of, services
from onboardd.web.shapes import AdminOffer, Redemption, admin_offer, redemption

routes = web.RouteTableDef()

BASE = "/api/salons/{salonId}/welcome-offers"
ONE = BASE + "/{offerId}"
MAX_PAGE_SIZE: Final = 100
OFFER_MISSING: Final = {404: "No such offer in this salon (code offer_not_found)"}


class OfferBody(OfferInput, forbid_unknown_fields=True):
    """POST body: every field of an offer; unknown (misspelt) fields are refused."""


class OfferPatchBody(OfferPatch, forbid_unknown_fields=True):
    """PUT body: the fields to change; unknown (misspelt) fields are refused."""


class OfferListQuery(msgspec.Struct, frozen=True, rename="camel"):
    """Which offers to list: active=true only active ones, false only deactivated ones."""

    active: bool | None = None


class OfferList(msgspec.Struct, frozen=True, rename="camel"):
    """The salon's welcome offers, newest first."""

    offers: list[AdminOffer]


class RedemptionQuery(msgspec.Struct, frozen=True, rename="camel"):
    """Which page of an offer's redemptions to answer."""

    status: Literal["active", "redeemed", "expired"] | None = None
    page: Annotated[int, msgspec.Meta(ge=1, le=QUERY_INT_MAX)] = 1
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE_SIZE)] = 20


class RedemptionPage(msgspec.Struct, frozen=True, rename="camel"):
    """One page of an offer's grants and uses, newest first, with the total count."""

    redemptions: list[Redemption]
    page: int
    limit: int
    total: int


@routes.post(BASE)
@operation("Create a welcome offer", body=OfferBody, answers={201: AdminOffer},
           links={201: {
               name: follow(method, path, offerId="$response.body#/id")
               for name, method, path in (
                   ("GetOffer", "get", ONE), ("UpdateOffer", "put", ONE),
                   ("DeactivateOffer", "post", ONE + "/deactivate"),
                   ("Redemptions", "get", ONE + "/redemptions"))}})
async def create_offer(request: web.Request) -> web.Response:
    """Create a welcome offer."""
    data = await read_json(request, OfferBody)
    offer = await service.create_offer(services(request), salon_of(request), data)
    return json_response(admin_offer(offer), status=201)


@routes.get(BASE)
@operation("The salon's welcome offers, newest first", query=OfferListQuery,
           answers={200: OfferList})
async def list_offers(request: web.Request) -> web.Response:
    """A salon's offers, newest first; ?active=true|false filters."""
    query = read_query(request, OfferListQuery)
    offers = await service.list_offers(services(request), salon_of(request), query.active)
    return json_response(OfferList(offers=[admin_offer(o) for o in offers]))


@routes.get(ONE)
@operation("One welcome offer", answers={200: AdminOffer}, refusals=OFFER_MISSING)
async def get_offer(request: web.Request) -> web.Response:
    """One offer."""
    offer = await service.get_offer(services(request), salon_of(request),
                                    request.match_info["offerId"])
    return json_response(admin_offer(offer))


@routes.put(ONE)
@operation("Change a welcome offer (the fields sent; existing grants keep their expiry)",
           body=OfferPatchBody, answers={200: AdminOffer}, refusals=OFFER_MISSING)
async def update_offer(request: web.Request) -> web.Response:
    """Change an offer (merged and validated under its row lock, see the service)."""
    patch = await read_json(request, OfferPatchBody)
    offer = await service.update_offer(services(request), salon_of(request),
                                       request.match_info["offerId"], patch)
    return json_response(admin_offer(offer))


@routes.post(ONE + "/deactivate")
@routes.delete(ONE)
@operation("Deactivate a welcome offer (its redemptions stay); DELETE is an alias",
           answers={200: AdminOffer}, refusals=OFFER_MISSING)
async def deactivate_offer(request: web.Request) -> web.Response:
    """Deactivate an offer (rows stay for the redemption history); DELETE is an alias."""
    offer = await service.deactivate_offer(services(request), salon_of(request),
                                           request.match_info["offerId"])
    return json_response(admin_offer(offer))


@routes.get(ONE + "/redemptions")
@operation("An offer's grants and uses, newest first, a page at a time",
           query=RedemptionQuery, answers={200: RedemptionPage}, refusals=OFFER_MISSING)
async def list_redemptions(request: web.Request) -> web.Response:
    """An offer's grants and uses, newest first: ?status=active|redeemed|expired&page=&limit=."""
    query = read_query(request, RedemptionQuery)
    found = await service.redemptions(services(request), salon_of(request),
                                      request.match_info["offerId"], status=query.status,
                                      page=query.page, limit=query.limit)
    return json_response(RedemptionPage(redemptions=[redemption(r) for r in found.items],
                                        page=query.page, limit=query.limit, total=found.total))
