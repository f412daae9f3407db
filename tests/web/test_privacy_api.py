"""Data-subject rights and audit over real HTTP and PostgreSQL (issue 16, point 5): a customer's
export, the erase waiting for imports that hold their number, and the salon's PII access log."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from onboardd.actors import importer
from onboardd.auth import TokenCodec
from onboardd.db import imports as imports_db
from onboardd.runtime import Services
from onboardd.services import customers as customers_service
from onboardd.services import import_holds
from onboardd.services.imports import ROW_PURPOSE
from tests.campaign_support import add_customers
from tests.conftest import bearer, error_of
from tests.web.test_imports_api import GOOD_CSV, import_file, upload, wait_done

Client = TestClient[Any, Any]
PRIYA = "+919876543210"


async def _ids(client: Client, salon: str, headers: dict[str, str]) -> dict[str, str]:
    resp = await client.get(f"/api/salons/{salon}/customers/imported", headers=headers)
    assert resp.status == 200
    return {c["customerName"]: c["id"] for c in (await resp.json())["customers"]}


# --- the export ------------------------------------------------------------------------------


async def test_export_holds_everything_stored_about_the_customer(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services,
        tokens: TokenCodec, importer_running: None) -> None:
    pool = services.pool
    await import_file(client, salon, admin_headers, GOOD_CSV)
    # A later file repeats Priya's number (skipped) and lists it as a second number of a row
    # without a name (rejected); a stranger's rejected row is not hers.
    again = await import_file(client, salon, admin_headers,
                              "Name,Phone\nPriya S,9876543210\n,9000000001 ; 98765 43210\n"
                              ",9000000002\n")
    assert again["errorCount"] == 3
    ids = await _ids(client, salon, admin_headers)
    priya, rahul = ids["Priya Sharma"], ids["Rahul Verma"]
    campaign = await pool.fetchval(
        "INSERT INTO invitation_campaigns (salon_id, name, message_template, status, created_by)"
        " VALUES ($1, 'Diwali', 't', 'completed', 'a') RETURNING id", salon)
    await pool.execute(
        "INSERT INTO invitation_messages (campaign_id, imported_customer_id, salon_id, channel,"
        " twilio_message_sid, status, sender) SELECT $1, c.id, $2, 'sms', 'SM' || md5(c.id),"
        " 'delivered', '+15005550006' FROM unnest($3::varchar[]) AS c (id)",
        campaign, salon, [priya, rahul])
    digest = services.cipher.phone_hash(PRIYA)
    await pool.execute("INSERT INTO opt_outs (phone_hash, sender, source) "
                       "VALUES ($1, '+15005550006', 'stop')", digest)
    await pool.execute("INSERT INTO inbound_messages (message_sid, phone_hash, sender, keyword) "
                       "VALUES ('SMin1', $1, '+15005550006', 'STOP')", digest)
    user = await pool.fetchval("INSERT INTO users (phone, name) VALUES ($1, 'Priya') "
                               "RETURNING id", PRIYA)
    await pool.execute("UPDATE imported_customers SET linked_user_id = $2, status = 'registered',"
                       " registered_at = now() WHERE id = $1", priya, user)
    offer = await pool.fetchval(
        "INSERT INTO welcome_offers (salon_id, name, discount_type, discount_value) "
        "VALUES ($1, 'Welcome 100', 'fixed', 10000) RETURNING id", salon)
    grant = await pool.fetchval(
        "INSERT INTO welcome_offer_redemptions (welcome_offer_id, user_id, imported_customer_id,"
        " discount_applied_in_paisa, expires_at) VALUES ($1, $2, $3, 0, now() + interval "
        "'30 days') RETURNING id", offer, user, priya)

    resp = await client.get(f"/api/salons/{salon}/customers/imported/{priya}/export",
                            headers=admin_headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    customer = body["customer"]
    assert (customer["id"], customer["customerName"], customer["phone"],
            customer["normalizedPhone"], customer["email"], customer["status"],
            customer["linkedUserId"], customer["sourceRow"]) == (
        priya, "Priya Sharma", "9876543210", PRIYA, "priya@example.com", "registered", user, 2)
    assert customer["funnel"]["invited"] is True and customer["funnel"]["delivered"] is True
    assert [(m["campaignName"], m["status"], m["channel"]) for m in body["messages"]] == [
        ("Diwali", "delivered", "sms")]
    assert [(o["sender"], o["source"]) for o in body["optOuts"]] == [("+15005550006", "stop")]
    assert [k["keyword"] for k in body["inboundKeywords"]] == ["STOP"]
    assert [(r["id"], r["offerName"], r["status"]) for r in body["offerRedemptions"]] == [
        (grant, "Welcome 100", "active")]
    rows = body["importErrorRows"]
    assert [(r["batchId"], r["rowNumber"]) for r in rows] == [
        (again["batchId"], 2), (again["batchId"], 3)]
    assert rows[0]["cells"] == {"Name": "Priya S", "Phone": "9876543210"}
    assert rows[0]["errors"] == ["Duplicate phone number"]
    assert "9000000002" not in str(body)
    # Her earlier reads are listed (the list above showed her, the second file's preview her
    # number; the first file's preview came before she was a customer), the export logged.
    assert [a["action"] for a in body["accessLog"]] == [
        "list_imported_customers", "import_preview"]
    logged = await pool.fetchrow(
        "SELECT actor, salon_id, record_count, route, customer_ids, details FROM pii_access_log"
        " WHERE action = 'export_customer'")
    assert dict(logged) == {
        "actor": "admin-1", "salon_id": salon, "record_count": 1,
        "route": "GET /api/salons/{salonId}/customers/imported/{customerId}/export",
        "customer_ids": [priya],
        "details": {"customerId": priya, "messages": 1, "optOuts": 1, "inboundKeywords": 1,
                    "offerRedemptions": 1, "importErrorRows": 2}}

    # Another salon's admin: 403 on this salon's path, 404 for this id under their own salon.
    other = await pool.fetchval("INSERT INTO salons (name) VALUES ('Other') RETURNING id")
    other_headers = bearer(tokens, "admin-2", "admin", [other])
    resp = await client.get(f"/api/salons/{salon}/customers/imported/{priya}/export",
                            headers=other_headers)
    error_of(resp.status, await resp.read(), 403)
    resp = await client.get(f"/api/salons/{other}/customers/imported/{priya}/export",
                            headers=other_headers)
    assert error_of(resp.status, await resp.read(), 404)["code"] == "customer_not_found"
    resp = await client.get(f"/api/salons/{salon}/customers/imported/{priya}/export")
    error_of(resp.status, await resp.read(), 401)
    assert await pool.fetchval(
        "SELECT count(*) FROM pii_access_log WHERE action = 'export_customer'") == 1


# --- the erase waits for imports holding the number -----------------------------------------


async def test_erase_waits_for_a_preview_holding_the_number(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services,
        importer_running: None) -> None:
    pool = services.pool
    await import_file(client, salon, admin_headers, GOOD_CSV)
    ids = await _ids(client, salon, admin_headers)
    priya, rahul = ids["Priya Sharma"], ids["Rahul Verma"]
    # A new upload holds Priya's number: in a second phone column, spelt another way, and on
    # a row of its own.
    preview = await upload(client, salon, admin_headers,
                           "Name,Mobile,Home\nP. Sharma,9000000003,+91-98765-43210\n"
                           "Priya Sharma,098765 43210,\n")
    base = f"/api/salons/{salon}/customers/imported"
    resp = await client.delete(f"{base}/{priya}", headers=admin_headers)
    error = error_of(resp.status, await resp.read(), 409)
    assert error["code"] == "import_in_progress"
    assert "awaiting confirmation" in error["message"]
    assert "erase them again once the import has finished" in error["message"]
    assert preview["batchId"] in error["message"]
    created = await pool.fetchval("SELECT created_at FROM customer_import_batches WHERE id = $1",
                                  preview["batchId"])
    expires = (created + dt.timedelta(hours=24)).astimezone(dt.UTC)
    assert f"{expires:%Y-%m-%d %H:%M} UTC" in error["message"]
    [held] = error["details"]["imports"]
    assert (held["batchId"], held["status"], held["rows"]) == (preview["batchId"], "preview", 2)
    assert "Retry-After" not in resp.headers
    # Nothing was erased, nothing logged as erased.
    assert await pool.fetchval("SELECT count(*) FROM imported_customers WHERE id = $1",
                               priya) == 1
    assert await pool.fetchval("SELECT count(*) FROM pii_access_log WHERE action = 'erase'") == 0
    # Rahul's number is not in that file: his erase goes through.
    resp = await client.delete(f"{base}/{rahul}", headers=admin_headers)
    assert resp.status == 204, await resp.text()

    # Once the import has run (its file dropped), Priya's erase works, and takes her rows of
    # that import's error report with it (her number was already a customer: a duplicate).
    resp = await client.post(
        f"/api/salons/{salon}/customers/import/{preview['batchId']}/confirm",
        headers=admin_headers)
    assert resp.status == 202
    done = await wait_done(client, salon, preview["batchId"], admin_headers)
    assert done["errorCount"] == 1
    resp = await client.delete(f"{base}/{priya}", headers=admin_headers)
    assert resp.status == 204, await resp.text()
    assert await pool.fetchval("SELECT count(*) FROM import_errors WHERE batch_id = $1",
                               preview["batchId"]) == 0
    assert await pool.fetchval("SELECT error_log FROM customer_import_batches WHERE id = $1",
                               preview["batchId"]) == []
    assert set(await _ids(client, salon, admin_headers)) == {"Anita Desai", "P. Sharma"}


async def test_erase_waits_for_a_running_import_and_cleans_its_error_rows(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services) -> None:
    """No importer runs: the confirmed import stays `processing` with its file."""
    pool = services.pool
    # The importer's own code imports each batch when the test says so.
    first = await upload(client, salon, admin_headers, GOOD_CSV)
    resp = await client.post(f"/api/salons/{salon}/customers/import/{first['batchId']}/confirm",
                             headers=admin_headers)
    assert resp.status == 202
    batch = await imports_db.claim_batch(pool, 60.0, None)
    assert batch is not None and batch.id == first["batchId"]
    assert await importer.process_batch(services, batch, asyncio.Event()) == "completed"
    ids = await _ids(client, salon, admin_headers)
    priya = ids["Priya Sharma"]
    second = await upload(client, salon, admin_headers,
                          "Name,Phone,Notes\nNew Person,9000000004,\nPriya again,9876543210,"
                          "vip\n")
    resp = await client.post(f"/api/salons/{salon}/customers/import/{second['batchId']}/confirm",
                             headers=admin_headers)
    assert resp.status == 202

    resp = await client.delete(f"/api/salons/{salon}/customers/imported/{priya}",
                               headers=admin_headers)
    error = error_of(resp.status, await resp.read(), 409)
    assert "being imported now" in error["message"] and "0% done" in error["message"]
    assert error["details"]["imports"][0]["status"] == "processing"
    assert resp.headers["Retry-After"] == "60"

    batch = await imports_db.claim_batch(pool, 60.0, None)
    assert batch is not None and batch.id == second["batchId"]
    assert await importer.process_batch(services, batch, asyncio.Event()) == "completed"
    # Her row of the second file is a duplicate: its original cells are stored, sealed.
    sealed = await pool.fetch("SELECT row_number, original_enc FROM import_errors "
                              "WHERE batch_id = $1", second["batchId"])
    assert [r["row_number"] for r in sealed] == [3]
    assert "vip" in services.cipher.decrypt(sealed[0]["original_enc"], ROW_PURPOSE)

    resp = await client.delete(f"/api/salons/{salon}/customers/imported/{priya}",
                               headers=admin_headers)
    assert resp.status == 204, await resp.text()
    assert await pool.fetchval("SELECT count(*) FROM import_errors WHERE batch_id = $1",
                               second["batchId"]) == 0
    remaining = await pool.fetch("SELECT original_enc FROM import_errors")
    assert not any("98765" in services.cipher.decrypt(r["original_enc"], ROW_PURPOSE)
                   for r in remaining)
    # No stored file is left holding her number either.
    assert await pool.fetchval("SELECT count(*) FROM customer_import_batches "
                               "WHERE salon_id = $1 AND file_data IS NOT NULL", salon) == 0


async def test_an_upload_arriving_during_the_erase_is_read_too(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The stored files are read before the erase's transaction; an upload holding the number
    that lands in between is found by the transaction's re-check, read, and refuses the
    erase."""
    pool = services.pool
    [priya] = await add_customers(pool, services.cipher, salon, [PRIYA])
    real = import_holds.open_imports_holding
    calls: list[int] = []

    async def racing(svc: Services, salon_id: str, e164: str) -> Any:
        found = await real(svc, salon_id, e164)
        calls.append(len(found[0]))
        if len(calls) == 1:
            await upload(client, salon, admin_headers, "Name,Phone\nPriya,98765 43210\n")
        return found

    monkeypatch.setattr(customers_service, "open_imports_holding", racing)
    resp = await client.delete(f"/api/salons/{salon}/customers/imported/{priya}",
                               headers=admin_headers)
    error = error_of(resp.status, await resp.read(), 409)
    assert error["code"] == "import_in_progress" and calls == [0, 1]
    assert await pool.fetchval("SELECT count(*) FROM imported_customers") == 1


# --- the PII access log -----------------------------------------------------------------------


async def test_access_log_lists_who_read_what_with_pages_and_windows(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services,
        tokens: TokenCodec, importer_running: None) -> None:
    pool = services.pool
    await import_file(client, salon, admin_headers, GOOD_CSV)  # 0: its preview, naming nobody
    ids = await _ids(client, salon, admin_headers)  # 1: the list, by admin-1
    priya = ids["Priya Sharma"]
    auditor = bearer(tokens, "auditor-7", "admin", [salon])
    resp = await client.get(f"/api/salons/{salon}/customers/imported/{priya}/export",
                            headers=auditor)  # 2: the export, by auditor-7
    assert resp.status == 200
    resp = await client.get(f"/api/salons/{salon}/customers/imported", headers=auditor,
                            params={"search": "Rahul"})  # 3: a search showing Rahul only
    assert resp.status == 200
    # Another salon's reads never show here.
    other = await pool.fetchval("INSERT INTO salons (name) VALUES ('Other') RETURNING id")
    resp = await client.get(f"/api/salons/{other}/customers/imported",
                            headers=bearer(tokens, "admin-2", "admin", [other]))
    assert resp.status == 200

    url = f"/api/salons/{salon}/pii-access-log"
    resp = await client.get(url, headers=admin_headers)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["total"], body["page"], body["limit"], body["totalPages"]) == (4, 1, 50, 1)
    entries = body["entries"]
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("auditor-7", "list_imported_customers"), ("auditor-7", "export_customer"),
        ("admin-1", "list_imported_customers"), ("admin-1", "import_preview")]
    assert entries[3]["customerIds"] == [] and entries[3]["recordCount"] == 3
    assert entries[1]["route"] == (
        "GET /api/salons/{salonId}/customers/imported/{customerId}/export")
    assert entries[1]["customerIds"] == [priya] and entries[1]["recordCount"] == 1
    assert entries[0]["customerIds"] == [ids["Rahul Verma"]]
    assert sorted(entries[2]["customerIds"]) == sorted(ids.values())
    assert entries[2]["route"] == "GET /api/salons/{salonId}/customers/imported"
    assert all(e["requestId"] for e in entries)
    assert "98765" not in await resp.text()

    # Pages of one, and who saw Priya.
    resp = await client.get(url, headers=admin_headers, params={"page": "2", "limit": "1"})
    page = await resp.json()
    assert [e["action"] for e in page["entries"]] == ["export_customer"]
    assert (page["total"], page["totalPages"]) == (4, 4)
    resp = await client.get(url, headers=admin_headers, params={"customerId": priya})
    assert [e["actor"] for e in (await resp.json())["entries"]] == ["auditor-7", "admin-1"]

    # The window: dates are whole days in the salon's timezone, times are instants.
    now = await pool.fetchval("SELECT now()")
    today = now.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30))).date()
    for params, count in [
            ({"from": today.isoformat(), "to": today.isoformat()}, 4),
            ({"to": (today - dt.timedelta(days=1)).isoformat()}, 0),
            ({"from": (now + dt.timedelta(minutes=1)).isoformat(),
              "to": (now + dt.timedelta(minutes=9)).isoformat()}, 0),
            ({"from": (now - dt.timedelta(minutes=5)).isoformat(),
              "to": (now + dt.timedelta(minutes=5)).isoformat().replace("+00:00", "Z")}, 4)]:
        resp = await client.get(url, headers=admin_headers, params=params)
        assert resp.status == 200, (params, await resp.text())
        assert (await resp.json())["total"] == count, params

    # Reading the log shows no PII and writes nothing to it.
    assert await pool.fetchval("SELECT count(*) FROM pii_access_log WHERE salon_id = $1",
                               salon) == 4


async def test_access_log_bad_parameters_are_422_naming_them(
        client: Client, salon: str, admin_headers: dict[str, str], tokens: TokenCodec) -> None:
    url = f"/api/salons/{salon}/pii-access-log"
    for params, parameter in [
            ({"from": "yesterday"}, "from"), ({"to": "2026-13-01"}, "to"),
            ({"from": "2026-11-30T10:00:00"}, "from"), ({"to": "0001-01-01"}, "to"),
            ({"from": "2026-12-02", "to": "2026-12-01"}, "from"),
            ({"page": "0"}, "page"), ({"page": "two"}, "page"), ({"page": "-1"}, "page"),
            ({"page": "99999999999999999999"}, "page"), ({"limit": "500"}, "limit"),
            ({"from": "' OR 1=1 --"}, "from"), ({"customerId": "x" * 500}, "customerId"),
            ({"customerId": "a\x00b"}, "customerId")]:
        resp = await client.get(url, headers=admin_headers, params=params)
        error = error_of(resp.status, await resp.read(), 422)
        assert error["details"] == {"field": parameter}, params
        assert error["message"].startswith(f"{parameter}: "), error
    # Ids no customer can have are simply not found.
    for method in ("GET", "DELETE"):
        resp = await client.request(
            method, f"/api/salons/{salon}/customers/imported/a%00b"
            + ("/export" if method == "GET" else ""), headers=admin_headers)
        assert error_of(resp.status, await resp.read(), 404)["code"] == "customer_not_found"
    resp = await client.get(url, headers=bearer(tokens, "admin-2", "admin", ["elsewhere"]))
    error_of(resp.status, await resp.read(), 403)
    resp = await client.get(url)
    error_of(resp.status, await resp.read(), 401)
