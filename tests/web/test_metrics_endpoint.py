"""GET /metrics over HTTP: open without a token, bearer-only with one; never behind the JWT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from onboardd.config import load
from tests.conftest import AppFor, daemon_env
from tests.metrics_support import scrape

TOKEN = "scrape-me-" + "x" * 22


async def test_open_without_a_token_and_no_jwt_needed(client: TestClient[Any, Any]) -> None:
    found = await scrape(client, "")
    assert found.value("onboardd_queue_capacity", queue="imports") == 64
    assert found.value("onboardd_queue_depth", queue="status") == 0
    assert found.families["onboardd_send_outcomes"] == "counter"
    assert found.families["onboardd_send_duration_seconds"] == "histogram"
    assert "onboardd_db_pool_in_use" in found.families


async def _refused(client: TestClient[Any, Any], headers: dict[str, str]) -> dict[str, Any]:
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    body: dict[str, Any] = await resp.json()
    return body


async def test_token_is_required_once_configured(app_for: AppFor) -> None:
    async with app_for(metrics_token=TOKEN) as (client, _services):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                        {"Authorization": "Basic " + TOKEN},
                        {"Authorization": "Bearer " + TOKEN + "x"}):
            body = await _refused(client, headers)
            assert body["error"]["code"] == "unauthorized"
            assert set(body["error"]) == {"code", "message", "details"}
        found = await scrape(client, "", Authorization="Bearer " + TOKEN)
        assert "onboardd_queue_depth" in found.families


async def test_token_from_a_file_and_the_environment(tmp_path: Path, db_url: str) -> None:
    secret = tmp_path / "metrics.token"
    secret.write_text(TOKEN + "\n")
    from_file = load(None, daemon_env(db_url, tmp_path / "state",
                                      ONBOARDD_METRICS_TOKEN_FILE=str(secret)))
    assert from_file.metrics.token == TOKEN
    from_env = load(None, daemon_env(db_url, tmp_path / "state", ONBOARDD_METRICS_TOKEN=TOKEN))
    assert from_env.metrics.token == TOKEN
