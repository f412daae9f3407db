"""Data-subject rights and audit (spec §9.1, issue 16), admin token:

GET /api/salons/{salonId}/customers/imported/{customerId}/export
    everything stored about one imported customer, decrypted (written to pii_access_log)
GET /api/salons/{salonId}/pii-access-log?from=&to=&page=&limit=&customerId=
    who read or exported whose PII, through which route, and when; newest first

The erase is DELETE /api/salons/{salonId}/customers/imported/{customerId} (api_imports).
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from aiohttp import web

from onboardd.domain import audit
from onboardd.services import privacy as service
from onboardd.web.body import QUERY_INT_MAX, read_query
from onboardd.web.contract import operation
from onboardd.web.errors import field_error, json_response
from onboardd.web.keys import principal, request_id, salon_of, services

routes = web.RouteTableDef()

EXPORT: Final = "/api/salons/{salonId}/customers/imported/{customerId}/export"
ACCESS_LOG: Final = "/api/salons/{salonId}/pii-access-log"


class AccessLogQuery(msgspec.Struct, frozen=True, rename="camel"):
    """Window (dates are days in the salon's timezone), customer and page of the log."""

    from_: Annotated[str, msgspec.Meta(max_length=64, description=(
        "A date (YYYY-MM-DD) or a time with its UTC offset"))] | None = msgspec.field(
            name="from", default=None)
    to: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    customer_id: Annotated[str, msgspec.Meta(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$",
                                             description="Only reads of this customer")
                           ] | None = None
    page: Annotated[int, msgspec.Meta(ge=1, le=QUERY_INT_MAX)] = 1
    limit: Annotated[int, msgspec.Meta(ge=1, le=service.ACCESS_PAGE_MAX)] = 50


def _bound(name: str, raw: str | None) -> audit.Bound | None:
    if raw is None:
        return None
    try:
        return audit.parse_bound(name, raw)
    except audit.BadParameter as exc:
        raise field_error(exc.parameter, exc.reason) from None


@routes.get(EXPORT)
@operation("Everything stored about one imported customer, decrypted (logged)",
           answers={200: service.CustomerExport})
async def export_customer(request: web.Request) -> web.StreamResponse:
    """Everything stored about one imported customer, decrypted, as one JSON document."""
    body = await service.export_customer(
        services(request), salon_id=salon_of(request),
        customer_id=request.match_info["customerId"], actor=principal(request).sub,
        request_id=request_id(request))
    return json_response(body, headers={"Cache-Control": "no-store"})


@routes.get(ACCESS_LOG)
@operation("Who read or exported whose personal data, through which route, and when",
           query=AccessLogQuery, answers={200: service.AccessLogPage})
async def access_log(request: web.Request) -> web.StreamResponse:
    """A page of the salon's PII access log (dates are days in the salon's timezone)."""
    q = read_query(request, AccessLogQuery)
    raw_from, raw_to = _bound("from", q.from_), _bound("to", q.to)
    try:
        view = await service.access_log(services(request), salon_id=salon_of(request),
                                        raw_from=raw_from, raw_to=raw_to,
                                        customer_id=q.customer_id, page=q.page,
                                        limit=q.limit)
    except audit.BadParameter as exc:
        raise field_error(exc.parameter, exc.reason) from None
    return json_response(view, headers={"Cache-Control": "no-store"})
