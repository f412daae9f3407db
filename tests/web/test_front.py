"""The web front: health, readiness, the JSON error shape, request ids, auth."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from onboardd.auth import TokenCodec
from onboardd.config import Config
from onboardd.db.migrate import available, newest_version
from onboardd.runtime import Services
from onboardd.web.app import create_app
from onboardd.web.errors import ApiError, json_response
from onboardd.web.keys import principal, salon_of
from tests.conftest import JWT_SECRET, bearer, decode


@pytest.fixture
async def front(services: Services) -> AsyncIterator[TestClient[Any, Any]]:
    """The real app plus a few probe routes behind the real middleware."""
    failing: dict[str, str] = {}
    app = create_app(services, lambda: dict(failing))

    async def salon_probe(request: web.Request) -> web.Response:
        return json_response({"sub": principal(request).sub,
                              "salon": salon_of(request)})

    async def mobile_probe(request: web.Request) -> web.Response:
        return json_response({"sub": principal(request).sub})

    async def boom(_request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    async def conflict(_request: web.Request) -> web.Response:
        raise ApiError(409, "already sending", details={"campaignId": "c1"})

    app.router.add_get("/api/salons/{salonId}/probe", salon_probe)
    app.router.add_post("/api/salons/{salonId}/probe", salon_probe)
    app.router.add_get("/api/mobile/probe", mobile_probe)
    app.router.add_get("/api/salons/{salonId}/boom", boom)
    app.router.add_get("/api/salons/{salonId}/conflict", conflict)
    async with TestClient(TestServer(app)) as client:
        client.failing = failing  # type: ignore[attr-defined]
        yield client


def _assert_error(body: bytes, code: str) -> dict[str, Any]:
    data = decode(body)
    assert set(data) == {"error"}
    assert set(data["error"]) == {"code", "message", "details"}
    assert data["error"]["code"] == code
    assert data["error"]["message"]
    err: dict[str, Any] = data["error"]
    return err


async def test_healthz_and_readyz(front: TestClient[Any, Any]) -> None:
    resp = await front.get("/healthz")
    assert resp.status == 200 and decode(await resp.read()) == {"status": "ok"}
    resp = await front.get("/readyz")
    assert resp.status == 200 and decode(await resp.read()) == {"status": "ready"}
    front.failing["actor:dispatcher"] = "backing_off"  # type: ignore[attr-defined]
    resp = await front.get("/readyz")
    assert resp.status == 503
    err = _assert_error(await resp.read(), "unavailable")
    assert err["details"]["failing"] == {"actor:dispatcher": "backing_off"}


async def test_readyz_reports_pending_migrations(front: TestClient[Any, Any],
                                                 services: Services) -> None:
    await services.pool.execute("DELETE FROM onboardd_schema_migrations")
    resp = await front.get("/readyz")
    assert resp.status == 503
    failing = _assert_error(await resp.read(), "unavailable")["details"]["failing"]
    # A count of the pending migrations, not the newest number: numbers may have gaps.
    assert failing["migrations"].startswith(f"{len(available())} not applied: 0001_initial")


async def test_readyz_is_not_ready_when_the_database_is_ahead_of_the_package(
        front: TestClient[Any, Any], services: Services) -> None:
    ahead = newest_version() + 1
    await services.pool.execute(
        "INSERT INTO onboardd_schema_migrations (version, name) VALUES ($1, 'from_the_future')",
        ahead)
    resp = await front.get("/readyz")
    assert resp.status == 503
    failing = _assert_error(await resp.read(), "unavailable")["details"]["failing"]
    assert failing == {"migrations": f"the database is at version {ahead}, newer than this "
                       f"package's newest migration {newest_version()}: upgrade onboardd"}


async def test_missing_bad_and_expired_tokens_are_401(front: TestClient[Any, Any],
                                                      salon: str) -> None:
    now = int(time.time())
    expired = jwt.encode({"sub": "a", "role": "admin", "salons": [salon], "exp": now - 10},
                         JWT_SECRET)
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nonsense"},
                    {"Authorization": f"Bearer {expired}"}):
        resp = await front.get(f"/api/salons/{salon}/probe", headers=headers)
        assert resp.status == 401, headers
        _assert_error(await resp.read(), "unauthorized")
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_salon_scope_and_roles_are_403(front: TestClient[Any, Any], tokens: TokenCodec,
                                              salon: str) -> None:
    mine = bearer(tokens, "admin-1", "admin", [salon])
    resp = await front.get(f"/api/salons/{salon}/probe", headers=mine)
    assert resp.status == 200
    assert decode(await resp.read()) == {"sub": "admin-1", "salon": salon}
    resp = await front.get("/api/salons/other-salon/probe", headers=mine)
    assert resp.status == 403
    _assert_error(await resp.read(), "forbidden")
    customer = bearer(tokens, "user-1", "customer", [salon])
    assert (await front.get(f"/api/salons/{salon}/probe", headers=customer)).status == 403
    assert (await front.get("/api/mobile/probe", headers=mine)).status == 403
    resp = await front.get("/api/mobile/probe", headers=customer)
    assert resp.status == 200 and decode(await resp.read()) == {"sub": "user-1"}


async def test_errors_are_json_never_html_or_tracebacks(front: TestClient[Any, Any],
                                                        admin_headers: dict[str, str],
                                                        salon: str) -> None:
    resp = await front.get("/no/such/path")
    assert resp.status == 404 and resp.content_type == "application/json"
    _assert_error(await resp.read(), "not_found")
    resp = await front.delete(f"/api/salons/{salon}/probe", headers=admin_headers)
    assert resp.status == 405
    _assert_error(await resp.read(), "method_not_allowed")
    resp = await front.get(f"/api/salons/{salon}/boom", headers=admin_headers)
    assert resp.status == 500
    err = _assert_error(await resp.read(), "internal_error")
    assert "secret internals" not in err["message"]
    assert resp.headers["X-Request-Id"] in err["message"]
    resp = await front.get(f"/api/salons/{salon}/conflict", headers=admin_headers)
    assert resp.status == 409
    assert _assert_error(await resp.read(), "conflict")["details"] == {"campaignId": "c1"}
    resp = await front.post(f"/api/salons/{salon}/probe", headers=admin_headers,
                            data=b"x" * (2 * 1024 * 1024))
    # The probe never reads its body, so the size limit (enforced when a body is read) does
    # not apply: the middleware lets it through and the probe answers.
    assert resp.status == 200
    assert decode(await resp.read()) == {"sub": "admin-1", "salon": salon}


async def test_request_id_is_echoed_or_generated(front: TestClient[Any, Any]) -> None:
    resp = await front.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"
    resp = await front.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    made = resp.headers["X-Request-Id"]
    assert len(made) == 32 and int(made, 16) >= 0
    resp = await front.get("/healthz")
    assert resp.headers["X-Request-Id"] not in (made, "")


async def test_nul_characters_and_huge_numbers_are_422_not_500(
        client: TestClient[Any, Any], admin_headers: dict[str, str], salon: str) -> None:
    resp = await client.get(f"/api/salons/{salon}/invitation-campaigns?page=99999999999999",
                            headers=admin_headers)
    assert resp.status == 422
    assert "page" in _assert_error(await resp.read(), "validation_failed")["message"]
    resp = await client.post(f"/api/salons/{salon}/welcome-offers", headers=admin_headers,
                             json={"name": "a\u0000b", "discountType": "fixed",
                                   "discountValue": 100})
    assert resp.status == 422
    assert "NUL" in _assert_error(await resp.read(), "validation_failed")["message"]
    resp = await client.get(f"/api/salons/{salon}/customers/imported?search=a%00b",
                            headers=admin_headers)
    assert resp.status == 422
    _assert_error(await resp.read(), "validation_failed")


async def test_a_stalled_body_is_408_whatever_the_handler_makes_of_it(
        services: Services, make_config: Callable[..., Config]) -> None:
    # The handler swallows every read error; the caller still hears 408 and the connection
    # is closed.
    cfg = make_config(HTTP_BODY_IDLE_TIMEOUT_S="0.3", HTTP_BODY_TIMEOUT_S="5")
    app = create_app(dataclasses.replace(services, cfg=cfg))

    async def swallowing(request: web.Request) -> web.Response:
        try:
            return json_response({"bytes": len(await request.read())})
        except Exception:
            return json_response({"read": "failed"}, status=400)

    app.router.add_post("/probe-body", swallowing)
    async with TestClient(TestServer(app)) as client:
        port = client.server.port
        assert port is not None
        head = b"POST /probe-body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + b"x" * 10)
        raw = await asyncio.wait_for(reader.read(), timeout=10)  # answered, then closed
        writer.close()
        head_out, _, body = raw.partition(b"\r\n\r\n")
        assert head_out.startswith(b"HTTP/1.1 408 "), raw
        assert b"Connection: close" in head_out
        err = _assert_error(body, "request_timeout")
        assert err["message"].startswith("no byte of the request body arrived for 0.3 s")
        resp = await client.post("/probe-body", data=b"y" * 100)
        assert (resp.status, decode(await resp.read())) == (200, {"bytes": 100})
