"""Admin welcome-offer API over real HTTP: validation, CRUD, redemptions, tenant isolation."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from onboardd.auth import TokenCodec
from onboardd.runtime import Services
from tests.conftest import bearer, decode
from tests.integration.test_offer_matcher import add_offer, add_salon, register

DAY, HOUR = timedelta(days=1), timedelta(hours=1)
VALID: dict[str, Any] = {
    "name": "Welcome 15%",
    "discountType": "percentage",
    "discountValue": 15,
    "maxDiscountInPaisa": 20000,
    "minimumPurchaseInPaisa": 50000,
    "validityDays": 30,
    "usageLimit": 1,
}


def url(salon: str, rest: str = "") -> str:
    return f"/api/salons/{salon}/welcome-offers{rest}"


async def test_create_list_get_update_deactivate(
        client: TestClient[Any, Any], salon: str, admin_headers: dict[str, str],
        services: Services) -> None:
    resp = await client.post(url(salon), json=VALID, headers=admin_headers)
    assert resp.status == 201, await resp.text()
    offer = decode(await resp.read())
    assert offer["salonId"] == salon and offer["isActive"] is True
    assert offer["discountType"] == "percentage" and offer["offerAmount"] == "15%"
    assert offer["totalRedemptions"] == 0 and offer["maxDiscountInPaisa"] == 20000
    fixed = await client.post(url(salon), headers=admin_headers, json={
        "name": "Flat 100", "discountType": "fixed", "discountValue": 10000})
    assert fixed.status == 201
    assert decode(await fixed.read())["offerAmount"] == "₹100"

    listed = decode(await (await client.get(url(salon), headers=admin_headers)).read())
    assert [o["name"] for o in listed["offers"]] == ["Flat 100", "Welcome 15%"]

    got = await client.get(url(salon, f"/{offer['id']}"), headers=admin_headers)
    assert decode(await got.read())["id"] == offer["id"]

    put = await client.put(url(salon, f"/{offer['id']}"), headers=admin_headers,
                           json={"discountValue": 20, "maxDiscountInPaisa": None})
    assert put.status == 200, await put.text()
    updated = decode(await put.read())
    assert updated["discountValue"] == 20 and updated["maxDiscountInPaisa"] is None
    assert updated["name"] == "Welcome 15%" and updated["minimumPurchaseInPaisa"] == 50000

    off = await client.post(url(salon, f"/{offer['id']}/deactivate"), headers=admin_headers)
    assert off.status == 200
    deactivated = decode(await off.read())
    assert deactivated["isActive"] is False
    active = decode(await (await client.get(url(salon) + "?active=true",
                                            headers=admin_headers)).read())
    assert [o["name"] for o in active["offers"]] == ["Flat 100"]
    row_before = await services.pool.fetchrow("SELECT * FROM welcome_offers WHERE id = $1",
                                              offer["id"])
    # DELETE of an offer already deactivated: the same offer, unchanged, and nothing written.
    deleted = await client.delete(url(salon, f"/{offer['id']}"), headers=admin_headers)
    assert deleted.status == 200
    # (Only updated_at moves: the repeated deactivation is still written; reported.)
    again = decode(await deleted.read())
    assert {k: v for k, v in again.items() if k != "updatedAt"} == {
        k: v for k, v in deactivated.items() if k != "updatedAt"}
    row_after = await services.pool.fetchrow("SELECT * FROM welcome_offers WHERE id = $1",
                                             offer["id"])
    assert {k: v for k, v in row_after.items() if k != "updated_at"} == {
        k: v for k, v in row_before.items() if k != "updated_at"}
    assert await services.pool.fetchval("SELECT count(*) FROM welcome_offers "
                                        "WHERE salon_id = $1 AND is_active = 1", salon) == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"discountType": "bogo"}, "discountType"),
    ({"discountValue": 0}, "discountValue"),
    ({"discountValue": 101}, "discountValue"),
    ({"discountType": "fixed", "discountValue": 0, "maxDiscountInPaisa": None}, "discountValue"),
    ({"discountType": "fixed", "discountValue": 5000}, "maxDiscountInPaisa"),
    ({"minimumPurchaseInPaisa": -1}, "minimumPurchaseInPaisa"),
    ({"validityDays": 0}, "validityDays"),
    ({"validityDays": 366}, "validityDays"),
    ({"usageLimit": 0}, "usageLimit"),
    ({"name": "  "}, "name"),
    ({"discountValue": "ten"}, "discountValue"),
    ({"name": None}, "name"),
    ({"discountvalue": 10}, "discountvalue"),
])
async def test_every_invalid_field_is_a_422_naming_it(
        client: TestClient[Any, Any], salon: str, admin_headers: dict[str, str],
        change: dict[str, Any], field: str) -> None:
    resp = await client.post(url(salon), json={**VALID, **change}, headers=admin_headers)
    assert resp.status == 422, await resp.text()
    error = decode(await resp.read())["error"]
    assert error["details"]["field"] == field
    assert field in error["message"]


async def test_missing_field_and_bad_update_are_named(
        client: TestClient[Any, Any], salon: str, admin_headers: dict[str, str]) -> None:
    body = {k: v for k, v in VALID.items() if k != "discountValue"}
    resp = await client.post(url(salon), json=body, headers=admin_headers)
    assert resp.status == 422
    assert decode(await resp.read())["error"]["details"]["field"] == "discountValue"
    created = decode(await (await client.post(url(salon), json=VALID,
                                              headers=admin_headers)).read())
    # Switching to fixed while keeping the percentage cap is refused, naming the cap.
    resp = await client.put(url(salon, f"/{created['id']}"), headers=admin_headers,
                            json={"discountType": "fixed", "discountValue": 5000})
    assert resp.status == 422
    assert decode(await resp.read())["error"]["details"]["field"] == "maxDiscountInPaisa"
    resp = await client.post(url(salon), data=b"{", headers={
        **admin_headers, "Content-Type": "application/json"})
    assert resp.status == 400


async def test_redemptions_paginated_with_status_filter(
        client: TestClient[Any, Any], services: Services, salon: str,
        admin_headers: dict[str, str]) -> None:
    pool = services.pool
    offer = await add_offer(pool, salon, usage_limit=5)
    users = [await register(pool, f"+9198000001{i:02d}") for i in range(5)]
    for i, user in enumerate(users):
        status, booking, expiry = (("redeemed", f"b{i}", DAY) if i < 2 else
                                   ("active", None, -HOUR if i == 4 else DAY))
        await pool.execute(
            "INSERT INTO welcome_offer_redemptions (welcome_offer_id, user_id, booking_id, "
            "discount_applied_in_paisa, expires_at, status, redeemed_at) VALUES "
            "($1, $2, $3::varchar, $4, now() + $5, $6, "
            "CASE WHEN $3::varchar IS NULL THEN NULL ELSE now() END)",
            offer, user, booking, 100 if booking else 0, expiry, status)
    resp = await client.get(url(salon, f"/{offer}/redemptions?limit=2&page=1"),
                            headers=admin_headers)
    page = decode(await resp.read())
    assert page["total"] == 5 and len(page["redemptions"]) == 2 and page["limit"] == 2
    page3 = decode(await (await client.get(url(salon, f"/{offer}/redemptions?limit=2&page=3"),
                                           headers=admin_headers)).read())
    assert len(page3["redemptions"]) == 1
    beyond = decode(await (await client.get(url(salon, f"/{offer}/redemptions?limit=2&page=9"),
                                            headers=admin_headers)).read())
    assert beyond["redemptions"] == [] and beyond["total"] == 5
    for status, count in (("redeemed", 2), ("active", 2), ("expired", 1)):
        body = decode(await (await client.get(
            url(salon, f"/{offer}/redemptions?status={status}"), headers=admin_headers)).read())
        assert body["total"] == count
        assert {r["status"] for r in body["redemptions"]} == {status}
    bad = await client.get(url(salon, f"/{offer}/redemptions?status=used"), headers=admin_headers)
    assert bad.status == 422 and decode(await bad.read())["error"]["details"]["field"] == "status"
    bad = await client.get(url(salon, f"/{offer}/redemptions?limit=1000"), headers=admin_headers)
    assert bad.status == 422 and decode(await bad.read())["error"]["details"]["field"] == "limit"


async def test_tenant_isolation(client: TestClient[Any, Any], services: Services, salon: str,
                                tokens: TokenCodec, admin_headers: dict[str, str]) -> None:
    other = await add_salon(services.pool, "Other Salon")
    theirs = await add_offer(services.pool, other)
    # An admin of `salon` cannot reach the other salon at all...
    resp = await client.get(url(other), headers=admin_headers)
    assert resp.status == 403
    # ...nor its offer through their own salon's path (404, as if it did not exist).
    for method, rest in (("GET", ""), ("PUT", ""), ("POST", "/deactivate"), ("DELETE", ""),
                         ("GET", "/redemptions")):
        resp = await client.request(method, url(salon, f"/{theirs}{rest}"),
                                    headers=admin_headers, json={"name": "x"})
        assert resp.status == 404, (method, rest)
    # An admin of both salons sees each salon's own offers only.
    both = bearer(tokens, "admin-2", "admin", [salon, other])
    mine = decode(await (await client.get(url(salon), headers=both)).read())
    assert mine["offers"] == []
    assert await services.pool.fetchval("SELECT is_active FROM welcome_offers") == 1


async def test_customer_token_cannot_use_admin_api(
        client: TestClient[Any, Any], salon: str, tokens: TokenCodec) -> None:
    customer = bearer(tokens, "user-1", "customer", [salon])
    resp = await client.get(url(salon), headers=customer)
    assert resp.status == 403
    resp = await client.post(url(salon), json=VALID)
    assert resp.status == 401


async def test_concurrent_edits_apply_in_turn(
        client: TestClient[Any, Any], services: Services, salon: str,
        admin_headers: dict[str, str]) -> None:
    created = decode(await (await client.post(url(salon), headers=admin_headers, json={
        **VALID, "maxDiscountInPaisa": None})).read())
    path = url(salon, f"/{created['id']}")
    to_fixed = {"discountType": "fixed", "discountValue": 10000}
    capped = {"maxDiscountInPaisa": 25000}
    # Hold the offer's row so both edits are in flight before either can finish; without the
    # edit's own lock each would read the uncapped percentage offer and write it back whole.
    async with services.pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM welcome_offers WHERE id = $1 FOR UPDATE",
                             created["id"])
        puts = [asyncio.create_task(client.put(path, headers=admin_headers, json=body))
                for body in (to_fixed, capped)]
        for _ in range(1000):
            waiting = await services.pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")
            if waiting == 2:
                break
            await asyncio.sleep(0.01)
        assert waiting == 2
        await tx.commit()
        responses = await asyncio.gather(*puts)
    bodies = [decode(await r.read()) for r in responses]
    # Whichever went second was merged into the first's result: a fixed offer with a cap (or a
    # cap on a now-fixed offer) is refused, naming the cap. Nothing is silently reverted.
    assert sorted(r.status for r in responses) == [200, 422], bodies
    won = next(b for r, b in zip(responses, bodies, strict=True) if r.status == 200)
    lost = next(b for r, b in zip(responses, bodies, strict=True) if r.status == 422)
    assert lost["error"]["details"]["field"] == "maxDiscountInPaisa"
    final = decode(await (await client.get(path, headers=admin_headers)).read())
    assert final == won
    assert (final["discountType"], final["discountValue"], final["maxDiscountInPaisa"]) in (
        ("fixed", 10000, None), ("percentage", 15, 25000))
