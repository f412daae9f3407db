"""`onboardd` processes over their lifetime: previews expire after 24 h, a PII key rotation
keeps old data readable and matchable, the JWT secret rules stop start-up with exit 2, and
an actor that keeps crashing ends the process with exit 1."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg

from onboardd.auth import TokenCodec
from tests.campaign_support import wait_for
from tests.conftest import JWT_SECRET, daemon_env
from tests.e2e.daemon import Daemon

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ONBOARDD_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "onboardd", *args], env=full, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


async def ready(daemon: Daemon) -> None:
    await asyncio.to_thread(daemon.wait_ready)


async def stopped(daemon: Daemon) -> int:
    return await asyncio.to_thread(daemon.stop)


async def test_previews_expire_after_24_hours(db_url: str, tmp_path: Path) -> None:
    """The scheduler's first pass at start drops previews older than 24 h (and their files);
    a 23-hour-old preview stays confirmable."""
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        salon = await pool.fetchval("INSERT INTO salons (name) VALUES ('S') RETURNING id")
        ages = {"23h": 23, "25h": 25, "48h": 48}
        ids = {}
        for name, hours in ages.items():
            ids[name] = await pool.fetchval(
                "INSERT INTO customer_import_batches (salon_id, imported_by, status, "
                "file_data, created_at) VALUES ($1, 'a', 'preview', 'Name,Phone', "
                "now() - make_interval(hours => $2)) RETURNING id", salon, hours)
        daemon = Daemon(daemon_env(db_url, tmp_path / "state"), tmp_path)
        try:
            await ready(daemon)

            async def oldest_expired() -> bool:
                status = await pool.fetchval(
                    "SELECT status FROM customer_import_batches WHERE id = $1", ids["48h"])
                return bool(status == "failed")

            await wait_for(oldest_expired)
        finally:
            assert await stopped(daemon) == 0, daemon.log()
        rows = {r["id"]: r for r in await pool.fetch(
            "SELECT id, status, failure_reason, file_data FROM customer_import_batches")}
        for name in ("25h", "48h"):
            row = rows[ids[name]]
            assert (row["status"], row["file_data"]) == ("failed", None), name
            assert "preview expired" in row["failure_reason"]
        kept = rows[ids["23h"]]
        assert (kept["status"], kept["file_data"]) == ("preview", b"Name,Phone")
    finally:
        await pool.close()


def b64(byte: bytes) -> str:
    return base64.b64encode(byte * 32).decode()


async def test_pii_key_rotation_keeps_old_data_readable_and_matchable(
        db_url: str, tmp_path: Path) -> None:
    """Customers imported under key 'old'; the daemon then runs with key 'new' and 'old'
    retired (the hash key pinned): it lists their phones and emails, the mobile check finds
    them, and a re-import of the same file recognises them as duplicates."""
    hash_key = b64(b"h")
    old = {"ONBOARDD_PII_KEY": b64(b"o"), "ONBOARDD_PII_KEY_ID": "old",
           "ONBOARDD_PII_HASH_KEY": hash_key}
    new = {"ONBOARDD_PII_KEY": b64(b"n"), "ONBOARDD_PII_KEY_ID": "new",
           "ONBOARDD_PII_HASH_KEY": hash_key, "ONBOARDD_PII_RETIRED_KEYS": "old:" + b64(b"o")}
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        salon = await pool.fetchval("INSERT INTO salons (name) VALUES ('S') RETURNING id")
        upload = tmp_path / "customers.csv"
        upload.write_text("Name,Phone,Email\nPriya Sharma,9876543210,priya@example.com\n"
                          "Rahul Verma,9876543211,\n")
        done = run_cli("import", str(upload), "--salon", salon, "--yes",
                       env=daemon_env(db_url, tmp_path / "state", **old))
        assert done.returncode == 0, done.stderr
        stored_before = await pool.fetch("SELECT id, phone_enc, phone_hash FROM "
                                         "imported_customers ORDER BY id")
        assert len(stored_before) == 2

        # The same file again under the new key: both rows are duplicates (the hash matches).
        again = run_cli("import", str(upload), "--salon", salon, "--yes",
                        env=daemon_env(db_url, tmp_path / "state", **new))
        assert again.returncode == 0, again.stderr
        dup = await pool.fetchrow(
            "SELECT successful_imports, duplicate_skipped FROM customer_import_batches "
            "ORDER BY created_at DESC LIMIT 1")
        assert (dup["successful_imports"], dup["duplicate_skipped"]) == (0, 2)
        # A new customer under the new key.
        upload.write_text("Name,Phone\nAnita Desai,9876543212\n")
        fresh = run_cli("import", str(upload), "--salon", salon, "--yes",
                        env=daemon_env(db_url, tmp_path / "state", **new))
        assert fresh.returncode == 0, fresh.stderr

        daemon = Daemon(daemon_env(db_url, tmp_path / "state", **new), tmp_path)
        codec = TokenCodec("HS256", JWT_SECRET, JWT_SECRET)
        admin = {"Authorization": "Bearer " + codec.encode("admin-1", "admin", [salon], 600)}
        # The check answers only about the caller's own (verified) number: the phone claim.
        user = {"Authorization": "Bearer " + codec.encode("user-1", "customer", [], 600,
                                                          phone="+919876543210")}
        try:
            await ready(daemon)
            async with aiohttp.ClientSession(daemon.base_url) as http:
                async with http.get(f"/api/salons/{salon}/customers/imported",
                                    headers=admin) as resp:
                    assert resp.status == 200, await resp.text()
                    listed = (await resp.json())["customers"]
                async with http.get("/api/mobile/check-imported-customer",
                                    params={"phone": "+919876543210"}, headers=user) as resp:
                    assert resp.status == 200, await resp.text()
                    check = await resp.json()
        finally:
            assert await stopped(daemon) == 0, daemon.log()
        by_name = {c["customerName"]: c for c in listed}
        assert sorted(by_name) == ["Anita Desai", "Priya Sharma", "Rahul Verma"]
        assert (by_name["Priya Sharma"]["phone"], by_name["Priya Sharma"]["normalizedPhone"],
                by_name["Priya Sharma"]["email"]) == (
            "9876543210", "+919876543210", "priya@example.com")
        assert by_name["Rahul Verma"]["normalizedPhone"] == "+919876543211"
        assert by_name["Anita Desai"]["normalizedPhone"] == "+919876543212"
        assert [m["salonId"] for m in check["matches"]] == [salon], check
        # Old rows were not rewritten; the hash did not rotate.
        assert await pool.fetch("SELECT id, phone_enc, phone_hash FROM imported_customers "
                                "WHERE id = ANY($1::varchar[]) ORDER BY id",
                                [r["id"] for r in stored_before]) == stored_before
    finally:
        await pool.close()


def test_jwt_secret_rules_stop_start_up_with_exit_2(db_url: str, tmp_path: Path) -> None:
    """With an external database the JWT secret is required and at least 32 characters;
    either mistake is one line naming [auth] jwt_secret and exit 2, before serving."""
    env = daemon_env(db_url, tmp_path / "state")
    missing = {k: v for k, v in env.items() if k != "ONBOARDD_AUTH_JWT_SECRET"}
    short = env | {"ONBOARDD_AUTH_JWT_SECRET": "s" * 31}
    for case in (missing, short):
        daemon = Daemon(case, tmp_path)
        try:
            code = daemon.proc.wait(60)
        finally:
            if daemon.proc.poll() is None:
                daemon.kill()
        log = daemon.log()
        assert code == 2, log
        assert "jwt_secret" in log and "Traceback" not in log, log
        assert '"event": "serving"' not in log
    assert "at least 32 characters" in log
    # 32 characters are enough.
    daemon = Daemon(env | {"ONBOARDD_AUTH_JWT_SECRET": "s" * 32}, tmp_path)
    try:
        daemon.wait_ready()
    finally:
        assert daemon.stop() == 0, daemon.log()


async def test_an_actor_crashing_in_a_loop_ends_the_process_with_exit_1(
        db_url: str, tmp_path: Path) -> None:
    """The registration outbox table disappears under a running daemon: the offer matcher
    crashes on every pass, is restarted, and after restart_max restarts within the window
    the daemon stops gracefully and exits 1 (so systemd restarts it)."""
    env = daemon_env(db_url, tmp_path / "state", ONBOARDD_SUPERVISOR_RESTART_MAX="2",
                     ONBOARDD_SUPERVISOR_RESTART_WINDOW_S="60",
                     ONBOARDD_SUPERVISOR_BACKOFF_INITIAL_S="0.05",
                     ONBOARDD_SUPERVISOR_BACKOFF_MAX_S="0.1",
                     ONBOARDD_OFFERS_MATCH_POLL_S="0.1")
    daemon = Daemon(env, tmp_path)
    try:
        await ready(daemon)
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute("ALTER TABLE registration_events RENAME TO registration_gone")
        finally:
            await conn.close()
        code = await asyncio.to_thread(daemon.proc.wait, 60)
    finally:
        if daemon.proc.poll() is None:
            daemon.kill()
    log = daemon.log()
    assert code == 1, log
    assert '"exiting_after_crash_loop"' in log
    assert '"event": "stopped"' in log and '"exit_code": 1' in log
