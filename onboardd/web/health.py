"""/healthz (the process answers) and /readyz (database, migrations, actors)."""

from __future__ import annotations

import asyncio
import functools

from aiohttp import web

from onboardd.db.migrate import schema_problem
from onboardd.db.pool import Pool, unreachable
from onboardd.web.contract import Status, operation
from onboardd.web.errors import ApiError, json_response
from onboardd.web.keys import READINESS, SERVICES

routes = web.RouteTableDef()

# Longest /readyz waits for the database (a connection and the schema check).
READYZ_DB_TIMEOUT_S = 2.0

# The database check of each pool still running after its /readyz answered (a hung server):
# while one runs, /readyz does not start another, so a hung server cannot pile up checks that
# each hold a pool connection.
_late_checks: dict[int, asyncio.Task[str | None]] = {}


async def _schema_problem(pool: Pool) -> str | None:
    async with pool.acquire() as conn:
        return await schema_problem(conn)


def _late_check_done(key: int, task: asyncio.Task[str | None]) -> None:
    _late_checks.pop(key, None)
    if not task.cancelled():
        task.exception()  # retrieved: /readyz already reported the database


async def _database_problem(pool: Pool) -> dict[str, str]:
    """{"database" or "migrations": problem}, empty when fine; within READYZ_DB_TIMEOUT_S.

    The check runs in its own task: when the server does not answer, asyncpg's release of the
    cancelled query waits for the server (up to the command timeout), so /readyz answers at the
    bound and leaves that wait to the task.
    """
    key = id(pool)
    if key in _late_checks:
        return {"database": f"unreachable: no answer within {READYZ_DB_TIMEOUT_S:g}s"}
    check = asyncio.ensure_future(_schema_problem(pool))
    try:
        done, _ = await asyncio.wait({check}, timeout=READYZ_DB_TIMEOUT_S)
        if not done:
            check.cancel()
            _late_checks[key] = check
            check.add_done_callback(functools.partial(_late_check_done, key))
            return {"database": f"unreachable: no answer within {READYZ_DB_TIMEOUT_S:g}s"}
        problem = check.result()
    except Exception as exc:
        # The class only when unreachable: an OSError's text names the server's address.
        return {"database": f"unreachable: {exc.__class__.__name__}" if unreachable(exc)
                else f"error: {exc.__class__.__name__}: {exc}"}
    return {"migrations": problem} if problem else {}


@routes.get("/healthz")
@operation("Alive: the event loop answers", answers={200: Status})
async def healthz(_request: web.Request) -> web.Response:
    """Alive: the event loop answers."""
    return json_response(Status(status="ok"))


@routes.get("/readyz")
@operation("Ready: database reachable and migrated, every actor running",
           answers={200: Status},
           refusals={503: "Not ready; details.failing names each failing component"})
async def readyz(request: web.Request) -> web.Response:
    """Ready: database reachable, at exactly the package's newest migration, every actor
    running. A database that is down or restarting makes it answer 503 at once (no socket,
    "starting up"), one that does not answer after READYZ_DB_TIMEOUT_S."""
    failing = await _database_problem(request.app[SERVICES].pool)
    reporter = request.app.get(READINESS)
    if reporter is not None:
        failing.update(reporter())
    if failing:
        raise ApiError(503, "not ready: " + "; ".join(f"{k}: {v}" for k, v in failing.items()),
                       details={"failing": failing})
    return json_response(Status(status="ready"))
