"""The admin UI's dashboard: KPI tiles, the funnel (each stage listing its people, with an
"Invite them" link into the campaign builder), the series and conversion-curve charts, the
campaign comparison, a date range and campaign filter, and the Excel export. Every figure comes
from the same services as GET /api/salons/{salonId}/analytics (and .../export.xlsx)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from aiohttp import web

from onboardd.domain.analytics import DEFAULT_DAYS
from onboardd.services import analytics
from onboardd.services import analytics_export as export_service
from onboardd.services import campaigns as campaigns_service
from onboardd.services.errors import ServiceError
from onboardd.web.admin import dashboard_view as view
from onboardd.web.admin import render, session
from onboardd.web.admin.formats import problem_sentence
from onboardd.web.admin.guard import SECURITY_HEADERS
from onboardd.web.body import query_choice, query_int
from onboardd.web.downloads import stream_workbook
from onboardd.web.errors import api_error
from onboardd.web.keys import request_id, services

routes = web.RouteTableDef()

TEMPLATE: Final = "admin/dashboard.html"
STAGE_TEMPLATE: Final = "admin/stage.html"
STAGE_PAGE_SIZE: Final = 50
CAMPAIGN_CHOICES: Final = 100  # the newest campaigns offered in the filter
# The report's fields a query can get wrong, and the form field that shows the sentence.
_FORM_FIELDS: Final = {"from": "from", "to": "to", "campaignId": "campaign"}


NOT_OURS: Final = ("That campaign is not one of this salon's. Choose another campaign, or all "
                   "customers.")


def _sentence(exc: ServiceError) -> str:
    """The service's message without its "field: " prefix (the page shows it at the field)."""
    field = exc.details.get("field")
    if field == "campaignId":
        return NOT_OURS
    return problem_sentence(exc.message, str(field))


async def _campaign_choices(request: web.Request, salon_id: str) -> tuple[list[Any], int]:
    page = await campaigns_service.list_page(services(request), salon_id, None, 1,
                                             CAMPAIGN_CHOICES)
    return list(page.items), page.total


@routes.get(view.DASHBOARD)
async def dashboard(request: web.Request) -> web.StreamResponse:
    """The dashboard for ?from=&to=&campaign= (the API's defaults when absent)."""
    me = session.current(request)
    filters = view.Filters.of(request.query)
    choices, campaign_total = await _campaign_choices(request, me.salon.id)
    today = datetime.now(ZoneInfo(me.salon.timezone)).date()
    ctx: dict[str, Any] = {
        "filters": filters, "errors": dict.fromkeys(_FORM_FIELDS.values()), "report": None,
        "campaigns": choices,
        "campaign_total": campaign_total, "presets": view.presets(today, None, filters.campaign),
        "default_days": DEFAULT_DAYS,
    }
    try:
        report = await analytics.report(
            services(request), me.salon.id, raw_from=filters.from_, raw_to=filters.to,
            campaign_id=filters.campaign)
    except ServiceError as exc:
        field = _FORM_FIELDS.get(str(exc.details.get("field")))
        if field is None:
            raise
        ctx["errors"][field] = _sentence(exc)
        return render.page(request, TEMPLATE, ctx, status=api_error(exc).status)
    shown = view.settled(report)
    windowed, now = view.tiles(report)
    compared = view.comparison(report, shown)
    ctx.update({
        "filters": shown, "report": report,
        "presets": view.presets(today, report, shown.campaign),
        "range_text": f"{view.day_text(report.range.from_)} – {view.day_text(report.range.to)}",
        "campaign_name": next((c.name for c in choices if c.id == shown.campaign), None),
        "tiles_windowed": windowed, "tiles_now": now,
        "funnel": view.funnel(report, shown),
        "compared": compared, "compared_table": view.comparison_table(compared),
        "curves": view.curve_rows(report), "milestones": view.CURVE_MILESTONES,
        "charted_curves": view.CHARTED_CURVES,
        "chart_data": view.chart_data(report),
        "export_href": view.export_href(shown),
        "export_full_href": view.export_href(shown, "full"),
        "empty": shown.campaign is None and report.kpis.total_imported == 0,
    })
    return render.page(request, TEMPLATE, ctx)


@routes.get(view.DASHBOARD + "/stages/{stage}")
async def stage(request: web.Request) -> web.StreamResponse:
    """The people at one funnel stage and not at the next, phones masked (the read is logged
    to pii_access_log by the service), and for stages that can be invited again a link to
    the campaign builder with that audience."""
    me = session.current(request)
    filters = view.Filters.of(request.query)
    page = query_int(request, "page", 1, minimum=1)
    name = request.match_info["stage"]
    if name not in view.STAGE_NAMES:
        return render.problem(request, 404, "Not found", f"There is no funnel stage {name!r}. "
                              "Choose a stage on the dashboard's funnel.")
    try:
        found = await analytics.stage_customers(
            services(request), me.salon.id, name, campaign_id=filters.campaign, page=page,
            limit=STAGE_PAGE_SIZE, actor=me.who.sub, request_id=request_id(request))
    except ServiceError as exc:
        if exc.details.get("field") != "campaignId":
            raise
        return render.problem(request, 404, "Not found", NOT_OURS)
    pages = {
        "previous": view.stage_href(name, filters, page - 1) if page > 1 else None,
        "next": (view.stage_href(name, filters, page + 1) if page < found.total_pages
                 else None),
        "first": view.stage_href(name, filters) if page > max(found.total_pages, 1) else None,
    }
    return render.page(request, STAGE_TEMPLATE, {
        "view": found, "name": view.STAGE_NAMES[name], "here": view.STAGE_HERE[name],
        "back_href": view.DASHBOARD + view.Filters(filters.from_, filters.to,
                                                   filters.campaign).as_query(),
        "invite_href": view.builder_href(name, filters.campaign) if found.total else None,
        "pages": pages, "first_row": (page - 1) * STAGE_PAGE_SIZE + 1,
        "zone": me.salon.timezone,
    })


@routes.get(view.DASHBOARD + "/export.xlsx")
async def export_xlsx(request: web.Request) -> web.StreamResponse:
    """The same workbook as GET /api/salons/{salonId}/analytics/export.xlsx (same service, so
    the same pii_access_log entry), for the range and campaign shown; phones masked unless
    ?pii=full."""
    me = session.current(request)
    filters = view.Filters.of(request.query)
    pii: export_service.PiiMode = "full" if query_choice(
        request, "pii", export_service.PII_MODES) == "full" else "masked"
    async with export_service.export(
            services(request), me.salon.id, raw_from=filters.from_, raw_to=filters.to,
            pii=pii, actor=me.who.sub, request_id=request_id(request),
            campaign_id=filters.campaign) as out:
        return await stream_workbook(request, out, SECURITY_HEADERS)
