"""/healthz (the process answers) and /readyz (database, migrations, actors)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from onboardd.db.migrate import pending
from onboardd.web.errors import ApiError, json_response
from onboardd.web.keys import READINESS, SERVICES

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    """Alive: the event loop answers."""
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready: database reachable, migrations applied, every actor running."""
    failing: dict[str, str] = {}
    try:
        async with asyncio.timeout(2.0):
            async with request.app[SERVICES].pool.acquire() as conn:
                left = await pending(conn)
        if left:
            failing["migrations"] = f"{len(left)} not applied: " + ", ".join(
                f"{m.version:04d}_{m.name}" for m in left)
    except (OSError, TimeoutError) as exc:
        failing["database"] = f"unreachable: {exc.__class__.__name__}"
    except Exception as exc:
        failing["database"] = f"error: {exc.__class__.__name__}: {exc}"
    reporter = request.app.get(READINESS)
    if reporter is not None:
        failing.update(reporter())
    if failing:
        raise ApiError(503, "not ready: " + "; ".join(f"{k}: {v}" for k, v in failing.items()),
                       details={"failing": failing})
    return json_response({"status": "ready"})
