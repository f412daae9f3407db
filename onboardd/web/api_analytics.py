"""Analytics (spec §6, §8.3): the dashboard's numbers and who is at a funnel stage.

GET /api/salons/{salonId}/analytics?from=&to=&campaignId=
GET /api/salons/{salonId}/analytics/stages/{stage}?campaignId=&page=&limit=
GET /api/salons/{salonId}/analytics/export.xlsx?from=&to=&pii=masked|full
"""

from __future__ import annotations

from aiohttp import web

from onboardd.services import analytics as service
from onboardd.services import analytics_export as export_service
from onboardd.web.body import query_choice, query_int
from onboardd.web.downloads import stream_workbook
from onboardd.web.errors import json_response
from onboardd.web.keys import principal, request_id, salon_of, services

routes = web.RouteTableDef()

_BASE = "/api/salons/{salonId}/analytics"


def _text(request: web.Request, name: str) -> str | None:
    """An optional text query parameter (empty counts as absent)."""
    return request.query.get(name, "").strip() or None


@routes.get(_BASE)
async def analytics(request: web.Request) -> web.StreamResponse:
    """KPIs, funnel, series, campaign comparison and conversion curve for the window."""
    return json_response(await service.report(
        services(request), salon_of(request), raw_from=_text(request, "from"),
        raw_to=_text(request, "to"), campaign_id=_text(request, "campaignId")))


@routes.get(_BASE + "/stages/{stage}")
async def stage(request: web.Request) -> web.StreamResponse:
    """Who is at one funnel stage and not at the next, masked, with a re-invite audience."""
    page = query_int(request, "page", 1, minimum=1)
    limit = query_int(request, "limit", 50, minimum=1, maximum=service.STAGE_PAGE_MAX)
    view = await service.stage_customers(
        services(request), salon_of(request), request.match_info["stage"],
        campaign_id=_text(request, "campaignId"), page=page, limit=limit,
        actor=principal(request).sub, request_id=request_id(request))
    return json_response(view, headers={"Cache-Control": "no-store"})


# -- the Excel export ---------------------------------------------------------------------------

@routes.get(_BASE + "/export.xlsx")
async def export_xlsx(request: web.Request) -> web.StreamResponse:
    """The analytics and every imported customer as an Excel workbook (same from/to as
    /analytics; pii=masked by default, or full). Built off the event loop into a temporary
    file, then streamed; the file is removed once sent, or when anything fails."""
    pii: export_service.PiiMode = "full" if query_choice(
        request, "pii", export_service.PII_MODES) == "full" else "masked"
    async with export_service.export(
            services(request), salon_of(request), raw_from=_text(request, "from"),
            raw_to=_text(request, "to"), pii=pii, actor=principal(request).sub,
            request_id=request_id(request)) as out:
        return await stream_workbook(request, out)
