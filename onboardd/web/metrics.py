"""GET /metrics: this instance's Prometheus metrics; and the timing of Twilio's webhooks.

/metrics sits outside /api and needs no JWT. With ``[metrics] token`` set it answers only a
request carrying ``Authorization: Bearer <token>`` (compared in constant time); anything else
is 401 in the one JSON error shape.
"""

from __future__ import annotations

import hmac
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from onboardd.web.errors import ApiError
from onboardd.web.keys import services as services_of
from onboardd.web.middleware import Handler

routes = web.RouteTableDef()

METRICS_PATH = "/metrics"
WEBHOOKS_PREFIX = "/api/webhooks/"


def _check_token(request: web.Request, expected: str) -> None:
    """401 unless the request carries the configured bearer token."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                          expected.encode()):
        return
    raise ApiError(401, "metrics need Authorization: Bearer <[metrics] token>",
                   headers={"WWW-Authenticate": "Bearer"})


@routes.get(METRICS_PATH)
async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text exposition of this instance."""
    svc = services_of(request)
    if svc.cfg.metrics.token:
        _check_token(request, svc.cfg.metrics.token)
    return web.Response(body=svc.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _route_label(request: web.Request) -> str:
    """The route a webhook matched (its path pattern), so unknown paths add no series."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def time_webhooks(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Observe how long each Twilio webhook takes to answer, refusals included."""
    if not request.path.startswith(WEBHOOKS_PREFIX):
        return await handler(request)
    started = time.perf_counter()
    try:
        return await handler(request)
    finally:
        services_of(request).metrics.webhook_answered(_route_label(request),
                                                      time.perf_counter() - started)
