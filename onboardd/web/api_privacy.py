"""Data-subject rights and audit (spec §9.1, issue 16), admin token:

GET /api/salons/{salonId}/customers/imported/{customerId}/export
    everything stored about one imported customer, decrypted (written to pii_access_log)
GET /api/salons/{salonId}/pii-access-log?from=&to=&page=&limit=&customerId=
    who read or exported whose PII, through which route, and when; newest first

The erase is DELETE /api/salons/{salonId}/customers/imported/{customerId} (api_imports).
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from onboardd.domain import audit
from onboardd.services import privacy as service
from onboardd.web.errors import ApiError, json_response
from onboardd.web.keys import principal, request_id, salon_of, services

routes = web.RouteTableDef()

EXPORT: Final = "/api/salons/{salonId}/customers/imported/{customerId}/export"
ACCESS_LOG: Final = "/api/salons/{salonId}/pii-access-log"
PAGE_MAX: Final = 1_000_000
MAX_ID_CHARS: Final = 200


def _bad(parameter: str, message: str) -> ApiError:
    return ApiError(400, f"{parameter}: {message}", code="invalid_parameter",
                    details={"parameter": parameter})


def _whole(request: web.Request, name: str, default: int, maximum: int) -> int:
    """A whole number from 1 to maximum, else 400 naming the parameter."""
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(maximum)):
        raise _bad(name, f"'{raw[:40]}' is not a whole number from 1 to {maximum}")
    value = int(raw)
    if not 1 <= value <= maximum:
        raise _bad(name, f"must be from 1 to {maximum}, got {value}")
    return value


def _bound(request: web.Request, name: str) -> audit.Bound | None:
    raw = request.query.get(name, "").strip()
    if not raw:
        return None
    try:
        return audit.parse_bound(name, raw)
    except audit.BadParameter as exc:
        raise _bad(exc.parameter, exc.reason) from None


@routes.get(EXPORT)
async def export_customer(request: web.Request) -> web.StreamResponse:
    """Everything stored about one imported customer, decrypted, as one JSON document."""
    body = await service.export_customer(
        services(request), salon_id=salon_of(request),
        customer_id=request.match_info["customerId"], actor=principal(request).sub,
        request_id=request_id(request))
    return json_response(body, headers={"Cache-Control": "no-store"})


@routes.get(ACCESS_LOG)
async def access_log(request: web.Request) -> web.StreamResponse:
    """A page of the salon's PII access log (dates are days in the salon's timezone)."""
    raw_from, raw_to = _bound(request, "from"), _bound(request, "to")
    page = _whole(request, "page", 1, PAGE_MAX)
    limit = _whole(request, "limit", 50, service.ACCESS_PAGE_MAX)
    customer_id = request.query.get("customerId", "").strip() or None
    if customer_id is not None and len(customer_id) > MAX_ID_CHARS:
        raise _bad("customerId", f"at most {MAX_ID_CHARS} characters")
    if customer_id is not None and not customer_id.isprintable():
        raise _bad("customerId", "must not hold control characters; give a customer's id "
                   "as the customer list shows it")
    try:
        view = await service.access_log(services(request), salon_id=salon_of(request),
                                        raw_from=raw_from, raw_to=raw_to,
                                        customer_id=customer_id, page=page, limit=limit)
    except audit.BadParameter as exc:
        raise _bad(exc.parameter, exc.reason) from None
    return json_response(view, headers={"Cache-Control": "no-store"})
