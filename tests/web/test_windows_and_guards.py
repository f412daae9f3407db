"""Windows and guards over real HTTP that other tests left loose: the mobile check's per-minute
window, the import uploads' rolling hour, the CSV-injection guard of errors.csv, a GDPR erase
lowering every counter, the webhook 503's Retry-After, and the campaign audience filters."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestClient
from twilio.request_validator import RequestValidator

from onboardd.auth import TokenCodec
from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from tests.campaign_support import add_customers, add_offer, phone
from tests.conftest import AppFor, bearer, daemon_env, decode

Client = TestClient[Any, Any]
CHECK = "/api/mobile/check-imported-customer"
ROOT = Path(__file__).resolve().parents[2]


# --- the mobile check's window is a minute ---------------------------------------------------


async def test_check_rate_window_is_a_minute(app_for: AppFor, tokens: TokenCodec) -> None:
    """Two checks a minute allowed: the third is refused for most of the minute, not for a
    second (the window is 60 s)."""
    async with app_for(ratelimit_check_per_min="2") as (client, _svc):
        headers = bearer(tokens, "user-" + uuid.uuid4().hex, "customer")
        for _ in range(2):
            resp = await client.get(CHECK, params={"phone": "9876543210"}, headers=headers)
            assert resp.status == 200, await resp.text()
        limited = await client.get(CHECK, params={"phone": "9876543210"}, headers=headers)
        assert limited.status == 429
        retry = int(limited.headers["Retry-After"])
        body = decode(await limited.read())["error"]
        assert body["details"]["retryAfterSeconds"] == retry
        # Refused until the first check is a minute old: far more than a second away.
        assert 30 < retry <= 60


# --- the import uploads' rolling hour -------------------------------------------------------


def upload_form(text: str) -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field("file", text.encode(), filename="customers.csv",
                   content_type="application/octet-stream")
    return body


async def test_upload_attempts_count_for_an_hour(app_for: AppFor, salon: str,
                                                 admin_headers: dict[str, str]) -> None:
    """Uploads 30 minutes old still count against [import] uploads_per_hour; 61 minutes old
    they do not."""
    async with app_for(import_uploads_per_hour="2") as (client, svc):
        await svc.pool.execute(
            "INSERT INTO import_uploads (salon_id, uploaded_at) "
            "SELECT $1, now() - interval '30 minutes' FROM generate_series(1, 2)", salon)
        url = f"/api/salons/{salon}/customers/import"
        resp = await client.post(url, data=upload_form("Name,Phone\nA,9876543210\n"),
                                 headers=admin_headers)
        assert resp.status == 429, await resp.text()
        error = decode(await resp.read())["error"]
        assert error["code"] == "rate_limited"
        assert error["details"]["limitKey"] == "[import] uploads_per_hour"
        # The oldest upload leaves the hour 30 minutes from now.
        assert 1700 < int(resp.headers["Retry-After"]) <= 1800
        await svc.pool.execute(
            "UPDATE import_uploads SET uploaded_at = now() - interval '61 minutes'")
        resp = await client.post(url, data=upload_form("Name,Phone\nA,9876543210\n"),
                                 headers=admin_headers)
        assert resp.status == 201, await resp.text()


# --- errors.csv neutralises formulas, tabs and carriage returns ------------------------------


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ONBOARDD_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "onboardd", *args], env=full, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


async def test_errors_csv_neutralises_leading_tab_and_cr(
        client: Client, services: Services, salon: str, admin_headers: dict[str, str],
        db_url: str, tmp_path: Path, cipher: PiiCipher) -> None:
    """Rejected rows whose cells start with a tab, a carriage return or '=' come back in
    errors.csv with a leading apostrophe, so a spreadsheet does not run them. Today's readers
    strip the blanks around a cell, so the tab and CR cells are written into the stored rows
    (as an older reader or another file kind may have kept them): the report must neutralise
    whatever is stored."""
    upload = tmp_path / "customers.csv"
    upload.write_text("Name,Phone,Notes\nBad One,12,x\nBad Two,34,y\nPriya Sharma,9876543210,ok\n")
    done = run_cli("import", str(upload), "--salon", salon, "--yes",
                   env=daemon_env(db_url, tmp_path / "state"))
    assert done.returncode == 0, done.stderr
    stored = {2: {"Name": "\t=HYPERLINK('x')", "Phone": "12", "Notes": "\r=1+1"},
              3: {"Name": "=cmd|calc", "Phone": "34", "Notes": "\t@SUM(A1)"}}
    for row_number, cells in stored.items():
        sealed = cipher.encrypt(msgspec.json.encode(cells).decode(), "import_row")
        updated = await services.pool.execute(
            "UPDATE import_errors SET original_enc = $1 WHERE row_number = $2", sealed,
            row_number)
        assert updated == "UPDATE 1"
    batch = await services.pool.fetchval(
        "SELECT id FROM customer_import_batches WHERE salon_id = $1", salon)
    resp = await client.get(f"/api/salons/{salon}/customers/import/{batch}/errors.csv",
                            headers=admin_headers)
    assert resp.status == 200, await resp.text()
    text = (await resp.read()).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0][:4] == ["Row", "Name", "Phone", "Notes"]
    by_row = {r[0]: r for r in rows[1:]}
    assert sorted(by_row) == ["2", "3"]
    assert by_row["2"][1:4] == ["'\t=HYPERLINK('x')", "12", "'\r=1+1"]
    assert by_row["3"][1:4] == ["'=cmd|calc", "34", "'\t@SUM(A1)"]
    # No cell of the report starts with a character a spreadsheet would act on.
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row


# --- a GDPR erase lowers every counter -----------------------------------------------------


async def test_erase_lowers_read_failed_and_skipped_counters(
        client: Client, services: Services, salon: str, admin_headers: dict[str, str],
        cipher: PiiCipher) -> None:
    """The erased customer had a read message, a failed one and a skipped one in three
    campaigns; after the erase each campaign's counters equal a recount of what is left."""
    pool = services.pool
    gone, stays = await add_customers(pool, cipher, salon, [phone(1), phone(2)])
    campaigns = [await pool.fetchval(
        "INSERT INTO invitation_campaigns (salon_id, name, message_template, status, "
        "created_by) VALUES ($1, $2, 't', 'completed', 'a') RETURNING id", salon, f"c{i}")
        for i in range(3)]
    seeded = [(campaigns[0], gone, "read", None), (campaigns[0], stays, "read", None),
              (campaigns[1], gone, "failed", 30003), (campaigns[1], stays, "delivered", None),
              (campaigns[2], gone, "skipped", None), (campaigns[2], stays, "skipped", None)]
    await pool.executemany(
        "INSERT INTO invitation_messages (campaign_id, imported_customer_id, salon_id, channel,"
        " status, twilio_message_sid, error_code, skip_reason) VALUES ($1, $2, $5, 'sms', $3::text,"
        " CASE WHEN $3::text = 'skipped' THEN NULL ELSE 'SM' || md5(random()::text) END, $4,"
        " CASE WHEN $3::text = 'skipped' THEN 'opted_out' END)",
        [(*row, salon) for row in seeded])
    recount = """
        SELECT c.id,
               coalesce(sum(onboardd_counts_sent(m.status, m.twilio_message_sid)), 0)::int AS s,
               coalesce(sum(onboardd_counts_delivered(m.status)), 0)::int AS d,
               coalesce(sum(onboardd_counts_read(m.status)), 0)::int AS r,
               coalesce(sum(onboardd_counts_failed(m.status)), 0)::int AS f,
               coalesce(sum(onboardd_counts_skipped(m.status)), 0)::int AS k
        FROM invitation_campaigns c LEFT JOIN invitation_messages m ON m.campaign_id = c.id
        WHERE c.salon_id = $1 GROUP BY c.id"""
    await pool.execute(
        f"UPDATE invitation_campaigns c SET messages_sent = x.s, messages_delivered = x.d, "
        f"messages_read = x.r, messages_failed = x.f, messages_skipped = x.k "
        f"FROM ({recount}) x WHERE x.id = c.id", salon)
    stored = ("SELECT id, messages_sent AS s, messages_delivered AS d, messages_read AS r, "
              "messages_failed AS f, messages_skipped AS k FROM invitation_campaigns "
              "WHERE salon_id = $1")
    before = {r["id"]: dict(r) for r in await pool.fetch(stored, salon)}
    assert [(before[c]["r"], before[c]["f"], before[c]["k"]) for c in campaigns] == [
        (2, 0, 0), (0, 1, 0), (0, 0, 2)]

    resp = await client.delete(f"/api/salons/{salon}/customers/imported/{gone}",
                               headers=admin_headers)
    assert resp.status == 204, await resp.text()

    after = {r["id"]: dict(r) for r in await pool.fetch(stored, salon)}
    assert [(after[c]["r"], after[c]["f"], after[c]["k"]) for c in campaigns] == [
        (1, 0, 0), (0, 0, 0), (0, 0, 1)]
    assert after == {r["id"]: dict(r) for r in await pool.fetch(recount, salon)}


# --- the webhook's 503 tells Twilio when to retry -------------------------------------------


async def test_status_callback_503_carries_retry_after(
        app_for: AppFor, monkeypatch: pytest.MonkeyPatch) -> None:
    """No status recorder runs: the callback cannot be made durable, so 503 + Retry-After."""
    token = "sim-token-" + "s" * 30
    async with app_for(simulator_auth_token=token) as (client, svc):
        svc.public_base_url = "http://testserver"
        path = "/api/webhooks/twilio/status"
        # Wait a moment, not the production 10 s, for the recorder (the module holding the
        # handler is found through the app's router, wherever it lives).
        route = next(r for r in client.app.router.routes()
                     if r.resource is not None and r.resource.canonical == path)
        monkeypatch.setattr(sys.modules[route.handler.__module__], "DURABLE_WAIT_S", 0.05)
        sid = "SM" + uuid.uuid4().hex
        params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": "sent",
                  "SmsStatus": "sent", "AccountSid": svc.cfg.simulator.account_sid,
                  "From": "+15005550006", "To": "+919876543210"}
        signature = RequestValidator(token).compute_signature(svc.public_base_url + path,
                                                              params)
        resp = await client.post(path, data=params, headers={"X-Twilio-Signature": signature})
        assert resp.status == 503, await resp.text()
        assert resp.headers["Retry-After"] == "5"


# --- audience filters: only the chosen customers get a message ------------------------------


async def test_audience_import_batches_and_imported_after(
        client: Client, services: Services, salon: str, admin_headers: dict[str, str],
        cipher: PiiCipher) -> None:
    pool = services.pool
    batches = [await pool.fetchval(
        "INSERT INTO customer_import_batches (salon_id, imported_by, status) "
        "VALUES ($1, 'admin-1', 'completed') RETURNING id", salon) for _ in range(2)]
    first = await add_customers(pool, cipher, salon, [phone(i) for i in range(3)],
                                batch_id=batches[0])
    second = await add_customers(pool, cipher, salon, [phone(i) for i in range(3, 6)],
                                 batch_id=batches[1])
    # Two of the second batch's customers were imported long ago.
    await pool.execute("UPDATE imported_customers SET created_at = now() - interval '10 days' "
                       "WHERE id = ANY($1::varchar[])", second[:2])
    offer = await add_offer(pool, salon)
    base = f"/api/salons/{salon}/invitation-campaigns"

    async def send(audience: dict[str, Any]) -> set[str]:
        resp = await client.post(base, headers=admin_headers, json={
            "name": "Filtered", "channel": "sms", "welcomeOfferId": offer,
            "audience": audience})
        assert resp.status == 201, await resp.text()
        campaign = decode(await resp.read())["id"]
        preview = decode(await (await client.get(f"{base}/{campaign}/audience",
                                                 headers=admin_headers)).read())
        resp = await client.post(f"{base}/{campaign}/send", headers=admin_headers)
        assert resp.status == 202, await resp.text()
        assert decode(await resp.read())["targetCustomerCount"] == preview["count"]
        targeted = {r["imported_customer_id"] for r in await pool.fetch(
            "SELECT imported_customer_id FROM invitation_messages WHERE campaign_id = $1",
            campaign)}
        assert {c["id"] for c in preview["sample"]} <= targeted
        # One campaign sends at a time: finish this one for the next.
        await pool.execute("UPDATE invitation_campaigns SET status = 'completed' WHERE id = $1",
                           campaign)
        return targeted

    assert await send({"importBatchIds": [batches[0]]}) == set(first)
    assert await send({"importBatchIds": [batches[1]]}) == set(second)
    after = "2000-01-01T00:00:00Z"
    recent = (await pool.fetchval("SELECT now() - interval '1 day'")).isoformat()
    assert await send({"importedAfter": after}) == set(first) | set(second)
    assert await send({"importedAfter": recent}) == set(first) | {second[2]}
    assert await send({"importBatchIds": [batches[1]],
                       "importedAfter": recent}) == {second[2]}
