"""Every log line of a request carries the request's ids as structlog context: its request id,
and once the caller is authorised its user and salon; nothing of one request leaks into the lines
of the next on the same kept-alive connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from onboardd.auth import TokenCodec
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.web.app import create_app
from tests.conftest import bearer

SALON_PROBE = "/api/salons/{salonId}/log-probe"
OPEN_PROBE = "/log-probe"  # not token-protected


async def _probe(request: web.Request) -> web.StreamResponse:
    # The suite logs at warning level: the probe line is a warning so it is captured. (A logger
    # made here, not at module level: pytest's collection would bind a module-level one to the
    # processors of that moment, which capture_logs no longer sees after a reconfiguration.)
    get_logger("test").warning("probe_inside_handler")
    return web.json_response({})


@pytest.fixture
async def probed(services: Services) -> AsyncIterator[TestClient[Any, Any]]:
    """The app with two more routes (a salon route, an open one) whose handler logs a line
    without passing any id."""
    app = create_app(services)
    app.router.add_get(SALON_PROBE, _probe)
    app.router.add_get(OPEN_PROBE, _probe)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_a_line_logged_inside_a_request_carries_its_salon_and_user(
        probed: TestClient[Any, Any], tokens: TokenCodec, salon: str) -> None:
    headers = {**bearer(tokens, "admin-7", "admin", [salon]), "X-Request-Id": "req-1"}
    with structlog.testing.capture_logs([structlog.contextvars.merge_contextvars]) as logs:
        resp = await probed.get(f"/api/salons/{salon}/log-probe", headers=headers)
        assert resp.status == 200
        # The next request on the same kept-alive connection has no token.
        resp = await probed.get(OPEN_PROBE, headers={"X-Request-Id": "req-2"})
        assert resp.status == 200
    first, second = [line for line in logs if line["event"] == "probe_inside_handler"]
    assert (first["salon_id"], first["user_id"], first["request_id"]) == (
        salon, "admin-7", "req-1")
    assert second["request_id"] == "req-2"
    assert "salon_id" not in second and "user_id" not in second


async def test_a_refused_salon_is_not_bound(probed: TestClient[Any, Any], tokens: TokenCodec,
                                            salon: str) -> None:
    # A customer token on a salon route: refused before any salon is bound.
    headers = bearer(tokens, "user-9", "customer")
    with structlog.testing.capture_logs([structlog.contextvars.merge_contextvars]) as logs:
        resp = await probed.get(f"/api/salons/{salon}/log-probe", headers=headers)
        assert resp.status == 403
        resp = await probed.get(OPEN_PROBE)
        assert resp.status == 200
    [line] = [line for line in logs if line["event"] == "probe_inside_handler"]
    assert "salon_id" not in line and "user_id" not in line
