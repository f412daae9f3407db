"""GET /metrics: this instance's Prometheus metrics (Twilio's webhooks are timed by the request
middleware, onboardd.web.middleware).

/metrics sits outside /api and needs no JWT. With ``[metrics] token`` set it answers only a
request carrying ``Authorization: Bearer <token>`` (compared in constant time); anything else
is 401 in the one JSON error shape.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from onboardd.web.contract import Media, operation
from onboardd.web.errors import ApiError
from onboardd.web.keys import services as services_of

routes = web.RouteTableDef()

METRICS_PATH = "/metrics"


def _check_token(request: web.Request, expected: str) -> None:
    """401 unless the request carries the configured bearer token."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                          expected.encode()):
        return
    raise ApiError(401, "metrics need Authorization: Bearer <[metrics] token>",
                   headers={"WWW-Authenticate": "Bearer"})


@routes.get(METRICS_PATH)
@operation("This instance's metrics in the Prometheus text format",
           answers={200: Media("text/plain", "Prometheus text exposition (version 0.0.4)")},
           refusals={401: "[metrics] token is set and the request does not carry it"})
async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text exposition of this instance."""
    svc = services_of(request)
    if svc.cfg.metrics.token:
        _check_token(request, svc.cfg.metrics.token)
    return web.Response(body=svc.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
