"""`onboardd demo` against a real daemon subprocess: the history it leaves in the database."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg

from onboardd.auth import TokenCodec
from tests.conftest import JWT_SECRET, daemon_env
from tests.e2e.daemon import Daemon, free_port

ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS = 150
DAYS = 30


async def _demo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m onboardd demo ARGS` with the daemon's environment."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("ONBOARDD_")}
    full.update(env)
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "onboardd", "demo", *args], env=full, cwd=ROOT,
        capture_output=True, text=True, timeout=120, check=False)


async def _check_history(conn: asyncpg.Connection, salon: str) -> None:
    now = await conn.fetchval("SELECT now()")
    batch = await conn.fetchrow("SELECT * FROM customer_import_batches WHERE salon_id = $1",
                                salon)
    assert batch["status"] == "completed" and batch["total_records"] == CUSTOMERS
    assert batch["failed_imports"] > 0 and batch["duplicate_skipped"] > 0
    assert batch["successful_imports"] > CUSTOMERS * 0.85
    assert await conn.fetchval("SELECT count(*) FROM import_errors WHERE batch_id = $1",
                               batch["id"]) == batch["failed_imports"] + batch["duplicate_skipped"]
    assert await conn.fetchval("SELECT count(*) FROM welcome_offers WHERE salon_id = $1",
                               salon) == 1
    campaigns = await conn.fetch("SELECT * FROM invitation_campaigns WHERE salon_id = $1 "
                                 "ORDER BY started_at", salon)
    assert len(campaigns) >= 2 and all(c["status"] == "completed" for c in campaigns)
    assert await conn.fetchval("SELECT count(*) FROM invitation_messages WHERE salon_id = $1 "
                               "AND fallback_from = 'whatsapp' AND channel = 'sms' "
                               "AND status IN ('delivered', 'read')", salon) > 0
    assert await conn.fetchval("SELECT count(*) FROM invitation_messages WHERE salon_id = $1 "
                               "AND error_code = 21211", salon) > 0
    assert await conn.fetchval("SELECT count(*) FROM invitation_messages WHERE salon_id = $1 "
                               "AND status = 'undelivered' AND error_code = 30003", salon) > 0
    invited, registered = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE invited_at IS NOT NULL), "
        "count(*) FILTER (WHERE linked_user_id IS NOT NULL) "
        "FROM imported_customers WHERE salon_id = $1", salon)
    assert 0.25 <= registered / invited <= 0.35, (registered, invited)
    redeemed = await conn.fetchval(
        "SELECT count(*) FROM welcome_offer_redemptions r JOIN welcome_offers o "
        "ON o.id = r.welcome_offer_id WHERE o.salon_id = $1 AND r.status = 'redeemed'", salon)
    assert abs(redeemed - registered / 2) <= 1, (redeemed, registered)

    # Spread back over the days asked for, nothing in the future.
    first = await conn.fetchval("SELECT min(created_at) FROM imported_customers "
                                "WHERE salon_id = $1", salon)
    assert now - timedelta(days=DAYS, hours=1) <= first <= now - timedelta(days=DAYS - 1)
    span = await conn.fetchval("SELECT max(registered_at) - min(registered_at) "
                               "FROM imported_customers WHERE salon_id = $1", salon)
    assert span > timedelta(days=DAYS / 4)
    assert campaigns[0]["started_at"] < now - timedelta(days=DAYS * 0.9)
    assert campaigns[1]["started_at"] < now - timedelta(days=DAYS * 0.4)
    assert await conn.fetchval(_FUTURE, salon, now) == 0
    # In order: import < offer < campaigns; sent < delivered < read; invited < delivered <
    # registered < booked < redeemed < expiry.
    assert await conn.fetchval(_DISORDER, salon) == 0


async def _check_dashboard(base_url: str, token: str, salon: str,
                           conn: asyncpg.Connection) -> None:
    """The demo's month of history, as the dashboard reads it: consistent with itself."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (aiohttp.ClientSession(headers=headers) as http,
                http.get(f"{base_url}/api/salons/{salon}/analytics") as resp):
        assert resp.status == 200, await resp.text()
        report = await resp.json()
    kpis, points = report["kpis"], report["series"]["points"]
    counts = [s["count"] for s in report["funnel"]]
    assert counts[0] == kpis["totalImported"] == await conn.fetchval(
        "SELECT count(*) FROM imported_customers WHERE salon_id = $1", salon)
    assert all(a >= b for a, b in itertools.pairwise(counts)) and counts[-1] > 0, counts
    for point_key, kpi in (("invited", "totalInvitesSent"), ("delivered", "invitesDelivered"),
                           ("registered", "registeredFromImport"),
                           ("redeemed", "offersRedeemed"),
                           ("discountGivenInPaisa", "totalDiscountGiven")):
        assert sum(p[point_key] for p in points) == kpis[kpi] > 0, point_key
    assert sum(1 for p in points if p["registered"]) > 3  # spread over the month
    started = [c["startedAt"] for c in report["campaigns"]]
    assert len(started) >= 2 and started == sorted(started, reverse=True)


_FUTURE = """
SELECT (SELECT count(*) FROM imported_customers WHERE salon_id = $1
        AND greatest(created_at, invited_at, last_invited_at, registered_at) > $2)
     + (SELECT count(*) FROM invitation_messages WHERE salon_id = $1
        AND greatest(created_at, queued_at, sent_at, delivered_at, read_at, updated_at) > $2)
     + (SELECT count(*) FROM invitation_campaigns WHERE salon_id = $1
        AND greatest(created_at, started_at, completed_at) > $2)
     + (SELECT count(*) FROM bookings WHERE salon_id = $1 AND created_at > $2)
"""

_DISORDER = """
WITH c AS (SELECT * FROM imported_customers WHERE salon_id = $1),
m AS (SELECT * FROM invitation_messages WHERE salon_id = $1),
b AS (SELECT bk.*, r.redeemed_at, r.expires_at, c.registered_at
      FROM bookings bk
      JOIN welcome_offer_redemptions r ON r.booking_id = bk.id
      JOIN c ON c.id = r.imported_customer_id
      WHERE bk.salon_id = $1)
SELECT
  (SELECT count(*) FROM customer_import_batches x JOIN welcome_offers o ON o.salon_id = x.salon_id
   WHERE x.salon_id = $1 AND NOT (x.created_at < x.completed_at AND x.completed_at < o.created_at))
+ (SELECT count(*) FROM invitation_campaigns k JOIN welcome_offers o ON o.id = k.welcome_offer_id
   WHERE k.salon_id = $1 AND NOT (o.created_at < k.created_at
                                  AND k.started_at < k.completed_at))
+ (SELECT count(*) FROM m WHERE sent_at > delivered_at OR delivered_at > read_at
                             OR queued_at > sent_at)
+ (SELECT count(*) FROM c WHERE invited_at < created_at OR registered_at <= invited_at
                             OR registered_at <= (SELECT min(delivered_at) FROM m
                                                  WHERE m.imported_customer_id = c.id))
+ (SELECT count(*) FROM c JOIN users u ON u.id = c.linked_user_id
   WHERE u.created_at <> c.registered_at)
+ (SELECT count(*) FROM b WHERE NOT (registered_at < created_at AND created_at < redeemed_at
                                     AND redeemed_at < expires_at))
"""


async def test_demo_fills_a_salon_through_a_running_daemon(db_url: str, tmp_path: Path) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        salon = await conn.fetchval("INSERT INTO salons (name, app_download_link) VALUES "
                                    "('Glamour Studio', 'https://app.example.com/g') RETURNING id")
        env = daemon_env(db_url, tmp_path / "state")
        daemon = Daemon(env, tmp_path)
        try:
            daemon.wait_ready()
            token = TokenCodec("HS256", JWT_SECRET, JWT_SECRET).encode(
                "admin-1", "admin", [salon], 3600)
            args = ("--url", daemon.base_url, "--token", token, "--salon", salon,
                    "--customers", str(CUSTOMERS), "--days", str(DAYS))
            started = datetime.now(UTC)
            done = await _demo(env, *args)
            seconds = (datetime.now(UTC) - started).total_seconds()
            assert done.returncode == 0, done.stdout + done.stderr + daemon.log()[-3000:]
            print(done.stdout, f"({seconds:.1f} s)")
            assert "Traceback" not in done.stderr
            assert "Glamour Studio" in done.stdout and "registered" in done.stdout
            await _check_history(conn, salon)
            await _check_dashboard(daemon.base_url, token, salon, conn)

            again = await _demo(env, *args)
            assert again.returncode == 2
            assert again.stderr.count("\n") == 1 and "--force" in again.stderr
            assert "already has" in again.stderr

            other = TokenCodec("HS256", JWT_SECRET, JWT_SECRET).encode(
                "admin-1", "admin", ["another-salon"], 3600)
            refused = await _demo(env, "--url", daemon.base_url, "--token", other,
                                  "--salon", salon)
            assert refused.returncode == 2 and refused.stderr.count("\n") == 1
            assert "onboardd token" in refused.stderr
            assert daemon.stop() == 0
        finally:
            if daemon.proc.poll() is None:
                daemon.kill()
            assert "Traceback" not in daemon.log()
    finally:
        await conn.close()


async def test_no_daemon_is_one_line_and_exit_3(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = daemon_env("postgresql://nobody@127.0.0.1:1/none", tmp_path / "state")
    done = await _demo(env, "--url", url)
    assert done.returncode == 3
    assert done.stderr == (f"onboardd demo: no daemon answers at {url} (start it with onboardd "
                           "serve, or pass --url)\n")
    assert done.stdout == ""


async def test_refused_unless_the_daemon_is_on_the_simulator(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    base = daemon_env("postgresql://nobody@127.0.0.1:1/none", tmp_path / "state")
    real = {**base, "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_AUTH_TOKEN": "secret"}
    implicit = {k: v for k, v in base.items() if k != "ONBOARDD_SIMULATOR_ENABLED"}
    for env, words in ((real, "Twilio credentials are configured"),
                       (implicit, "ONBOARDD_SIMULATOR_ENABLED=true")):
        done = await _demo(env, "--url", url)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and words in done.stderr
