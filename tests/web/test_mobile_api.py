"""Mobile API over real HTTP: check, claim, validate and redeem welcome offers (spec §5.3, §7.4)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from onboardd.auth import TokenCodec
from onboardd.config import Config
from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from tests.conftest import bearer, decode
from tests.integration.test_offer_matcher import (
    add_campaign,
    add_customer,
    add_offer,
    add_salon,
    register,
)

CHECK = "/api/mobile/check-imported-customer"
CLAIM = "/api/mobile/claim-welcome-offer"
VALIDATE = "/api/mobile/welcome-offers/validate"
REDEEM = "/api/mobile/welcome-offers/redeem"
RATE = 5


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    """A low check rate so the limit is reachable in a test."""
    return make_config(ratelimit_check_per_min=str(RATE))


async def grant(pool: asyncpg.Pool, offer: str, user: str,
                expires_in: timedelta = timedelta(days=30)) -> str:
    """The grant the matcher would have created."""
    grant_id: str = await pool.fetchval(
        "INSERT INTO welcome_offer_redemptions (welcome_offer_id, user_id, "
        "discount_applied_in_paisa, expires_at) VALUES ($1, $2, 0, now() + $3) RETURNING id",
        offer, user, expires_in)
    return grant_id


async def customer(client: TestClient[Any, Any], tokens: TokenCodec, services: Services,
                   phone: str) -> tuple[str, dict[str, str]]:
    """Register an app user; returns their id and headers."""
    user = await register(services.pool, phone)
    return user, bearer(tokens, user, "customer")


async def test_check_reports_best_match_and_every_salon(
        client: TestClient[Any, Any], services: Services, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    pool = services.pool
    older, recent = await add_salon(pool, "Older Salon"), await add_salon(pool, "Recent Salon")
    offer_old = await add_offer(pool, older, discount_type="fixed", value=10000, cap=None)
    offer_new = await add_offer(pool, recent, value=15, minimum=50000)
    await add_customer(pool, cipher, older, "+919876543210", invited_days_ago=10,
                       code="WELCOME-AAAAAA")
    await add_customer(pool, cipher, recent, "+919876543210", invited_days_ago=1)
    # The user's stored phone is another number; the host app verified this one (phone claim).
    user = await register(pool, "+919111111111")
    headers = bearer(tokens, user, "customer", phone="+919876543210")
    resp = await client.get(CHECK, params={"phone": "098765 43210"}, headers=headers)
    assert resp.status == 200, await resp.text()
    body = decode(await resp.read())
    assert body["isImported"] is True and body["salonName"] == "Recent Salon"
    assert body["ownNumber"] is True
    assert body["welcomeOffer"] == {
        "id": offer_new, "name": "Welcome 15%", "discountType": "percentage",
        "discountValue": 15, "maxDiscountInPaisa": 20000, "minimumPurchaseInPaisa": 50000,
        "validityDays": 30, "offerAmount": "15%"}
    assert [(m["salonId"], m["welcomeOffer"]["id"], m["offerCode"]) for m in body["matches"]
            ] == [(recent, offer_new, None), (older, offer_old, "WELCOME-AAAAAA")]
    assert body["matches"][1]["welcomeOffer"]["offerAmount"] == "₹100"
    assert "Priya" not in await resp.text()

    unknown = decode(await (await client.get(CHECK, params={"phone": "+919000000000"},
                                             headers=headers)).read())
    assert unknown == {"isImported": False, "salonName": None, "welcomeOffer": None,
                       "matches": []}


async def test_check_own_number_includes_code_to_claim(
        client: TestClient[Any, Any], services: Services, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    salon = await add_salon(services.pool, "S")
    await add_offer(services.pool, salon)
    await add_customer(services.pool, cipher, salon, "+919812345678", code="WELCOME-BCDEFG")
    _, headers = await customer(client, tokens, services, "9812345678")
    body = decode(await (await client.get(CHECK, params={"phone": "+91 98123 45678"},
                                          headers=headers)).read())
    assert body["ownNumber"] is True
    assert body["matches"][0]["offerCode"] == "WELCOME-BCDEFG"
    assert body["matches"][0]["claimed"] is False


async def test_check_never_reads_a_number_with_another_salons_region(
        client: TestClient[Any, Any], services: Services, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    pool = services.pool
    us_salon = await add_salon(pool, "New York Nails", country="US")
    await add_offer(pool, us_salon)
    # The US salon's customer (917) 234-5678, imported as +19172345678.
    await add_customer(pool, cipher, us_salon, "+19172345678", code="WELCOME-USCUST")
    _, indian = await customer(client, tokens, services, "+919172345678")
    resp = await client.get(CHECK, params={"phone": "9172345678"}, headers=indian)
    assert resp.status == 200
    body = decode(await resp.read())
    # Read with the caller's own region (IN) it is +919172345678, the caller's own number and
    # nobody's record: no match, no code.
    assert body == {"isImported": False, "salonName": None, "welcomeOffer": None, "matches": [],
                    "ownNumber": True}
    # The same digits typed with the country code are the US customer, but not the caller:
    # the answer of an unknown number.
    body = decode(await (await client.get(CHECK, params={"phone": "+1 (917) 234-5678"},
                                          headers=indian)).read())
    assert body == {"isImported": False, "salonName": None, "welcomeOffer": None, "matches": []}
    # The US customer, signed up with their number in international form, is read as a US
    # caller: their national form is their own number.
    _, american = await customer(client, tokens, services, "+1 917 234 5678")
    body = decode(await (await client.get(CHECK, params={"phone": "(917) 234-5678"},
                                          headers=american)).read())
    assert body["ownNumber"] is True and body["matches"][0]["offerCode"] == "WELCOME-USCUST"


async def test_check_validates_phone_and_is_rate_limited(
        client: TestClient[Any, Any], services: Services, tokens: TokenCodec) -> None:
    _, headers = await customer(client, tokens, services, "+919222222222")
    for params in ({}, {"phone": "12345"}, {"phone": "abcdefghij"}):
        resp = await client.get(CHECK, params=params, headers=headers)
        assert resp.status == 422
        assert decode(await resp.read())["error"]["details"]["field"] == "phone"
    for _ in range(RATE - 3):
        assert (await client.get(CHECK, params={"phone": "9876543210"},
                                 headers=headers)).status == 200
    limited = await client.get(CHECK, params={"phone": "9876543211"}, headers=headers)
    assert limited.status == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Another caller has their own budget.
    _, other = await customer(client, tokens, services, "+919333333333")
    assert (await client.get(CHECK, params={"phone": "9876543210"},
                             headers=other)).status == 200


async def test_admin_token_cannot_use_mobile_api(
        client: TestClient[Any, Any], admin_headers: dict[str, str]) -> None:
    for method, path in (("GET", CHECK + "?phone=9876543210"), ("POST", CLAIM),
                         ("POST", VALIDATE), ("POST", REDEEM)):
        resp = await client.request(method, path, headers=admin_headers, json={})
        assert resp.status == 403, path
        assert (await client.request(method, path, json={})).status == 401


async def test_claim_by_code_is_idempotent_and_refused_to_others(
        client: TestClient[Any, Any], services: Services, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    campaign_offer = await add_offer(pool, salon, validity_days=10, age_s=60)
    await add_offer(pool, salon, name="Newer")
    campaign = await add_campaign(pool, salon, campaign_offer)
    imported = await add_customer(pool, cipher, salon, "+919844444444", code="WELCOME-HJKMNP",
                                  campaign=campaign)
    user, headers = await customer(client, tokens, services, "+447700900123")
    first = await client.post(CLAIM, json={"offerCode": " welcomehjkmnp "},
                              headers=headers)
    assert first.status == 201, await first.text()
    body = decode(await first.read())
    assert body["welcomeOffer"]["id"] == campaign_offer
    assert body["redemption"]["status"] == "active" and body["redemption"]["userId"] == user
    row = await pool.fetchrow("SELECT status, linked_user_id, registered_at FROM "
                              "imported_customers WHERE id = $1", imported)
    assert row["status"] == "registered" and row["linked_user_id"] == user
    expires = await pool.fetchval("SELECT expires_at FROM welcome_offer_redemptions")
    assert expires - row["registered_at"] == timedelta(days=10)
    again = await client.post(CLAIM, json={"offerCode": "WELCOME-HJKMNP"}, headers=headers)
    assert again.status == 200
    assert decode(await again.read())["redemption"]["id"] == body["redemption"]["id"]
    _, thief = await customer(client, tokens, services, "+919855555555")
    stolen = await client.post(CLAIM, json={"offerCode": "WELCOME-HJKMNP"}, headers=thief)
    # The same answer as a code that does not exist: a claimed code is no oracle.
    assert stolen.status == 404
    assert decode(await stolen.read())["error"]["code"] == "offer_code_not_found"
    assert await pool.fetchval("SELECT count(*) FROM welcome_offer_redemptions") == 1


async def test_claim_input_errors(client: TestClient[Any, Any], services: Services,
                                  tokens: TokenCodec) -> None:
    _, headers = await customer(client, tokens, services, "+919866666666")
    cases = [({}, 422), ({"offerId": "x", "offerCode": "WELCOME-AAAAAA"}, 422),
             ({"offerCode": "WELCOME-0O0O0O"}, 422), ({"offerCode": "WELCOME-ZZZZZZ"}, 404),
             ({"offerId": "no-such-offer"}, 404), ({"offerId": 5}, 422)]
    for body, status in cases:
        resp = await client.post(CLAIM, json=body, headers=headers)
        assert resp.status == status, (body, await resp.text())
    ghost = bearer(tokens, "no-such-user", "customer")
    resp = await client.post(CLAIM, json={"offerCode": "WELCOME-ZZZZZZ"}, headers=ghost)
    assert resp.status == 404
    assert decode(await resp.read())["error"]["code"] == "user_not_found"


async def test_claim_by_offer_id_only_for_the_salons_customers(
        client: TestClient[Any, Any], services: Services, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    offer = await add_offer(pool, salon)
    imported = await add_customer(pool, cipher, salon, "+919877777777")
    # Registered, but the matcher has not run yet: the claim links by phone itself.
    user, headers = await customer(client, tokens, services, "98777 77777")
    resp = await client.post(CLAIM, json={"offerId": offer}, headers=headers)
    assert resp.status == 201, await resp.text()
    assert await pool.fetchval("SELECT linked_user_id FROM imported_customers WHERE id = $1",
                               imported) == user
    _, stranger = await customer(client, tokens, services, "+919888888888")
    resp = await client.post(CLAIM, json={"offerId": offer}, headers=stranger)
    assert resp.status == 404
    assert decode(await resp.read())["error"]["message"] == "Offer not found or inactive"


@pytest.mark.parametrize(("offer_kw", "amount", "expected"), [
    ({"value": 15, "cap": None}, 100000, {"valid": True, "discount": 15000}),
    ({"value": 15, "cap": 10000}, 100000, {"valid": True, "discount": 10000}),
    ({"value": 15, "cap": None}, 99999, {"valid": True, "discount": 14999}),  # floor
    ({"discount_type": "fixed", "value": 10000, "cap": None}, 50000,
     {"valid": True, "discount": 10000}),
    ({"value": 10, "cap": None, "minimum": 50000}, 49999,
     {"valid": False, "discount": 0, "reason": "Minimum purchase of ₹500 required"}),
    ({"value": 10, "cap": None, "minimum": 49950}, 100,
     {"valid": False, "discount": 0, "reason": "Minimum purchase of ₹499.5 required"}),
    ({"value": 10, "cap": None, "minimum": 50000}, 50000, {"valid": True, "discount": 5000}),
    ({"active": 0}, 100000,
     {"valid": False, "discount": 0, "reason": "Offer not found or inactive"}),
])
async def test_validate_discount_rules(
        client: TestClient[Any, Any], services: Services, tokens: TokenCodec,
        offer_kw: dict[str, Any], amount: int, expected: dict[str, Any]) -> None:
    salon = await add_salon(services.pool, "S")
    offer = await add_offer(services.pool, salon, **offer_kw)
    user, headers = await customer(client, tokens, services, "+919800000001")
    await grant(services.pool, offer, user)
    resp = await client.post(VALIDATE, json={"offerId": offer, "bookingAmountInPaisa": amount},
                             headers=headers)
    assert resp.status == 200
    assert decode(await resp.read()) == expected


async def test_validate_expiry_missing_grant_and_bad_input(
        client: TestClient[Any, Any], services: Services, tokens: TokenCodec) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    offer = await add_offer(pool, salon)
    user, headers = await customer(client, tokens, services, "+919800000002")
    body = {"offerId": offer, "bookingAmountInPaisa": 100000}
    not_granted = decode(await (await client.post(VALIDATE, json=body, headers=headers)).read())
    assert not_granted["reason"] == "Offer not found or inactive"
    # Expired before the sweep has run: still refused.
    await grant(pool, offer, user, expires_in=timedelta(seconds=-1))
    assert await pool.fetchval("SELECT status FROM welcome_offer_redemptions") == "active"
    expired = decode(await (await client.post(VALIDATE, json=body, headers=headers)).read())
    assert expired == {"valid": False, "discount": 0, "reason": "Offer has expired"}
    redeem = await client.post(REDEEM, json={**body, "bookingId": "b-1"}, headers=headers)
    assert redeem.status == 409
    assert decode(await redeem.read())["error"]["message"] == "Offer has expired"
    for bad, field in (({"offerId": offer, "bookingAmountInPaisa": -5}, "bookingAmountInPaisa"),
                       ({"offerId": offer, "bookingAmountInPaisa": 10.5},
                        "bookingAmountInPaisa"),
                       ({"bookingAmountInPaisa": 100}, "offerId"),
                       ({**body, "bookingAmount": 100}, "bookingAmount")):
        resp = await client.post(VALIDATE, json=bad, headers=headers)
        assert resp.status == 422
        error = decode(await resp.read())["error"]
        assert error["details"]["field"] == field
        assert error["message"].startswith(f"{field}: ")


async def test_redeem_records_use_and_same_booking_is_idempotent(
        client: TestClient[Any, Any], services: Services, tokens: TokenCodec) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    offer = await add_offer(pool, salon, value=20, cap=None, minimum=30000)
    user, headers = await customer(client, tokens, services, "+919800000003")
    grant_id = await grant(pool, offer, user)
    below = await client.post(REDEEM, headers=headers, json={
        "offerId": offer, "bookingId": "b-0", "bookingAmountInPaisa": 100})
    assert below.status == 422
    assert decode(await below.read())["error"]["details"]["reason"] == (
        "Minimum purchase of ₹300 required")
    body = {"offerId": offer, "bookingId": "b-1", "bookingAmountInPaisa": 50000}
    first = await client.post(REDEEM, json=body, headers=headers)
    assert first.status == 201, await first.text()
    result = decode(await first.read())
    assert result["valid"] is True and result["discount"] == 10000
    assert result["redemption"]["id"] == grant_id
    assert result["redemption"]["status"] == "redeemed"
    assert result["redemption"]["bookingId"] == "b-1"
    assert result["redemption"]["redeemedAt"] is not None
    replay = await client.post(REDEEM, json={**body, "bookingAmountInPaisa": 99999},
                               headers=headers)
    assert replay.status == 200 and decode(await replay.read()) == result
    assert await pool.fetchval("SELECT total_redemptions FROM welcome_offers") == 1
    second = await client.post(REDEEM, json={**body, "bookingId": "b-2"}, headers=headers)
    assert second.status == 409
    assert decode(await second.read())["error"]["message"] == "Offer already used"
    check = decode(await (await client.post(VALIDATE, json={
        "offerId": offer, "bookingAmountInPaisa": 50000}, headers=headers)).read())
    assert check == {"valid": False, "discount": 0, "reason": "Offer already used"}
    # Another account cannot reuse the booking id either.
    other, other_headers = await customer(client, tokens, services, "+919800000004")
    await grant(pool, offer, other)
    taken = await client.post(REDEEM, json=body, headers=other_headers)
    assert taken.status == 409
    assert decode(await taken.read())["error"]["code"] == "booking_already_used"


async def test_usage_limit_above_one(client: TestClient[Any, Any], services: Services,
                                     tokens: TokenCodec) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    offer = await add_offer(pool, salon, discount_type="fixed", value=5000, cap=None,
                            usage_limit=2)
    user, headers = await customer(client, tokens, services, "+919800000005")
    await grant(pool, offer, user)
    statuses = []
    for booking in ("b-1", "b-2", "b-3"):
        resp = await client.post(REDEEM, headers=headers, json={
            "offerId": offer, "bookingId": booking, "bookingAmountInPaisa": 3000})
        statuses.append(resp.status)
    assert statuses == [201, 201, 409]
    rows = await pool.fetch("SELECT booking_id, discount_applied_in_paisa, status FROM "
                            "welcome_offer_redemptions ORDER BY booking_id")
    # A fixed ₹50 offer on a ₹30 booking gives ₹30 (never a negative bill).
    assert [tuple(r) for r in rows] == [("b-1", 3000, "redeemed"), ("b-2", 3000, "redeemed")]
    assert await pool.fetchval("SELECT total_redemptions FROM welcome_offers") == 2


async def test_twenty_concurrent_redeems_of_a_single_use_offer(
        client: TestClient[Any, Any], services: Services, tokens: TokenCodec) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    offer = await add_offer(pool, salon, value=50, cap=None)
    user, headers = await customer(client, tokens, services, "+919800000006")
    await grant(pool, offer, user)
    responses = await asyncio.gather(*(
        client.post(REDEEM, headers=headers, json={
            "offerId": offer, "bookingId": f"booking-{i}", "bookingAmountInPaisa": 100000})
        for i in range(20)))
    statuses = sorted(r.status for r in responses)
    assert statuses == [201] + [409] * 19
    assert await pool.fetchval("SELECT count(*) FROM welcome_offer_redemptions "
                               "WHERE status = 'redeemed'") == 1
    assert await pool.fetchval("SELECT total_redemptions FROM welcome_offers") == 1
