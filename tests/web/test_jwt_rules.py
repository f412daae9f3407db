"""JWT hardening over real HTTP (issue 16 point 6): [auth] issuer, audience, leeway_s and
max_token_age_s, and the claim size limits. Each rule accepts a good token and refuses a bad
one with 401, the reason word in details.reason and the fix in the message."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from onboardd.auth import MAX_SALONS, MAX_SUB_LENGTH, codec_from_config
from onboardd.config import Config, ConfigError, load
from onboardd.db.pool import create_pool
from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from onboardd.web.app import create_app
from tests.conftest import JWT_SECRET, daemon_env, decode

CHECK = "/api/mobile/check-imported-customer?phone=%2B919876543210"
Client = TestClient[Any, Any]
Started = Callable[..., contextlib.AbstractAsyncContextManager[Client]]


@pytest.fixture
def started(make_config: Callable[..., Config], db_url: str, cipher: PiiCipher) -> Started:
    """The app with ONBOARDD_* overrides, its token codec built from that config (as the
    daemon builds it)."""

    @contextlib.asynccontextmanager
    async def start(**overrides: str) -> AsyncIterator[Client]:
        cfg = make_config(ratelimit_check_per_min="1000", **overrides)
        pool = await create_pool(cfg, db_url, min_size=1, max_size=3)
        svc = Services(cfg=cfg, pool=pool, cipher=cipher, tokens=codec_from_config(cfg))
        try:
            async with TestClient(TestServer(create_app(svc))) as client:
                yield client
        finally:
            svc.stopping.set()
            await pool.close()

    return start


def signed(**claims: Any) -> dict[str, str]:
    """A customer token with these claims over sensible defaults (None drops a claim)."""
    now = int(time.time())
    base: dict[str, Any] = {"sub": "user-1", "role": "customer", "iat": now, "exp": now + 600}
    body = {k: v for k, v in (base | claims).items() if v is not None}
    return {"Authorization": "Bearer " + jwt.encode(body, JWT_SECRET, algorithm="HS256")}


async def refused(client: Client, headers: dict[str, str], reason: str, says: str,
                  path: str = CHECK) -> None:
    resp = await client.get(path, headers=headers)
    assert resp.status == 401, await resp.text()
    assert resp.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    error = decode(await resp.read())["error"]
    assert error["code"] == "unauthorized" and error["details"] == {"reason": reason}
    assert says in error["message"], error["message"]


async def accepted(client: Client, headers: dict[str, str], path: str = CHECK) -> None:
    resp = await client.get(path, headers=headers)
    assert resp.status == 200, await resp.text()


async def test_issuer(started: Started) -> None:
    async with started(auth_issuer="https://app.example") as client:
        await accepted(client, signed(iss="https://app.example"))
        await refused(client, signed(iss="https://evil.example"), "wrong_issuer",
                      "iss is not the issuer onboardd accepts ([auth] issuer)")
        await refused(client, signed(), "missing_claim",
                      "the iss claim is required: onboardd checks the issuer ([auth] issuer)")
    async with started() as client:  # not configured: not checked
        await accepted(client, signed(iss="https://anyone.example"))


async def test_audience(started: Started) -> None:
    async with started(auth_audience="onboardd") as client:
        await accepted(client, signed(aud="onboardd"))
        await accepted(client, signed(aud=["booking", "onboardd"]))
        await refused(client, signed(aud="booking"), "wrong_audience",
                      "aud does not name the audience onboardd accepts ([auth] audience)")
        await refused(client, signed(), "missing_claim", "the aud claim is required")
    async with started() as client:
        await accepted(client, signed())
        # RFC 7519: a token meant for a named audience is refused by one that has none.
        await refused(client, signed(aud="booking"), "wrong_audience",
                      "set [auth] audience to the value it should accept")


async def test_leeway(started: Started) -> None:
    now = int(time.time())
    late, early = signed(exp=now - 10), signed(iat=now + 10, nbf=now + 10)
    async with started() as client:
        await refused(client, late, "expired", "token has expired")
        await refused(client, early, "not_yet_valid", "raise [auth] leeway_s")
    async with started(auth_leeway_s="30") as client:
        await accepted(client, late)
        await accepted(client, early)
        await refused(client, signed(exp=now - 60), "expired", "token has expired")
        await refused(client, signed(iat=now + 60), "not_yet_valid", "(iat)")


async def test_max_token_age(started: Started) -> None:
    now = int(time.time())
    async with started(auth_max_token_age_s="300") as client:
        await accepted(client, signed(iat=now - 100))
        await refused(client, signed(iat=now - 400, exp=now + 3600), "too_old",
                      "accepts tokens up to 300s old ([auth] max_token_age_s)")
        # With a maximum age a token must say when it was issued.
        await refused(client, signed(iat=None), "missing_claim",
                      "the iat claim is required: onboardd limits token age "
                      "([auth] max_token_age_s)")
    async with started(auth_max_token_age_s="300", auth_leeway_s="60") as client:
        await accepted(client, signed(iat=now - 330))
    async with started() as client:  # no maximum: iat is optional, an old one is fine
        await accepted(client, signed(iat=None))
        await accepted(client, signed(iat=now - 86400 * 30))


async def test_claim_sizes(started: Started, salon: str) -> None:
    async with started() as client:
        await accepted(client, signed(sub="u" * MAX_SUB_LENGTH))
        await refused(client, signed(sub="u" * (MAX_SUB_LENGTH + 1)), "claim_too_large",
                      f"sub is {MAX_SUB_LENGTH + 1} characters long; at most {MAX_SUB_LENGTH}")
        await refused(client, signed(sub=""), "bad_claim", "sub must be a non-empty string")
        offers = f"/api/salons/{salon}/welcome-offers"
        # Numeric ids keep 1,000 of them under aiohttp's 8,190-byte header line.
        most = [salon, *range(MAX_SALONS - 1)]
        await accepted(client, signed(role="admin", salons=most), offers)
        await refused(client, signed(role="admin", salons=[*most, MAX_SALONS]),
                      "claim_too_large",
                      f"salons lists {MAX_SALONS + 1} entries; at most {MAX_SALONS}", offers)
        resp = await client.get(offers)
        assert resp.status == 401
        assert decode(await resp.read())["error"]["details"] == {"reason": "missing"}


async def test_minted_tokens_carry_the_configured_iss_and_aud(
        started: Started, make_config: Callable[..., Config]) -> None:
    overrides = {"auth_issuer": "https://app.example", "auth_audience": "onboardd",
                 "auth_max_token_age_s": "60"}
    codec = codec_from_config(make_config(**overrides))
    token = codec.encode("user-2", "customer", [], 600, phone="+919876543210")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["iss"], claims["aud"], claims["phone"]) == (
        "https://app.example", "onboardd", "+919876543210")
    async with started(**overrides) as client:
        resp = await client.get(CHECK, headers={"Authorization": "Bearer " + token})
        assert resp.status == 200 and decode(await resp.read())["ownNumber"] is True


@pytest.mark.parametrize(("key", "value", "says"), [
    ("LEEWAY_S", "-1", "[auth] leeway_s: must be between 0 and 3600"),
    ("LEEWAY_S", "nan", "[auth] leeway_s: must be between 0 and 3600"),
    ("LEEWAY_S", "soon", "[auth] leeway_s: Expected `float`"),
    ("MAX_TOKEN_AGE_S", "-5", "[auth] max_token_age_s: must be 0 (no limit) or more"),
])
def test_bad_auth_settings_name_the_key(tmp_path: Path, key: str, value: str, says: str
                                        ) -> None:
    env = daemon_env("postgresql://localhost/x", tmp_path) | {f"ONBOARDD_AUTH_{key}": value}
    with pytest.raises(ConfigError) as err:
        load(None, env)
    assert says in str(err.value)


def test_issuer_with_spaces_is_refused(tmp_path: Path) -> None:
    """Tokens are compared exactly: a stray space in the file would refuse every token."""
    toml = tmp_path / "onboardd.toml"
    toml.write_text('[auth]\nissuer = "https://app.example "\n')
    with pytest.raises(ConfigError, match=r"\[auth\] issuer: has leading or trailing spaces"):
        load(toml, daemon_env("postgresql://localhost/x", tmp_path))
