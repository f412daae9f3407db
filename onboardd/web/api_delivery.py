"""Campaign delivery statistics and the per-customer delivery list (spec §7.2 stats).

GET /api/salons/{salonId}/invitation-campaigns/{id}/stats
GET /api/salons/{salonId}/invitation-campaigns/{id}/messages?status=&page=&pageSize=
"""

from __future__ import annotations

from aiohttp import web

from onboardd.services import delivery as service
from onboardd.web.body import query_choice, query_int
from onboardd.web.errors import json_response
from onboardd.web.keys import salon_of, services

routes = web.RouteTableDef()

_BASE = "/api/salons/{salonId}/invitation-campaigns/{id}"


@routes.get(_BASE + "/stats")
async def campaign_stats(request: web.Request) -> web.StreamResponse:
    """Delivery statistics of one campaign."""
    return json_response(await service.campaign_stats(
        services(request), salon_of(request), request.match_info["id"]))


@routes.get(_BASE + "/messages")
async def campaign_messages(request: web.Request) -> web.StreamResponse:
    """Per-customer delivery of one campaign, with masked phone numbers, page by page."""
    status = query_choice(request, "status", service.MESSAGE_STATUSES)
    page = query_int(request, "page", 1, minimum=1)
    page_size = query_int(request, "pageSize", 50, minimum=1, maximum=500)
    return json_response(await service.campaign_messages(
        services(request), salon_of(request), request.match_info["id"], status, page,
        page_size))
