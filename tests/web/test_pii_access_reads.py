"""Every read that shows PII writes its pii_access_log entry with the route and the customers it
showed (issue 16, point 5): an import's preview (at upload and previewed again), the analytics
stage lists and the analytics export (masked or in full, naming at most
MAX_LOGGED_CUSTOMERS). Over real HTTP and PostgreSQL; each entry is read back as a row."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from onboardd.db.imports import MAX_LOGGED_CUSTOMERS
from onboardd.runtime import Services
from tests.campaign_support import add_customers, phone
from tests.web.test_imports_api import GOOD_CSV, form, import_file

Client = TestClient[Any, Any]
IMPORT = "/api/salons/{salonId}/customers/import"


async def _entries(pool: asyncpg.Pool, salon: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT actor, action, route, record_count, customer_ids, details, request_id"
        " FROM pii_access_log WHERE salon_id = $1 ORDER BY id", salon)
    return [dict(r) for r in rows]


async def _ids_by_name(pool: asyncpg.Pool, salon: str) -> dict[str, str]:
    rows = await pool.fetch("SELECT id, customer_name FROM imported_customers"
                            " WHERE salon_id = $1", salon)
    return {r["customer_name"]: r["id"] for r in rows}


async def test_each_import_preview_is_logged_with_the_customers_it_shows(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services,
        importer_running: None) -> None:
    pool = services.pool
    await import_file(client, salon, admin_headers, GOOD_CSV)
    first = await _entries(pool, salon)
    # The first file's preview: its three rows, nobody's numbers yet.
    assert [(e["action"], e["route"], e["record_count"], e["customer_ids"], e["actor"])
            for e in first] == [("import_preview", f"POST {IMPORT}", 3, [], "admin-1")]
    ids = await _ids_by_name(pool, salon)

    # A second file repeats Priya's and Anita's numbers (in other formats) beside a new one.
    data = ("Name,Phone\nNew Person,9000000001\nPriya S,+91 98765 43210\n"
            "Anita D,9876543212\n")
    resp = await client.post(f"/api/salons/{salon}/customers/import", data=form(data),
                             headers={**admin_headers, "X-Request-Id": "upload-2"})
    assert resp.status == 201, await resp.text()
    batch = (await resp.json())["batchId"]
    entry = (await _entries(pool, salon))[-1]
    assert entry == {
        "actor": "admin-1", "action": "import_preview", "route": f"POST {IMPORT}",
        "record_count": 3, "customer_ids": [ids["Priya Sharma"], ids["Anita Desai"]],
        "details": {"batchId": batch}, "request_id": "upload-2"}

    # The same file previewed again (stored mapping, then other columns): one entry each.
    url = f"/api/salons/{salon}/customers/import/{batch}/preview"
    for request_id, body in (("again-1", None), ("again-2", {"mapping": {"phone": "Phone"}})):
        resp = await client.post(url, json=body,
                                 headers={**admin_headers, "X-Request-Id": request_id})
        assert resp.status == 200, await resp.text()
        assert "+919876543210" in await resp.text()  # the numbers it shows
        entry = (await _entries(pool, salon))[-1]
        assert entry == {
            "actor": "admin-1", "action": "import_preview",
            "route": f"POST {IMPORT}/{{batchId}}/preview", "record_count": 3,
            "customer_ids": [ids["Priya Sharma"], ids["Anita Desai"]],
            "details": {"batchId": batch}, "request_id": request_id}

    # A refused preview shows nothing and logs nothing.
    before = len(await _entries(pool, salon))
    resp = await client.post(url, json={"mapping": {"phone": "No Such Column"}},
                             headers=admin_headers)
    assert resp.status == 422, await resp.text()
    assert len(await _entries(pool, salon)) == before

    # Who saw Priya: the salon's log filtered to her lists both previews of her number.
    resp = await client.get(f"/api/salons/{salon}/pii-access-log", headers=admin_headers,
                            params={"customerId": ids["Priya Sharma"]})
    assert resp.status == 200, await resp.text()
    assert [(e["action"], e["requestId"]) for e in (await resp.json())["entries"]] == [
        ("import_preview", "again-2"), ("import_preview", "again-1"),
        ("import_preview", "upload-2")]


async def test_analytics_stage_reads_name_the_customers_on_the_page(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services) -> None:
    pool = services.pool
    # One insert: the same import time, so the stage lists them by id.
    ids = sorted(await add_customers(pool, services.cipher, salon, [phone(i) for i in range(5)]))
    for page, shown in ((1, ids[:2]), (3, ids[4:]), (4, [])):
        resp = await client.get(f"/api/salons/{salon}/analytics/stages/imported",
                                params={"limit": "2", "page": str(page)},
                                headers={**admin_headers, "X-Request-Id": f"stage-{page}"})
        assert resp.status == 200, await resp.text()
        assert [c["id"] for c in (await resp.json())["customers"]] == shown
        entry = (await _entries(pool, salon))[-1]
        assert (entry["action"], entry["route"], entry["record_count"], entry["customer_ids"],
                entry["request_id"]) == (
            "analytics_stage", "GET /api/salons/{salonId}/analytics/stages/{stage}",
            len(shown), shown, f"stage-{page}")


async def test_analytics_export_names_its_customers_up_to_the_bound(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services) -> None:
    pool = services.pool
    # The sheet lists customers by import time, then id (each insert is one import time).
    small = sorted(await add_customers(pool, services.cipher, salon,
                                       [phone(i) for i in range(3)]))
    url = f"/api/salons/{salon}/analytics/export.xlsx"
    route = "GET /api/salons/{salonId}/analytics/export.xlsx"
    resp = await client.get(url, headers=admin_headers)
    assert resp.status == 200, await resp.text()
    await resp.read()
    entry = (await _entries(pool, salon))[-1]
    assert (entry["action"], entry["route"], entry["record_count"], entry["customer_ids"]) == (
        "analytics_export", route, 3, small)
    assert "customerIdsOmitted" not in entry["details"]

    # Past the bound: the first MAX_LOGGED_CUSTOMERS (oldest import first) named, the rest
    # counted; in full as masked.
    more = MAX_LOGGED_CUSTOMERS + 2 - len(small)
    rest = sorted(await add_customers(pool, services.cipher, salon,
                                      [phone(i) for i in range(3, 3 + more)]))
    resp = await client.get(url, params={"pii": "full"}, headers=admin_headers)
    assert resp.status == 200, await resp.text()
    await resp.read()
    entry = (await _entries(pool, salon))[-1]
    assert (entry["action"], entry["route"], entry["record_count"]) == (
        "analytics_export_full", route, MAX_LOGGED_CUSTOMERS + 2)
    assert entry["customer_ids"] == [*small, *rest][:MAX_LOGGED_CUSTOMERS]
    assert entry["details"]["customerIdsOmitted"] == 2
