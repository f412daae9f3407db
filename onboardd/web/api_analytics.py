"""Analytics (spec §6, §8.3): the dashboard's numbers and who is at a funnel stage.

GET /api/salons/{salonId}/analytics?from=&to=&campaignId=
GET /api/salons/{salonId}/analytics/stages/{stage}?campaignId=&page=&limit=
GET /api/salons/{salonId}/analytics/export.xlsx?from=&to=&campaignId=&pii=masked|full
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from aiohttp import web

from onboardd.services import analytics as service
from onboardd.services import analytics_export as export_service
from onboardd.web.body import QUERY_INT_MAX, read_query
from onboardd.web.contract import Media, operation
from onboardd.web.downloads import stream_workbook
from onboardd.web.errors import json_response
from onboardd.web.keys import principal, request_id, salon_of, services

routes = web.RouteTableDef()

_BASE = "/api/salons/{salonId}/analytics"
# Dates (YYYY-MM-DD, salon time) or instants with their offset; the service says what is wrong.
Moment = Annotated[str, msgspec.Meta(max_length=64, description=(
    "A date (YYYY-MM-DD, the salon's day) or a time with its UTC offset"))]
Id = Annotated[str, msgspec.Meta(max_length=255)]
BAD_CAMPAIGN: Final = {404: "No such campaign in this salon (campaignId)"}


class WindowQuery(msgspec.Struct, frozen=True, rename="camel"):
    """The reporting window (default: the last 30 days) and an optional campaign."""

    from_: Moment | None = msgspec.field(name="from", default=None)
    to: Moment | None = None
    campaign_id: Id | None = None


class StageQuery(msgspec.Struct, frozen=True, rename="camel"):
    """An optional campaign, and the page."""

    campaign_id: Id | None = None
    page: Annotated[int, msgspec.Meta(ge=1, le=QUERY_INT_MAX)] = 1
    limit: Annotated[int, msgspec.Meta(ge=1, le=service.STAGE_PAGE_MAX)] = 50


class ExportQuery(WindowQuery, frozen=True, rename="camel"):
    """The window and campaign of /analytics (a campaign: its numbers, and only the customers
    it targeted), and whether phones are masked (default) or full."""

    pii: export_service.PiiMode = "masked"


@routes.get(_BASE)
@operation("KPIs, funnel, series, campaign comparison and conversion curve for the window",
           query=WindowQuery, answers={200: service.Report}, refusals=BAD_CAMPAIGN)
async def analytics(request: web.Request) -> web.StreamResponse:
    """KPIs, funnel, series, campaign comparison and conversion curve for the window."""
    q = read_query(request, WindowQuery)
    return json_response(await service.report(
        services(request), salon_of(request), raw_from=q.from_, raw_to=q.to,
        campaign_id=q.campaign_id))


@routes.get(_BASE + "/stages/{stage}")
@operation("Who is at one funnel stage and not at the next, phones masked",
           query=StageQuery, answers={200: service.StageView},
           refusals={404: "No such funnel stage (code stage_not_found), or no such campaign"})
async def stage(request: web.Request) -> web.StreamResponse:
    """Who is at one funnel stage and not at the next, masked, with a re-invite audience."""
    q = read_query(request, StageQuery)
    view = await service.stage_customers(
        services(request), salon_of(request), request.match_info["stage"],
        campaign_id=q.campaign_id, page=q.page, limit=q.limit,
        actor=principal(request).sub, request_id=request_id(request))
    return json_response(view, headers={"Cache-Control": "no-store"})


# -- the Excel export ---------------------------------------------------------------------------

@routes.get(_BASE + "/export.xlsx")
@operation("The analytics and every imported customer as an Excel workbook",
           query=ExportQuery, refusals=BAD_CAMPAIGN, answers={200: Media(
               "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "The workbook, as an attachment", {"type": "string", "format": "binary"})})
async def export_xlsx(request: web.Request) -> web.StreamResponse:
    """The analytics and every imported customer as an Excel workbook (same from/to as
    /analytics; pii=masked by default, or full). Built off the event loop into a temporary
    file, then streamed; the file is removed once sent, or when anything fails."""
    q = read_query(request, ExportQuery)
    async with export_service.export(
            services(request), salon_of(request), raw_from=q.from_, raw_to=q.to, pii=q.pii,
            actor=principal(request).sub, request_id=request_id(request),
            campaign_id=q.campaign_id) as out:
        return await stream_workbook(request, out)
