"""Reads of PII in the admin UI show in the salon's PII access log with their route and the
customers they showed, like the API's (issue 16, point 5)."""

from __future__ import annotations

from onboardd.runtime import Services
from tests.campaign_support import add_customers, phone
from tests.web.admin.conftest import Admin

BASE = "/admin/customers"


async def test_admin_ui_reads_are_in_the_access_log(admin: Admin, services: Services,
                                                     salon: str,
                                                     admin_headers: dict[str, str]) -> None:
    priya, rahul = await add_customers(services.pool, services.cipher, salon,
                                       [phone(1), phone(2)])
    assert (await admin.get(BASE)).status == 200
    reveal = await admin.post(f"{BASE}/{priya}/reveal")
    assert reveal.status == 200

    resp = await admin.client.get(f"/api/salons/{salon}/pii-access-log", headers=admin_headers)
    assert resp.status == 200, await resp.text()
    entries = (await resp.json())["entries"]
    assert [(e["actor"], e["action"], e["route"]) for e in entries] == [
        ("admin-1", "reveal_phone", "POST /admin/customers/{customerId}/reveal"),
        ("admin-1", "admin_list_customers", "GET /admin/customers")]
    assert entries[0]["customerIds"] == [priya]
    assert sorted(entries[1]["customerIds"]) == sorted([priya, rahul])
    assert entries[0]["requestId"] == reveal.headers["X-Request-Id"]
    resp = await admin.client.get(f"/api/salons/{salon}/pii-access-log",
                                  headers=admin_headers, params={"customerId": rahul})
    assert [e["action"] for e in (await resp.json())["entries"]] == ["admin_list_customers"]
