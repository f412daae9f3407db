"""Bad input in query strings and paths (issue 16, "Bad input, in general"): SQL-looking text in
every search and filter parameter, invalid UTF-8, 10,000 parameters. Each gets a clear 4xx in
the one error shape naming the parameter (or, for free text, an answer that treats it as text),
and changes nothing in the database."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
import pytest
import structlog
from aiohttp import web

from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.web import middleware
from onboardd.web.app import create_app
from onboardd.web.contract import operation_of, query_names
from onboardd.web.server import front_runner
from tests.web.admin.conftest import sign_in, words
from tests.web.bad_input import (
    NAMES,
    SQLISH,
    World,
    api_error,
    names,
    private_tmp_fixture,  # noqa: F401  (the private_tmp fixture)
    table_counts,
    world_fixture,  # noqa: F401  (the world fixture)
)

# Every search and filter parameter of the API (path under /api/salons/{salonId}, or the
# mobile API), but the free-text ones, which are tested for what they find.
FILTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("/customers/imported", ("status", "page", "limit")),
    ("/invitation-campaigns", ("status", "page", "pageSize")),
    ("/invitation-campaigns/{campaign}/messages", ("status", "page", "pageSize")),
    ("/welcome-offers", ("active",)),
    ("/welcome-offers/{offer}/redemptions", ("status", "page", "limit")),
    ("/analytics", ("from", "to", "campaignId")),
    ("/analytics/stages/imported", ("campaignId", "page", "limit")),
    ("/analytics/export.xlsx", ("from", "to", "campaignId", "pii")),
    ("/pii-access-log", ("from", "to", "page", "limit")),
)
FREE_TEXT = (("/customers/imported", "search"), ("/pii-access-log", "customerId"))
# Path parameters: an id or a stage name that is SQL-looking text is a 404, not a match.
BY_ID = ("/invitation-campaigns/{id}", "/invitation-campaigns/{id}/stats",
         "/invitation-campaigns/{id}/audience", "/welcome-offers/{id}",
         "/welcome-offers/{id}/redemptions", "/analytics/stages/{id}",
         "/customers/import/{id}/status", "/customers/import/{id}/errors.csv",
         "/customers/imported/{id}/export")


def _shape_of(path: str) -> str:
    """A route's path with every {parameter} alike (a stage named in FILTERS is one too), to
    compare paths across spellings."""
    return re.sub(r"\{[^}]*\}", "{}", path.replace("/stages/imported", "/stages/{stage}"))


def test_every_documented_query_parameter_is_in_these_tests(services: Services) -> None:
    # The published contract names each operation's query parameters: a new one must join
    # FILTERS (or FREE_TEXT) here, so SQL-looking text and bad UTF-8 are tried in it too.
    covered = {(_shape_of("/api/salons/{salonId}" + path), name)
               for path, names_ in FILTERS for name in names_}
    covered |= {(_shape_of("/api/salons/{salonId}" + path), name) for path, name in FREE_TEXT}
    covered.add(("/api/mobile/check-imported-customer", "phone"))
    missing: set[tuple[str, str]] = set()
    for route in create_app(services).router.routes():
        op = operation_of(route.handler)
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path") or ""
        if op is None or not path.startswith("/api/") or path.startswith("/api/webhooks/"):
            continue
        missing |= {(path, name) for name in query_names(op.query)
                    if (_shape_of(path), name) not in covered}
    assert missing == set(), sorted(missing)


def _url(world: World, path: str, query: str) -> str:
    path = path.format(campaign=world.campaign, offer=world.offer)
    return f"{world.base}{path}?{query}"


async def test_sql_looking_text_in_every_filter_is_a_4xx_naming_it(
        world: World, private_tmp: Path) -> None:
    before = await table_counts(world.services.pool)
    for path, parameters in FILTERS:
        for parameter in parameters:
            for text in SQLISH:
                resp = await world.client.get(_url(world, path, f"{parameter}={quote(text)}"),
                                              headers=world.admin)
                # A campaign id that is no campaign is not found; anything else is invalid.
                expected = (404,) if parameter == "campaignId" else (400, 422)
                assert resp.status in expected, (path, parameter, text, resp.status)
                error = await api_error(resp, resp.status)
                assert names(error, parameter), (path, parameter, text, error)
    for text in SQLISH:
        resp = await world.client.get(f"/api/mobile/check-imported-customer?phone={quote(text)}",
                                      headers=world.customer)
        assert names(await api_error(resp, 422), "phone")
    assert await table_counts(world.services.pool) == before
    assert list(private_tmp.iterdir()) == []  # no export was built


async def test_sql_looking_search_text_is_searched_for_as_text(world: World) -> None:
    before = await table_counts(world.services.pool)
    found: dict[str, list[str]] = {}
    for text in SQLISH:
        resp = await world.client.get(f"{world.base}/customers/imported?search={quote(text)}",
                                      headers=world.admin)
        assert resp.status == 200, await resp.text()
        found[text] = [c["customerName"] for c in (await resp.json())["customers"]]
    # Neither a quote nor a wildcard widens the search: only "Asha_Rao" holds an underscore.
    assert found == {"' OR 1=1 --": [], "'; DROP TABLE imported_customers; --": [], "%": [],
                     "_": ["Asha_Rao"], "\\": []}
    # The access log's customer filter is an exact id: nothing SQL-looking matches an entry.
    resp = await world.client.get(f"{world.base}/pii-access-log", headers=world.admin)
    assert (await resp.json())["total"] >= 1
    for text in SQLISH:
        resp = await world.client.get(f"{world.base}/pii-access-log?customerId={quote(text)}",
                                      headers=world.admin)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["entries"] == []
    assert await table_counts(world.services.pool) == before
    everyone = await world.client.get(f"{world.base}/customers/imported", headers=world.admin)
    assert sorted(c["customerName"] for c in (await everyone.json())["customers"]) == sorted(
        NAMES)


async def test_sql_looking_ids_in_paths_are_404_and_erase_nothing(world: World) -> None:
    before = await table_counts(world.services.pool)
    for text in SQLISH:
        segment = quote(text, safe="")
        for path in BY_ID:
            resp = await world.client.get(world.base + path.format(id=segment),
                                          headers=world.admin)
            await api_error(resp, 404)
        for method, path in (("DELETE", "/customers/imported/{id}"),
                             ("DELETE", "/invitation-campaigns/{id}"),
                             ("POST", "/welcome-offers/{id}/deactivate"),
                             ("POST", "/invitation-campaigns/{id}/pause")):
            resp = await world.client.request(method, world.base + path.format(id=segment),
                                              headers=world.admin)
            await api_error(resp, 404)
    assert await table_counts(world.services.pool) == before
    assert await world.services.pool.fetchval(
        "SELECT count(*) FROM welcome_offers WHERE is_active = 1") == 1


async def test_sql_looking_text_in_the_admin_pages_is_text_or_a_4xx_page(world: World) -> None:
    tokens = world.services.tokens
    admin = await sign_in(world.client, tokens.encode("admin-1", "admin", [world.salon], 3600))
    before = await table_counts(world.services.pool)
    for text in SQLISH:
        page = await admin.page(f"/admin/customers?search={quote(text)}")
        shown = [words(tr.find("td")) for tr in page.select("table.customers tbody tr")]
        assert shown == (["Asha_Rao"] if text == "_" else []), (text, shown)
        for path, status in ((f"/admin/customers?status={quote(text)}", 422),
                             (f"/admin/dashboard?from={quote(text)}", 422),
                             (f"/admin/dashboard?campaign={quote(text)}", 404),
                             (f"/admin/dashboard/export.xlsx?pii={quote(text)}", 422)):
            resp = await admin.get(path)
            html = await resp.text()
            assert resp.status == status, (path, html[:300])
            assert resp.content_type == "text/html" and "Traceback" not in html
    assert await table_counts(world.services.pool) == before


# -- invalid UTF-8 ------------------------------------------------------------------------------

async def test_invalid_utf8_in_any_query_parameter_is_400_naming_it(world: World) -> None:
    before = await table_counts(world.services.pool)
    every = [*FILTERS, *((path, (name,)) for path, name in FREE_TEXT)]
    for path, parameters in every:
        for parameter in parameters:
            for raw in ("%ff%fe", "caf%e9", "%c3", "ok%ed%a0%80"):  # latin-1, cut, surrogate
                resp = await world.client.get(_url(world, path, f"page=1&{parameter}={raw}"),
                                              headers=world.admin)
                error = await api_error(resp, 400)
                assert names(error, parameter), error
                assert "UTF-8" in error["message"], error
    # A parameter's name, and the mobile API, too.
    resp = await world.client.get(f"{world.base}/customers/imported?%ff=1", headers=world.admin)
    assert "name" in (await api_error(resp, 400))["message"]
    resp = await world.client.get("/api/mobile/check-imported-customer?phone=%ff%fe",
                                  headers=world.customer)
    assert names(await api_error(resp, 400), "phone")
    resp = await world.client.post("/api/webhooks/twilio/inbound?from=%ff", data=b"Body=STOP",
                                   headers={"X-Twilio-Signature": "x"})
    assert names(await api_error(resp, 400), "from")
    # Percent-encoded UTF-8 is still text: "é" finds nobody, without an error.
    resp = await world.client.get(f"{world.base}/customers/imported?search=caf%C3%A9",
                                  headers=world.admin)
    assert resp.status == 200 and (await resp.json())["customers"] == []
    assert await table_counts(world.services.pool) == before


async def test_a_nul_in_any_query_parameter_is_422_naming_it(world: World) -> None:
    before = await table_counts(world.services.pool)
    every = [*FILTERS, *((path, (name,)) for path, name in FREE_TEXT)]
    for path, parameters in every:
        for parameter in parameters:
            resp = await world.client.get(_url(world, path, f"{parameter}=a%00b"),
                                          headers=world.admin)
            error = await api_error(resp, 422, "validation_failed")
            assert names(error, parameter) and "NUL" in error["message"], error
    resp = await world.client.get("/api/mobile/check-imported-customer?phone=%2B91%00",
                                  headers=world.customer)
    assert names(await api_error(resp, 422), "phone")
    assert await table_counts(world.services.pool) == before


async def test_invalid_utf8_in_an_admin_page_query_is_a_400_page(world: World) -> None:
    tokens = world.services.tokens
    admin = await sign_in(world.client, tokens.encode("admin-1", "admin", [world.salon], 3600))
    for path in ("/admin/customers?search=%ff%fe", "/admin/dashboard?from=%ff",
                 "/admin/campaigns?page=%c3", "/admin/login?next=%ff"):
        resp = await admin.get(path)
        html = await resp.text()
        assert resp.status == 400, html[:500]
        assert resp.content_type == "text/html"
        assert "not UTF-8 text" in html and "Traceback" not in html


async def test_invalid_utf8_in_an_admin_form_is_a_400_page_not_a_500(world: World) -> None:
    tokens = world.services.tokens
    admin = await sign_in(world.client, tokens.encode("admin-1", "admin", [world.salon], 3600))
    before = await table_counts(world.services.pool)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for path, body in (("/admin/offers/new", b"name=Caf\xe9&discountType=fixed"),
                       ("/admin/offers/new", b"name=%ff%fe"),
                       (f"/admin/customers/{world.customer_ids[0]}/erase", b"confirm=\xff")):
        resp = await admin.post(path, data=body, headers=form)
        html = await resp.text()
        assert resp.status == 400, html[:500]
        assert "not UTF-8 text" in html and "Traceback" not in html
    # A plain form (no CSRF header: the guard reads the token from the form) too.
    resp = await admin.post("/admin/offers/new", data=b"csrf=\xff", headers=form, csrf=False)
    assert resp.status == 400, await resp.text()
    assert await table_counts(world.services.pool) == before


# -- over a real socket: what aiohttp's HTTP parser answers before the app ---------------------

@contextlib.asynccontextmanager
async def _front(world: World) -> AsyncIterator[int]:
    """The app behind the daemon's own HTTP server (onboardd.web.server); its port."""
    runner = front_runner(create_app(world.services), world.services.cfg.http)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def _raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        head, _, body = (await asyncio.wait_for(reader.read(), timeout=10)).partition(b"\r\n\r\n")
    finally:
        writer.close()
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _shape(status: int, headers: dict[str, str], body: bytes, expected: int) -> dict[str, Any]:
    assert status == expected, body[:300]
    assert headers["content-type"].startswith("application/json"), headers
    data = msgspec.json.decode(body)
    assert set(data) == {"error"} and set(data["error"]) == {"code", "message", "details"}
    error: dict[str, Any] = data["error"]
    return error


@pytest.mark.parametrize("path", ["/api/salons/{salon}/customers/imported", "/admin/customers",
                                  "/api/mobile/check-imported-customer"])
async def test_ten_thousand_query_parameters_are_431_in_the_error_shape(
        world: World, path: str) -> None:
    before = await table_counts(world.services.pool)
    query = "&".join(f"p{i}=1" for i in range(10_000))
    auth = world.admin["Authorization"]
    async with _front(world) as port:
        answer = await _raw(port, (f"GET {path.format(salon=world.salon)}?{query} HTTP/1.1\r\n"
                                   f"Host: x\r\nAuthorization: {auth}\r\n\r\n").encode())
        error = _shape(*answer, 431)
        assert error["code"] == "headers_too_large"
        assert "shorter" in error["message"] and error["details"] == {"limitBytes": 8190}
        # The server goes on serving.
        status, _, _ = await _raw(port, (
            f"GET /api/salons/{world.salon}/welcome-offers?active=true HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {auth}\r\nConnection: close\r\n\r\n").encode())
        assert status == 200
    assert await table_counts(world.services.pool) == before


async def test_ten_thousand_form_fields_are_answered_in_words(world: World) -> None:
    before = await table_counts(world.services.pool)
    fields = "&".join(["a="] * 10_000)  # 30 KB
    # Twilio's webhook form: at most 200 fields, before the signature is even checked.
    resp = await world.client.post("/api/webhooks/twilio/inbound", data=fields.encode(), headers={
        "X-Twilio-Signature": "x", "Content-Type": "application/x-www-form-urlencoded"})
    assert "200" in (await api_error(resp, 400, "bad_request"))["message"]
    # An admin form: aiohttp reads at most 1,000 fields of a form; a page says so in words.
    tokens = world.services.tokens
    admin = await sign_in(world.client, tokens.encode("admin-1", "admin", [world.salon], 3600))
    resp = await admin.post("/admin/offers/new", data=f"name=Welcome&{fields}".encode(),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    html = await resp.text()
    assert resp.status == 413 and "too large for this form" in html, html[:300]
    assert await table_counts(world.services.pool) == before


async def test_raw_non_ascii_bytes_in_the_query_are_400_in_the_error_shape(
        world: World) -> None:
    auth = world.admin["Authorization"]
    async with _front(world) as port:
        for raw in (b"search=\xff\xfe", b"search=caf\xe9"):
            answer = await _raw(port, b"GET /api/salons/" + world.salon.encode()
                                + b"/customers/imported?" + raw + b" HTTP/1.1\r\nHost: x\r\n"
                                + f"Authorization: {auth}\r\nConnection: close\r\n\r\n".encode())
            error = _shape(*answer, 400)
            assert error["code"] == "bad_request", error
            assert "not valid HTTP/1.1" in error["message"], error


async def test_a_body_not_compressed_as_it_says_leaves_no_traceback(
        world: World, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    auth = world.admin["Authorization"]
    body = b'{"name": "Welcome"}'
    with structlog.testing.capture_logs() as logs:
        # The module's logger may be bound to an earlier test's processors (structlog caches
        # it on first use), which capture_logs does not see: a fresh one.
        monkeypatch.setattr(middleware, "log", get_logger("http"))
        async with _front(world) as port:
            answer = await _raw(port, (
                f"POST /api/salons/{world.salon}/welcome-offers HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: {auth}\r\nContent-Type: application/json\r\n"
                f"Content-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body)
    error = _shape(*answer, 400)
    assert error["details"] == {"field": "body"}, error
    # One warning naming the error class: no traceback, neither ours nor aiohttp's.
    assert [e["event"] for e in logs if e["log_level"] in ("warning", "error")] == [
        "request_body_unreadable"]
    assert not any("exc_info" in e for e in logs)
    assert not [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"]
