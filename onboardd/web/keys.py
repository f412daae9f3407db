"""Typed keys for aiohttp application and request state."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from onboardd.auth import Principal
from onboardd.runtime import Services

SERVICES = web.AppKey("services", Services)
# Readiness reporter: returns {component: problem} for what is not ready — set by the daemon.
Readiness = Callable[[], dict[str, str]]
READINESS: web.AppKey[Readiness] = web.AppKey("readiness")

PRINCIPAL_KEY = web.RequestKey("principal", Principal)
REQUEST_ID_KEY = web.RequestKey("request_id", str)
# The salon of an /api/salons/{salonId}/... request, as authorized (set by the auth middleware).
SALON_ID_KEY = web.RequestKey("salon_id", str)


def principal(request: web.Request) -> Principal:
    """The verified caller (auth middleware guarantees it on /api/salons and /api/mobile)."""
    value: Principal | None = request.get(PRINCIPAL_KEY)
    if value is None:
        raise RuntimeError("route is not behind the auth middleware")
    return value


def salon_of(request: web.Request) -> str:
    """The salon of this request: the decoded {salonId} route parameter, exactly the value the
    auth middleware checked against the token and found in the salons table."""
    value: str | None = request.get(SALON_ID_KEY)
    if value is None:
        raise RuntimeError("route has no {salonId} or is not behind the auth middleware")
    return value


def services(request: web.Request) -> Services:
    """The daemon's shared services."""
    return request.app[SERVICES]


def request_id(request: web.Request) -> str:
    """The id of this request (also in logs and the X-Request-Id header)."""
    return str(request.get(REQUEST_ID_KEY, ""))
