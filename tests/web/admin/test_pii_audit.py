"""Reads of PII in the admin UI show in the salon's PII access log with their route and the
customers they showed, like the API's (issue 16, point 5)."""

from __future__ import annotations

from onboardd.runtime import Services
from tests.campaign_support import add_customers, phone
from tests.web.admin.conftest import Admin
from tests.web.admin.test_import_page import MESSY_FORM
from tests.web.messy_import import EXISTING, MESSY_CSV
from tests.web.test_imports_api import form

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


async def test_admin_ui_import_previews_are_in_the_access_log(admin: Admin, services: Services,
                                                              salon: str) -> None:
    """The wizard's upload, a dropdown's preview again and a reload of the batch's page each
    show the first rows' numbers: one entry each, by the signed-in admin, naming the customer
    whose number row 11 holds."""
    (kavya,) = await add_customers(services.pool, services.cipher, salon, EXISTING)
    uploaded = await admin.post("/admin/import", data=form(MESSY_CSV))
    assert uploaded.status == 200, await uploaded.text()
    batch = uploaded.headers["HX-Push-Url"].rsplit("/", 1)[1]
    changed = await admin.post(f"/admin/import/{batch}/preview",
                               data={**MESSY_FORM, "email": ""})
    assert changed.status == 200, await changed.text()
    assert (await admin.get(f"/admin/import/{batch}")).status == 200
    rows = await services.pool.fetch(
        "SELECT actor, action, route, record_count, customer_ids, details, request_id"
        " FROM pii_access_log WHERE salon_id = $1 ORDER BY id", salon)
    assert [(r["actor"], r["action"], r["route"], r["record_count"], r["customer_ids"],
             r["details"]) for r in rows] == [
        ("admin-1", "import_preview", route, 10, [kavya], {"batchId": batch})
        for route in ("POST /admin/import", "POST /admin/import/{batchId}/preview",
                      "GET /admin/import/{batchId}")]
    assert rows[1]["request_id"] == changed.headers["X-Request-Id"]
