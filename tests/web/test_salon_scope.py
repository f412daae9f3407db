"""One salon id per request: authorization and handlers read the same decoded route parameter,
ids holding a '/' never reach a handler, and a salon named in a token that does not exist is a
404 (never a 500) on every salon route, with nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from onboardd.auth import TokenCodec
from onboardd.runtime import Services
from tests.conftest import bearer, decode, error_of

Client = TestClient[Any, Any]
OFFER = {"name": "Welcome", "discountType": "fixed", "discountValue": 10000}
TABLES = ("welcome_offers", "invitation_campaigns", "customer_import_batches")


async def _rows(services: Services) -> dict[str, int]:
    """How many rows each table a salon route writes to holds."""
    async with services.pool.acquire() as conn:
        return {table: await conn.fetchval(f"SELECT count(*) FROM {table}")
                for table in TABLES}


async def test_an_encoded_slash_path_is_refused_and_writes_nothing(
        client: Client, services: Services, tokens: TokenCodec) -> None:
    # The finding: A's admin reads and writes "salon A/../B" through A%2F..%2FB.
    async with services.pool.acquire() as conn:
        await conn.execute("INSERT INTO salons (id, name) VALUES ('A', 'A'), ('B', 'B')")
    headers = bearer(tokens, "admin-a", "admin", ["A"])
    before = await _rows(services)
    resp = await client.get("/api/salons/A%2F..%2FB/welcome-offers", headers=headers)
    error_of(resp.status, await resp.read(), 404)
    resp = await client.post("/api/salons/A%2F..%2FB/welcome-offers", headers=headers,
                             json=OFFER)
    error_of(resp.status, await resp.read(), 404)
    assert await _rows(services) == before


@pytest.mark.parametrize("encoded", ["A%2F..%2FB", "A%2f..%2fB", "A%2FB", "%2F", "A%252F..%2FB"])
async def test_a_salon_id_holding_a_slash_never_routes_even_when_granted(
        client: Client, services: Services, tokens: TokenCodec, encoded: str) -> None:
    # Even a salon whose id holds a '/' and a token granting it: such ids never route.
    slashed = encoded.replace("%25", "%").replace("%2F", "/").replace("%2f", "/")
    async with services.pool.acquire() as conn:
        await conn.execute("INSERT INTO salons (id, name) VALUES ($1, 'slashed')", slashed)
    headers = bearer(tokens, "admin-a", "admin", [slashed, "A"])
    before = await _rows(services)
    url = f"/api/salons/{encoded}/welcome-offers"
    resp = await client.get(url, headers=headers)
    error = error_of(resp.status, await resp.read(), 404)
    assert "'/'" in error["message"]
    resp = await client.post(url, headers=headers, json=OFFER)
    error_of(resp.status, await resp.read(), 404)
    assert await _rows(services) == before


async def test_the_handler_sees_the_salon_the_token_was_checked_for(
        client: Client, tokens: TokenCodec, salon: str) -> None:
    # The same decoded value for both: a token for another salon is refused whatever the
    # spelling of the path segment.
    other = bearer(tokens, "admin-2", "admin", ["someone-else"])
    encoded = "".join(f"%{byte:02X}" for byte in salon.encode())
    resp = await client.get(f"/api/salons/{encoded}/welcome-offers", headers=other)
    error_of(resp.status, await resp.read(), 403)
    mine = bearer(tokens, "admin-1", "admin", [salon])
    resp = await client.get(f"/api/salons/{encoded}/welcome-offers", headers=mine)
    assert (resp.status, decode(await resp.read())) == (200, {"offers": []})


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "welcome-offers", OFFER),
    ("POST", "invitation-campaigns", {"name": "Launch", "channel": "sms",
                                      "messageTemplate": "Hi {{customer_name}}, welcome"}),
    ("GET", "welcome-offers", None),
    ("GET", "customers/imported", None),
    ("GET", "invitation-campaigns", None),
])
async def test_a_salon_that_does_not_exist_is_404_on_every_route(
        client: Client, services: Services, tokens: TokenCodec, method: str, path: str,
        body: Any) -> None:
    headers = bearer(tokens, "admin-1", "admin", ["no-such-salon"])
    before = await _rows(services)
    resp = await client.request(method, f"/api/salons/no-such-salon/{path}", headers=headers,
                                json=body)
    error = error_of(resp.status, await resp.read(), 404)
    assert error["details"] == {"salonId": "no-such-salon"}
    assert "no-such-salon" in error["message"]
    assert await _rows(services) == before


async def test_unauthenticated_and_foreign_callers_learn_nothing_about_existence(
        client: Client, tokens: TokenCodec, salon: str) -> None:
    # 401 and 403 come before the existence check: the answer is the same for a salon that
    # exists and one that does not.
    stranger = bearer(tokens, "admin-2", "admin", ["elsewhere"])
    for salon_id in (salon, "no-such-salon"):
        resp = await client.get(f"/api/salons/{salon_id}/welcome-offers")
        error_of(resp.status, await resp.read(), 401)
        resp = await client.get(f"/api/salons/{salon_id}/welcome-offers", headers=stranger)
        error_of(resp.status, await resp.read(), 403)
