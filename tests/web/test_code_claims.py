"""Claims by offer code over real HTTP and PostgreSQL: the guessing throttle, shared by every
daemon on the database, and the takeover rule (README, "Offer codes cannot be guessed")."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from onboardd.auth import TokenCodec
from onboardd.config import Config
from onboardd.domain.codes import generate_offer_code
from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from tests.conftest import AppFor, bearer, decode
from tests.integration.test_offer_matcher import (
    add_customer,
    add_offer,
    add_salon,
    all_processed,
    eventually,
    matcher,
    register,
)

CLAIM = "/api/mobile/claim-welcome-offer"
PER_USER = 5  # the shipped [offers] claim_misses_per_user
PER_IP = 20  # the shipped [offers] claim_misses_per_ip
LOCKOUT_S = 900  # the shipped [offers] claim_lockout_s


async def user(pool: asyncpg.Pool, tokens: TokenCodec, phone: str) -> tuple[str, dict[str, str]]:
    """An app user and their token headers."""
    user_id = await register(pool, phone)
    return user_id, bearer(tokens, user_id, "customer")


async def end_lockouts(pool: asyncpg.Pool) -> None:
    """Move every running lockout into the past (instead of waiting it out)."""
    await pool.execute("UPDATE offer_claim_throttle SET locked_until = now() - interval '1 s' "
                       "WHERE locked_until > now()")


async def claim(client: TestClient[Any, Any], code: str, headers: dict[str, str]
                ) -> tuple[int, dict[str, str], Any]:
    """POST a code claim; (status, headers, body)."""
    resp = await client.post(CLAIM, json={"offerCode": code}, headers=headers)
    return resp.status, dict(resp.headers), decode(await resp.read())


async def test_120_guesses_from_one_token_are_throttled(
        client: TestClient[Any, Any], services: Services, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    offer = await add_offer(pool, salon)
    code = generate_offer_code()
    imported = await add_customer(pool, cipher, salon, "+919800000101", code=code)
    attacker, headers = await user(pool, tokens, "+919800000102")
    statuses, waits = [], []
    for _ in range(120):
        status, resp_headers, body = await claim(client, generate_offer_code(), headers)
        statuses.append(status)
        if status == 429:
            waits.append(int(resp_headers["Retry-After"]))
            assert body["error"]["code"] == "rate_limited"
            assert body["error"]["details"]["retryAfterSeconds"] == waits[-1]
    assert statuses == [404] * PER_USER + [429] * (120 - PER_USER)
    assert all(0 < w <= LOCKOUT_S for w in waits) and waits[0] > LOCKOUT_S - 30
    # The right code after the lockout began is refused too, until the lockout ends.
    status, resp_headers, _ = await claim(client, code, headers)
    assert status == 429 and int(resp_headers["Retry-After"]) > LOCKOUT_S - 30
    assert await pool.fetchval("SELECT linked_user_id FROM imported_customers WHERE id = $1",
                               imported) is None
    await end_lockouts(pool)
    status, _, body = await claim(client, code, headers)
    assert status == 201, body
    assert body["welcomeOffer"]["id"] == offer and body["redemption"]["userId"] == attacker


async def test_lockout_doubles_and_a_hit_is_not_a_miss(
        client: TestClient[Any, Any], services: Services, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    await add_offer(pool, salon)
    code = generate_offer_code()
    await add_customer(pool, cipher, salon, "+919800000111", code=code)
    _, headers = await user(pool, tokens, "+919800000112")
    # Claiming one's own code again and again spends nothing.
    assert (await claim(client, code, headers))[0] == 201
    assert [(await claim(client, code, headers))[0] for _ in range(PER_USER + 3)] == [200] * 8
    retry_after = []
    for _round in range(3):
        statuses = [(await claim(client, generate_offer_code(), headers))[0]
                    for _ in range(PER_USER)]
        assert statuses == [404] * PER_USER
        status, resp_headers, _ = await claim(client, generate_offer_code(), headers)
        assert status == 429
        retry_after.append(int(resp_headers["Retry-After"]))
        await end_lockouts(pool)
    assert [round(s / LOCKOUT_S) for s in retry_after] == [1, 2, 4]
    row = await pool.fetchrow("SELECT lockouts, misses FROM offer_claim_throttle "
                              "WHERE kind = 'user'")
    assert (row["lockouts"], row["misses"]) == (3, 0)


async def test_parallel_guesses_cannot_overrun_the_budget(
        client: TestClient[Any, Any], services: Services, tokens: TokenCodec) -> None:
    _, headers = await user(services.pool, tokens, "+919800000121")
    results = await asyncio.gather(*(claim(client, generate_offer_code(), headers)
                                     for _ in range(40)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [404] * PER_USER + [429] * (40 - PER_USER)


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    """Behind a proxy: X-Forwarded-For's first hop is the client address. The API rate limits
    are off: these tests guess faster than the mobile budget allows, to reach the claim
    throttle (the limits are tests/web/test_rate_limits.py's)."""
    return make_config(http_trust_forwarded="true", ratelimit_enabled="false")


async def test_each_client_address_has_its_own_budget_across_accounts(
        client: TestClient[Any, Any], services: Services, tokens: TokenCodec) -> None:
    pool = services.pool
    attacker = {"X-Forwarded-For": "203.0.113.7, 10.0.0.1"}
    accounts = [await user(pool, tokens, f"+9198000002{i:02d}") for i in range(PER_IP // 4 + 1)]
    # Four misses per account (under the per-user budget) until the address's budget is spent.
    for _, headers in accounts[:-1]:
        for _ in range(4):
            assert (await claim(client, generate_offer_code(), headers | attacker))[0] == 404
    fresh_headers = accounts[-1][1]
    status, resp_headers, _ = await claim(client, generate_offer_code(),
                                          fresh_headers | attacker)
    assert status == 429 and int(resp_headers["Retry-After"]) > LOCKOUT_S - 30
    # Another address (the same IPv6 /64 counts as one) still has its budget.
    assert (await claim(client, generate_offer_code(),
                        fresh_headers | {"X-Forwarded-For": "198.51.100.9"}))[0] == 404
    rows = await pool.fetch("SELECT subject, misses, locked_until IS NOT NULL AS locked "
                            "FROM offer_claim_throttle WHERE kind = 'ip' ORDER BY subject")
    assert [(r["subject"], r["misses"], r["locked"]) for r in rows] == [
        ("198.51.100.9", 1, False), ("203.0.113.7", 0, True)]


async def test_forwarded_for_is_ignored_unless_trusted(app_for: AppFor,
                                                       tokens: TokenCodec) -> None:
    async with app_for() as (untrusting, svc):
        for i in range(PER_IP):
            _, headers = await user(svc.pool, tokens, f"+9198000003{i:02d}")
            spoofed = headers | {"X-Forwarded-For": f"192.0.2.{i}"}
            assert (await claim(untrusting, generate_offer_code(), spoofed))[0] == 404
        _, headers = await user(svc.pool, tokens, "+919800000399")
        status, _, _ = await claim(untrusting, generate_offer_code(),
                                   headers | {"X-Forwarded-For": "192.0.2.200"})
        assert status == 429  # every attempt was counted on the peer address
        subjects = [r["subject"] for r in await svc.pool.fetch(
            "SELECT subject FROM offer_claim_throttle WHERE kind = 'ip'")]
        assert subjects == ["127.0.0.1"]


async def test_daemons_sharing_the_database_share_the_counters(
        client: TestClient[Any, Any], services: Services, app_for: AppFor,
        tokens: TokenCodec) -> None:
    _, headers = await user(services.pool, tokens, "+919800000131")
    async with app_for(services.cfg) as (second, _svc):
        fronts = [client, second]
        statuses = [(await claim(fronts[i % 2], generate_offer_code(), headers))[0]
                    for i in range(PER_USER + 2)]
    assert statuses == [404] * PER_USER + [429] * 2


def error_of(body: Any) -> Any:
    """The error of a response body."""
    return body["error"]


async def test_a_valid_code_of_a_linked_record_answers_like_a_wrong_one_and_takes_nothing(
        client: TestClient[Any, Any], services: Services, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    offer = await add_offer(pool, salon)
    code = generate_offer_code()
    record = await add_customer(pool, cipher, salon, "+919800000141", code=code)
    async with matcher(services):  # the real customer registers and is matched
        victim = await register(pool, "98000 00141")
        assert await eventually(lambda: all_processed(pool))
    grant = await pool.fetchrow("SELECT * FROM welcome_offer_redemptions")
    assert (grant["user_id"], grant["welcome_offer_id"]) == (victim, offer)

    _, attacker = await user(pool, tokens, "+919800000142")
    hit = await claim(client, code, attacker)
    miss = await claim(client, generate_offer_code(), attacker)
    assert hit[0] == miss[0] == 404
    assert error_of(hit[2]) == error_of(miss[2])
    assert await pool.fetchval("SELECT linked_user_id FROM imported_customers WHERE id = $1",
                               record) == victim
    assert [dict(r) for r in await pool.fetch("SELECT * FROM welcome_offer_redemptions")] == [
        dict(grant)]
    # Both attempts were misses; the victim's own code still works for them.
    assert await pool.fetchval("SELECT misses FROM offer_claim_throttle WHERE kind = 'user' "
                               "AND subject <> $1", victim) == 2
    victim_headers = bearer(tokens, victim, "customer")
    status, _, body = await claim(client, code.lower().replace("-", ""), victim_headers)
    assert status == 200 and body["redemption"]["id"] == grant["id"]


async def test_an_unlinked_record_can_be_claimed_by_code_once(
        client: TestClient[Any, Any], services: Services, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    offer = await add_offer(pool, salon)
    legacy = "WELCOME-HJKMNP"  # a 6-character code sent before codes grew: still valid
    record = await add_customer(pool, cipher, salon, "+919800000151", code=legacy)
    # A new number: the customer registered with another phone than the salon has.
    first, first_headers = await user(pool, tokens, "+447700900151")
    status, _, body = await claim(client, legacy, first_headers)
    assert status == 201 and body["welcomeOffer"]["id"] == offer
    _, second_headers = await user(pool, tokens, "+919800000152")
    late = await claim(client, legacy, second_headers)
    assert late[0] == 404
    assert error_of(late[2]) == error_of((await claim(client, "WELCOME-ZZZZZZ",
                                                      second_headers))[2])
    # The number's owner registering later is not linked: the record is taken.
    async with matcher(services):
        owner = await register(pool, "+919800000151")
        assert await eventually(lambda: all_processed(pool))
    assert await pool.fetchval("SELECT linked_user_id FROM imported_customers WHERE id = $1",
                               record) == first
    owner_headers = bearer(tokens, owner, "customer")
    check = decode(await (await client.get("/api/mobile/check-imported-customer",
                                           params={"phone": "9800000151"},
                                           headers=owner_headers)).read())
    assert check["ownNumber"] is True and check["matches"][0]["claimed"] is False
    by_offer = await client.post(CLAIM, json={"offerId": offer}, headers=owner_headers)
    assert by_offer.status == 404
    assert [r["user_id"] for r in await pool.fetch(
        "SELECT user_id FROM welcome_offer_redemptions")] == [first]


async def test_one_record_per_salon_by_code(
        client: TestClient[Any, Any], services: Services, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    pool = services.pool
    salon, other_salon = await add_salon(pool, "S"), await add_salon(pool, "T")
    await add_offer(pool, salon)
    other_offer = await add_offer(pool, other_salon)
    own_code, spare_code, other_code = (generate_offer_code() for _ in range(3))
    own = await add_customer(pool, cipher, salon, "+919800000161", code=own_code)
    spare = await add_customer(pool, cipher, salon, "+919800000162", code=spare_code)
    await add_customer(pool, cipher, other_salon, "+919800000163", code=other_code)
    claimant, headers = await user(pool, tokens, "+919800000161")
    # Their own number has a record at this salon (not linked yet): no second one by code.
    assert (await claim(client, spare_code, headers))[0] == 404
    assert (await claim(client, own_code, headers))[0] == 201
    assert (await claim(client, spare_code, headers))[0] == 404
    status, _, body = await claim(client, other_code, headers)  # another salon: allowed
    assert status == 201 and body["welcomeOffer"]["id"] == other_offer
    linked = dict(await pool.fetch("SELECT id, linked_user_id FROM imported_customers "
                                   "WHERE salon_id = $1", salon))
    assert linked == {own: claimant, spare: None}
