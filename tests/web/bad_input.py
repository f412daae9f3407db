"""Helpers of the hand-written bad-input tests (issue 16, "Bad input, in general"): the seeded
salon, the one error shape, and the database snapshot that proves a refusal changed nothing."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from onboardd.auth import TokenCodec
from onboardd.runtime import Services
from tests.campaign_support import add_customers, add_offer, phone
from tests.conftest import AppFor, bearer

# SQL-looking text, and LIKE's own wildcards and escape.
SQLISH = ("' OR 1=1 --", "'; DROP TABLE imported_customers; --", "%", "_", "\\")
NAMES = ("Priya Sharma", "Rahul Verma", "Asha_Rao")
# Tables a read may write by design: every read of customers' PII is logged.
WRITTEN_BY_READS = frozenset({"pii_access_log"})


@dataclass
class World:
    """A salon with customers, an offer, a campaign and a stored upload, and clients of an app
    without rate limits (these tests send hundreds of requests a second)."""

    client: TestClient[Any, Any]
    services: Services
    salon: str
    admin: dict[str, str]
    customer: dict[str, str]
    customer_ids: list[str]
    offer: str
    campaign: str

    @property
    def base(self) -> str:
        return f"/api/salons/{self.salon}"


@pytest.fixture(name="world")
async def world_fixture(app_for: AppFor, tokens: TokenCodec, services: Services, salon: str
                ) -> AsyncIterator[World]:
    pool = services.pool
    ids = await add_customers(pool, services.cipher, salon, [phone(i) for i in range(3)])
    await pool.execute(
        "UPDATE imported_customers SET customer_name = u.name "
        "FROM unnest($1::varchar[], $2::varchar[]) AS u(id, name) "
        "WHERE imported_customers.id = u.id", ids, list(NAMES))
    offer = await add_offer(pool, salon)
    campaign: str = await pool.fetchval(
        "INSERT INTO invitation_campaigns (salon_id, name, message_template, status, created_by)"
        " VALUES ($1, 'Diwali', 'Hi {{customer_name}}', 'draft', 'admin-1') RETURNING id", salon)
    async with app_for(ratelimit_enabled="false") as (client, svc):
        yield World(client, svc, salon, bearer(tokens, "admin-1", "admin", [salon]),
                    bearer(tokens, "user-1", "customer", phone=phone(0)), ids, offer, campaign)


@pytest.fixture(name="private_tmp")
def private_tmp_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process's temporary directory for this test (exports build their workbook in one):
    empty at the end unless a request wrote a file there."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


async def table_counts(pool: asyncpg.Pool) -> dict[str, tuple[int, str | None]]:
    """Every table of the schema (bar the read log): its row count and a digest of its rows,
    so a refusal that updated a row (a campaign sent, an offer deactivated) shows too."""
    names = await pool.fetch("SELECT table_name FROM information_schema.tables "
                             "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")
    state = {}
    for row in names:
        name = row["table_name"]
        if name not in WRITTEN_BY_READS:
            found = await pool.fetchrow(
                f'SELECT count(*) AS n, md5(string_agg(t::text, \'|\' ORDER BY t::text)) AS d '
                f'FROM "{name}" t')
            state[name] = (found["n"], found["d"])
    assert "imported_customers" in state and "welcome_offers" in state
    return state


async def api_error(resp: ClientResponse, status: int, code: str | None = None
                    ) -> dict[str, Any]:
    """The one error shape with this status (and code): JSON, a message, a request id."""
    raw = await resp.read()
    assert resp.status == status, (resp.method, str(resp.url)[:200], raw[:500])
    assert resp.content_type == "application/json", raw[:500]
    assert resp.headers.get("X-Request-Id"), resp.headers
    assert b"Traceback" not in raw
    data = msgspec.json.decode(raw)
    assert set(data) == {"error"} and set(data["error"]) == {"code", "message", "details"}, data
    error: dict[str, Any] = data["error"]
    assert error["message"], error
    if code is not None:
        assert error["code"] == code, error
    return error


def names(error: dict[str, Any], field: str) -> bool:
    """Whether the error names this parameter or field (its message starts with it, or its
    details say it)."""
    details = error["details"] if isinstance(error["details"], dict) else {}
    return (error["message"].startswith(f"{field}:") or details.get("field") == field
            or details.get("parameter") == field)
