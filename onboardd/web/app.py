"""The aiohttp application: middlewares, routes of every area, shared services."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiohttp import web

from onboardd.runtime import Services
from onboardd.web import (
    admin,
    api_analytics,
    api_campaigns,
    api_delivery,
    api_imports,
    api_mobile,
    api_offers,
    api_privacy,
    api_salon_settings,
    front,
    health,
    metrics,
    openapi,
    ratelimit,
    webhooks,
)
from onboardd.web.keys import READINESS, SERVICES
from onboardd.web.middleware import request_context

# JSON bodies are small; the import upload streams its multipart body with its own limit.
MAX_JSON_BODY = 1024 * 1024


def _area_routes() -> Iterable[web.RouteTableDef]:
    """Route tables of every API area (imported here so the app is the one place wiring them)."""
    tables: list[web.RouteTableDef] = [
        api_campaigns.routes,
        webhooks.routes,
        api_delivery.routes,
        api_offers.routes,
        api_mobile.routes,
        api_imports.routes,
        api_analytics.routes,
        api_privacy.routes,
        api_salon_settings.routes,
    ]
    return tables


def create_app(services: Services,
               readiness: Callable[[], dict[str, str]] | None = None) -> web.Application:
    """Build the app around already-started services."""
    # Every request's context first, then the checks of its area (onboardd.web.front).
    app = web.Application(middlewares=[request_context, front.by_area],
                          client_max_size=MAX_JSON_BODY)
    app[SERVICES] = services
    ratelimit.setup(app, services.cfg.ratelimit)
    if readiness is not None:
        app[READINESS] = readiness
    app.add_routes(health.routes)
    app.add_routes(metrics.routes)
    for table in _area_routes():
        app.add_routes(table)
    openapi.setup(app)
    admin.setup(app)
    return app
