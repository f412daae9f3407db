"""/healthz (the process answers) and /readyz (database, migrations, actors)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from onboardd.db.migrate import schema_problem
from onboardd.web.errors import ApiError, json_response
from onboardd.web.keys import READINESS, SERVICES

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    """Alive: the event loop answers."""
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready: database reachable, at exactly the package's newest migration, every actor
    running."""
    failing: dict[str, str] = {}
    try:
        async with asyncio.timeout(2.0):
            async with request.app[SERVICES].pool.acquire() as conn:
                problem = await schema_problem(conn)
        if problem:
            failing["migrations"] = problem
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
