"""API rate limits over real HTTP ([ratelimit], onboardd.web.ratelimit): budgets per token
subject and per client address, by area, 429 with Retry-After in the one error shape."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from onboardd.auth import TokenCodec
from onboardd.config import Config, load
from onboardd.config_checks import ConfigError
from onboardd.web.admin.assets import PREFIX as STATIC_PREFIX
from tests.conftest import AppFor, bearer, decode
from tests.web.admin.conftest import sign_in

Client = TestClient[Any, Any]
VALIDATE = "/api/mobile/welcome-offers/validate"
INBOUND = "/api/webhooks/twilio/inbound"
SLOW = "0.001"  # a refill too slow to matter within a test
BIG = {"admin_ip_burst": "1000", "mobile_ip_burst": "1000", "webhook_ip_burst": "1000"}


def limits(**budgets: str) -> dict[str, str]:
    """ONBOARDD_RATELIMIT_* overrides: address budgets large unless given, refills slow."""
    out = {f"ratelimit_{key}": value for key, value in BIG.items()}
    for area in ("admin", "admin_ip", "mobile", "mobile_ip", "webhook_ip"):
        out[f"ratelimit_{area}_per_s"] = SLOW
    out.update({f"ratelimit_{key}": value for key, value in budgets.items()})
    return out


def imported(salon: str) -> str:
    return f"/api/salons/{salon}/customers/imported"


async def refused(resp: Any) -> dict[str, Any]:
    """A 429 in the one error shape with Retry-After (whole seconds, at least 1)."""
    assert resp.status == 429, await resp.text()
    retry = int(resp.headers["Retry-After"])
    assert retry >= 1
    error: dict[str, Any] = decode(await resp.read())["error"]
    assert error["code"] == "rate_limited"
    assert error["details"]["retryAfterSeconds"] == retry
    assert f"retry in {retry}s" in error["message"]
    return error


async def test_each_subject_has_its_budget(app_for: AppFor, tokens: TokenCodec,
                                           salon: str) -> None:
    async with app_for(**limits(admin_burst="3")) as (client, svc):
        first = bearer(tokens, "admin-a", "admin", [salon])
        for _ in range(3):
            resp = await client.get(imported(salon), headers=first)
            assert resp.status == 200, await resp.text()
        error = await refused(await client.get(imported(salon), headers=first))
        assert error["details"] | {"retryAfterSeconds": 0} == {
            "area": "admin", "by": "subject", "limitKey": "[ratelimit] admin_per_s",
            "retryAfterSeconds": 0}
        assert "admin requests for this token" in error["message"]
        # Another admin of the same salon, from the same address, is not held up.
        other = bearer(tokens, "admin-b", "admin", [salon])
        assert (await client.get(imported(salon), headers=other)).status == 200
        scraped = svc.metrics.render().decode()
        assert 'onboardd_rate_limited_total{area="admin"} 1.0' in scraped
        assert 'onboardd_rate_limited_total{area="mobile"} 0.0' in scraped


async def test_retry_after_follows_the_refill(app_for: AppFor, tokens: TokenCodec,
                                              salon: str) -> None:
    """Half a request a second: the next one is about two seconds away, then allowed."""
    async with app_for(**limits(admin_burst="1", admin_per_s="0.5")) as (client, _svc):
        headers = bearer(tokens, "admin-a", "admin", [salon])
        assert (await client.get(imported(salon), headers=headers)).status == 200
        resp = await client.get(imported(salon), headers=headers)
        await refused(resp)
        assert int(resp.headers["Retry-After"]) == 2


async def test_each_address_has_its_budget_before_any_token_is_read(
        app_for: AppFor, tokens: TokenCodec, salon: str) -> None:
    """Requests without a valid token count against the address too; different subjects
    from one address share its budget."""
    async with app_for(**limits(admin_ip_burst="3")) as (client, _svc):
        assert (await client.get(imported(salon))).status == 401
        assert (await client.get(imported(salon),
                                 headers={"Authorization": "Bearer nope"})).status == 401
        ok = await client.get(imported(salon), headers=bearer(tokens, "a", "admin", [salon]))
        assert ok.status == 200
        error = await refused(await client.get(imported(salon),
                                               headers=bearer(tokens, "b", "admin", [salon])))
        assert (error["details"]["by"], error["details"]["limitKey"]) == (
            "address", "[ratelimit] admin_ip_per_s")


@pytest.mark.parametrize("trusted", [False, True])
async def test_forwarded_address_only_when_trusted(app_for: AppFor, tokens: TokenCodec,
                                                   trusted: bool) -> None:
    overrides = limits(mobile_ip_burst="1") | {"http_trust_forwarded": str(trusted).lower()}
    async with app_for(**overrides) as (client, _svc):
        def sent(address: str) -> dict[str, str]:
            return bearer(tokens, "user-" + address, "customer") | {"X-Forwarded-For":
                                                                     f"{address}, 10.0.0.1"}

        assert (await client.post(VALIDATE, json={}, headers=sent("203.0.113.7"))).status != 429
        other = await client.post(VALIDATE, json={}, headers=sent("198.51.100.9"))
        if not trusted:  # the header is anyone's to write: both come from the test client
            await refused(other)
            return
        assert other.status != 429
        await refused(await client.post(VALIDATE, json={}, headers=sent("203.0.113.7")))


async def test_areas_do_not_share_budgets(app_for: AppFor, tokens: TokenCodec,
                                          salon: str) -> None:
    """One subject with an admin and a customer token, one address: each area counts its own."""
    overrides = limits(admin_burst="1", mobile_burst="1", admin_ip_burst="2",
                       mobile_ip_burst="2", webhook_ip_burst="1")
    async with app_for(**overrides) as (client, _svc):
        admin = bearer(tokens, "same", "admin", [salon])
        customer = bearer(tokens, "same", "customer")
        assert (await client.get(imported(salon), headers=admin)).status == 200
        assert (await client.post(VALIDATE, json={}, headers=customer)).status != 429
        assert (await client.post(INBOUND, data={"Body": "hi"})).status == 403  # unsigned
        assert (await refused(await client.get(imported(salon), headers=admin)))[
            "details"]["area"] == "admin"
        assert (await refused(await client.post(VALIDATE, json={}, headers=customer)))[
            "details"]["area"] == "mobile"
        error = await refused(await client.post(INBOUND, data={"Body": "hi"}))
        assert (error["details"]["area"], error["details"]["by"]) == ("webhook", "address")


async def test_the_admin_ui_counts_as_admin_and_its_429_is_a_page(app_for: AppFor) -> None:
    """The address budget refuses the admin UI before any session is read, and says so in a
    page in words (never JSON), with Retry-After and the security headers."""
    async with app_for(**limits(admin_ip_burst="1")) as (client, _svc):
        assert (await client.get("/admin/login")).status == 200
        page = await client.get("/admin/login")
        assert page.status == 429
        assert "text/html" in page.headers["Content-Type"]
        assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
        wait = int(page.headers["Retry-After"])
        text = await page.text()
        assert "Too many requests" in text
        assert f"Wait {wait} second" in text
        assert "rate_limited" not in text and "retryAfterSeconds" not in text  # no JSON
        htmx = await client.get("/admin/login", headers={"HX-Request": "true"})
        assert htmx.status == 429 and htmx.headers["HX-Retarget"] == "#flash"
        assert "Too many requests" in await htmx.text()
        scraped = await (await client.get("/metrics")).text()
        assert 'onboardd_rate_limited_total{area="admin"} 2.0' in scraped


async def test_probes_metrics_and_static_files_are_exempt(app_for: AppFor) -> None:
    overrides = limits(admin_ip_burst="1", mobile_ip_burst="1", webhook_ip_burst="1")
    async with app_for(**overrides) as (client, _svc):
        for path in ("/healthz", "/readyz", "/metrics", STATIC_PREFIX + "/admin.css"):
            for _ in range(5):
                resp = await client.get(path)
                assert resp.status != 429, path


async def test_limits_can_be_turned_off(app_for: AppFor, tokens: TokenCodec,
                                        salon: str) -> None:
    overrides = limits(admin_burst="1", admin_ip_burst="1") | {"ratelimit_enabled": "false"}
    async with app_for(**overrides) as (client, _svc):
        headers = bearer(tokens, "admin-a", "admin", [salon])
        for _ in range(5):
            assert (await client.get(imported(salon), headers=headers)).status == 200
    # A rate of 0 turns one budget off, the others stay.
    async with app_for(**limits(admin_per_s="0", admin_burst="1")) as (client, _svc):
        headers = bearer(tokens, "admin-a", "admin", [salon])
        for _ in range(5):
            assert (await client.get(imported(salon), headers=headers)).status == 200


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("ratelimit_admin_per_s", "-1", "[ratelimit] admin_per_s: must be 0 (no limit) or more"),
    ("ratelimit_mobile_ip_burst", "0", "[ratelimit] mobile_ip_burst: must be at least 1"),
    ("ratelimit_check_per_min", "-5", "[ratelimit] check_per_min: must be 0 (no limit)"),
    ("ratelimit_max_keys", "0", "[ratelimit] max_keys: must be at least 1"),
])
def test_bad_budgets_are_refused_naming_the_key(make_config: Callable[..., Config], key: str,
                                                value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(**{key: value})
    assert problem in str(caught.value)


def test_the_former_check_key_names_its_new_place(tmp_path: Path) -> None:
    config = tmp_path / "onboardd.toml"
    config.write_text("[offers]\ncheck_rate_per_min = 20\n")
    with pytest.raises(ConfigError) as caught:
        load(config, {})
    assert str(caught.value) == ("[offers] check_rate_per_min: unknown key (moved: use "
                                 "[ratelimit] check_per_min)")


async def test_the_admin_ui_and_api_share_a_subjects_budget(app_for: AppFor, tokens: TokenCodec,
                                                           salon: str) -> None:
    """An admin's pages and API calls draw on one budget; a page over it is a page in words."""
    async with app_for(**limits(admin_burst="3")) as (client, _svc):
        token = tokens.encode("admin-ui", "admin", [salon], 3600)
        await sign_in(client, token)  # the login is open; the dashboard it reads is charged
        api = await client.get(imported(salon), headers={"Authorization": "Bearer " + token})
        assert api.status == 200
        assert (await client.get("/admin/dashboard", allow_redirects=False)).status == 200
        page = await client.get("/admin/dashboard", allow_redirects=False)
        assert page.status == 429
        assert "text/html" in page.headers["Content-Type"]
        assert "Too many requests" in await page.text()
        await refused(await client.get(imported(salon),
                                       headers={"Authorization": "Bearer " + token}))
