"""check-imported-customer answers only about the caller's own number (issue 16 point 3):
proof is the token's phone claim or the user's stored phone; every other number gets the
unknown number's answer, and the attempt is logged once, masked."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from onboardd import daemon
from onboardd.auth import TokenCodec
from onboardd.config import load
from onboardd.daemon import warn_about_settings
from onboardd.logging import get_logger
from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from tests.conftest import AppFor, bearer, daemon_env, decode
from tests.integration.test_offer_matcher import add_customer, add_offer, add_salon, register

CHECK = "/api/mobile/check-imported-customer"
CLAIM = "/api/mobile/claim-welcome-offer"
UNKNOWN = {"isImported": False, "salonName": None, "welcomeOffer": None, "matches": []}
KNOWN = "+919876543210"  # an imported customer of the salon below
NOBODYS = "+919000000001"  # nobody's number


async def seeded(services: Services, cipher: PiiCipher) -> str:
    """A salon with an offer and one imported customer (KNOWN, code WELCOME-PQRSTU)."""
    salon = await add_salon(services.pool, "Glow Salon")
    await add_offer(services.pool, salon)
    await add_customer(services.pool, cipher, salon, KNOWN, code="WELCOME-PQRSTU")
    return salon


async def answer(response: ClientResponse) -> tuple[int, bytes, str]:
    """What a caller can tell answers apart by: status, body bytes, content type."""
    return response.status, await response.read(), response.content_type


async def test_without_proof_any_number_gets_the_unknown_answer_byte_for_byte(
        client: TestClient[Any, Any], services: Services, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    await seeded(services, cipher)
    stored_other = await register(services.pool, "+919811111111")
    callers = {
        "stored phone is another number": bearer(tokens, stored_other, "customer"),
        "phone claim is another number": bearer(tokens, stored_other, "customer",
                                                phone="+919822222222"),
        "no users row, no claim": bearer(tokens, "not-a-user", "customer"),
        "no users row, another claim": bearer(tokens, "not-a-user-2", "customer",
                                              phone="+919833333333"),
    }
    for why, headers in callers.items():
        known = await answer(await client.get(CHECK, params={"phone": KNOWN}, headers=headers))
        # The same customer typed in national form, and a number nobody has.
        national = await answer(await client.get(CHECK, params={"phone": "98765 43210"},
                                                 headers=headers))
        unknown = await answer(await client.get(CHECK, params={"phone": NOBODYS},
                                                headers=headers))
        assert known == national == unknown, why
        assert known[0] == 200 and decode(known[1]) == UNKNOWN, why


async def test_proof_by_claim_or_stored_phone_gets_the_answer(
        client: TestClient[Any, Any], services: Services, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    salon = await seeded(services, cipher)
    # Claim only: the user is not (yet) a row of users, or stored another number.
    for headers in (bearer(tokens, "fresh-user", "customer", phone=KNOWN),
                    bearer(tokens, await register(services.pool, "+919844444444"),
                           "customer", phone="+91 98765-43210")):
        body = decode(await (await client.get(CHECK, params={"phone": "09876543210"},
                                              headers=headers)).read())
        assert body["ownNumber"] is True and body["isImported"] is True
        assert [(m["salonId"], m["offerCode"], m["claimed"]) for m in body["matches"]] == [
            (salon, "WELCOME-PQRSTU", False)]
    # Stored phone only (national form, read with [offers] phone_region).
    stored = bearer(tokens, await register(services.pool, "9876543210"), "customer")
    body = decode(await (await client.get(CHECK, params={"phone": KNOWN},
                                          headers=stored)).read())
    assert body["ownNumber"] is True and body["salonName"] == "Glow Salon"


async def test_an_attempt_is_logged_once_masked(
        client: TestClient[Any, Any], services: Services, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    await seeded(services, cipher)
    user = await register(services.pool, "+919855555555")
    headers = bearer(tokens, user, "customer")
    with structlog.testing.capture_logs() as logs:
        for phone in (KNOWN, NOBODYS):
            assert (await client.get(CHECK, params={"phone": phone},
                                     headers=headers)).status == 200
        # The caller's own number: no warning.
        assert (await client.get(CHECK, params={"phone": "+919855555555"},
                                 headers=headers)).status == 200
    lines = [line for line in logs if line["event"] == "phone_check_without_proof"]
    assert [(line["log_level"], line["phone"], line["user_id"]) for line in lines] == [
        ("warning", "+91******3210", user), ("warning", "+91******0001", user)]
    assert KNOWN not in str(logs) and "9876543210" not in str(logs)


async def test_claim_by_code_is_unchanged_without_proof(
        client: TestClient[Any, Any], services: Services, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    """The check tells a caller with another number nothing, but the code the salon sent
    still claims the offer (a customer who registered with another number)."""
    await seeded(services, cipher)
    user = await register(services.pool, "+447700900123")
    headers = bearer(tokens, user, "customer")
    check = await client.get(CHECK, params={"phone": KNOWN}, headers=headers)
    assert decode(await check.read()) == UNKNOWN
    claimed = await client.post(CLAIM, json={"offerCode": "WELCOME-PQRSTU"}, headers=headers)
    assert claimed.status == 201, await claimed.text()
    assert await services.pool.fetchval(
        "SELECT linked_user_id FROM imported_customers WHERE offer_code = 'WELCOME-PQRSTU'"
    ) == user


async def test_proof_not_required_answers_any_number_with_the_spec_fields(
        app_for: AppFor, services: Services, cipher: PiiCipher, tokens: TokenCodec) -> None:
    salon = await seeded(services, cipher)
    async with app_for(offers_check_requires_proof="false") as (client, _svc):
        headers = bearer(tokens, await register(services.pool, "+919866666666"), "customer")
        with structlog.testing.capture_logs() as logs:
            body = decode(await (await client.get(CHECK, params={"phone": KNOWN},
                                                  headers=headers)).read())
        assert body["isImported"] is True and "ownNumber" not in body
        assert [set(m) for m in body["matches"]] == [{"salonId", "salonName", "welcomeOffer"}]
        assert body["matches"][0]["salonId"] == salon and "PQRSTU" not in str(body)
        assert not [line for line in logs if line["event"] == "phone_check_without_proof"]


async def test_a_phone_claim_that_is_no_number_is_401_with_the_reason(
        client: TestClient[Any, Any], tokens: TokenCodec) -> None:
    for bad in ("9876543210", "+91 12", "call me"):
        resp = await client.get(CHECK, params={"phone": KNOWN},
                                headers=bearer(tokens, "u-1", "customer", phone=bad))
        assert resp.status == 401
        error = decode(await resp.read())["error"]
        assert error["code"] == "unauthorized" and error["details"] == {"reason": "bad_claim"}
        assert "phone must be the user's verified mobile number in E.164" in error["message"]


def test_every_start_warns_while_proof_is_off(tmp_path: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    env = daemon_env("postgresql://localhost/x", tmp_path / "state")
    # The daemon's module-level logger may already be bound to the processors of an earlier
    # test (structlog caches it on first use), which capture_logs does not see: a fresh one.
    with structlog.testing.capture_logs() as logs:
        monkeypatch.setattr(daemon, "log", get_logger("daemon"))
        warn_about_settings(load(None, env))
    assert not [line for line in logs if line["event"] == "check_requires_proof_off"]
    off = load(None, env | {"ONBOARDD_OFFERS_CHECK_REQUIRES_PROOF": "false"})
    with structlog.testing.capture_logs() as logs:
        monkeypatch.setattr(daemon, "log", get_logger("daemon"))
        warn_about_settings(off)
    [line] = [line for line in logs if line["event"] == "check_requires_proof_off"]
    assert line["log_level"] == "warning" and "phone claim" in line["hint"]
