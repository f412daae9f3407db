"""`onboardd pii rotate` as an operator runs it (`python -m onboardd`, a subprocess) on the test
PostgreSQL: killed with SIGKILL after some batches, then run again, every ciphertext ends
under the new key and decrypts without the retired one; refused before writing anything when
a key is missing or the matching-hash key changed."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from onboardd.pii import PiiCipher, _derived_hash_key
from onboardd.services.imports import ROW_PURPOSE
from tests.conftest import PII_KEY, daemon_env

CUSTOMERS = 12_000
ERROR_ROWS = 1_500
LOG_ENTRIES = 100
BATCH = 100
NEW_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
OLD_HASH_KEY = base64.b64encode(_derived_hash_key(base64.b64decode(PII_KEY))).decode()


def _env(db_url: str, state: Path, **pii: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(daemon_env(db_url, state, ONBOARDD_LOG_LEVEL="warning"))
    env.update(pii)
    return env


def _rotating_env(db_url: str, state: Path) -> dict[str, str]:
    """The new key current, the old one retired, the matching-hash key pinned."""
    return _env(db_url, state, ONBOARDD_PII_KEY=NEW_KEY, ONBOARDD_PII_KEY_ID="k2",
                ONBOARDD_PII_RETIRED_KEYS=f"k1:{PII_KEY}", ONBOARDD_PII_HASH_KEY=OLD_HASH_KEY)


def _cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "onboardd", "pii", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def _seed(conn: asyncpg.Connection, cipher: PiiCipher) -> dict[str, Any]:
    """Customers, import error rows and an error_log, all under key k1; the plaintexts."""
    salon = await conn.fetchval("INSERT INTO salons (name) VALUES ('Rotate') RETURNING id")
    phones = [f"+9198{i:08d}" for i in range(CUSTOMERS)]
    emails = [f"c{i}@example.com" if i % 2 else None for i in range(CUSTOMERS)]
    await conn.execute(
        "INSERT INTO imported_customers (salon_id, customer_name, phone_enc, "
        "normalized_phone_enc, email_enc, phone_hash) "
        "SELECT $1, 'C', p, n, e, h FROM unnest($2::text[], $3::text[], $4::text[], "
        "$5::bytea[]) AS u (p, n, e, h)", salon,
        [cipher.encrypt(p[3:], "phone") for p in phones],
        [cipher.encrypt(p, "phone") for p in phones],
        [None if e is None else cipher.encrypt(e, "email") for e in emails],
        [cipher.phone_hash(p) for p in phones])
    cells = [msgspec.json.encode({"Name": f"R{i}", "Phone": f"99{i:08d}"}).decode()
             for i in range(ERROR_ROWS)]
    log = [{"rowNumber": i + 2, "errors": ["Name is required"],
            "data": cipher.encrypt(cells[i], ROW_PURPOSE)} for i in range(LOG_ENTRIES)]
    batch = await conn.fetchval(
        "INSERT INTO customer_import_batches (salon_id, imported_by, status, error_log) "
        "VALUES ($1, 'a', 'completed', $2::jsonb) RETURNING id", salon,
        msgspec.json.encode(log).decode())
    await conn.execute(
        "INSERT INTO import_errors (batch_id, row_number, original_enc, errors) "
        "SELECT $1, n, o, '[\"Name is required\"]' FROM unnest($2::int[], $3::text[]) "
        "AS u (n, o)", batch, list(range(2, ERROR_ROWS + 2)),
        [cipher.encrypt(c, ROW_PURPOSE) for c in cells])
    return {"phones": phones, "emails": emails, "cells": cells}


async def _under_new_key(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM imported_customers WHERE normalized_phone_enc LIKE 'k2$%'")
    return count


async def test_rotation_killed_midway_finishes_on_rerun(db_url: str, tmp_path: Path) -> None:
    old = PiiCipher("k1", base64.b64decode(PII_KEY),
                    _derived_hash_key(base64.b64decode(PII_KEY)))
    conn = await asyncpg.connect(db_url)
    try:
        plain = await _seed(conn, old)
        env = _rotating_env(db_url, tmp_path / "state")

        # Killed (SIGKILL: no clean-up of any kind) once some batches have committed.
        first = _cli(env, "rotate", "--batch-size", str(BATCH))
        deadline = time.monotonic() + 60
        while await _under_new_key(conn) < 10 * BATCH:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the rotation never got going"
            await asyncio.sleep(0.005)
        first.send_signal(signal.SIGKILL)
        _out, err = first.communicate(timeout=30)
        assert first.returncode == -signal.SIGKILL
        assert "re-encrypted 0/" in err  # its progress, a line per tenth off a terminal
        midway = await _under_new_key(conn)
        assert 10 * BATCH <= midway < CUSTOMERS, midway
        # Nothing half-written: each row is wholly under one key or the other.
        assert await conn.fetchval(
            "SELECT count(*) FROM imported_customers WHERE split_part(phone_enc, '$', 1) <> "
            "split_part(normalized_phone_enc, '$', 1)") == 0

        status = subprocess.run([sys.executable, "-m", "onboardd", "pii", "status"], env=env,
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 1 and "run `onboardd pii rotate`" in status.stdout

        second = subprocess.run([sys.executable, "-m", "onboardd", "pii", "rotate",
                                 "--batch-size", "500"], env=env, capture_output=True,
                                text=True, timeout=300)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "every ciphertext is under the current key 'k2'" in second.stdout
        assert "(k1)" in second.stdout  # the retired key it says may go
        rotated = int(second.stdout.split()[1])
        # What the first run left: the rest of the customers (two or three ciphertexts each),
        # every error row and the error_log (customers come first).
        left = CUSTOMERS - midway
        assert 2 * left + ERROR_ROWS + LOG_ENTRIES <= rotated <= (
            3 * left + ERROR_ROWS + LOG_ENTRIES)

        # Every ciphertext decrypts under the new key alone, to what was stored.
        new = PiiCipher("k2", base64.b64decode(NEW_KEY), base64.b64decode(OLD_HASH_KEY))
        rows = await conn.fetch("SELECT phone_enc, normalized_phone_enc, email_enc, phone_hash "
                                "FROM imported_customers")
        assert sorted(new.decrypt(r["normalized_phone_enc"], "phone") for r in rows) == sorted(
            plain["phones"])
        assert sorted(new.decrypt(r["phone_enc"], "phone") for r in rows) == sorted(
            p[3:] for p in plain["phones"])
        assert sorted(new.decrypt(r["email_enc"], "email") for r in rows
                      if r["email_enc"] is not None) == sorted(
            e for e in plain["emails"] if e is not None)
        assert all(new.phone_hash(new.decrypt(r["normalized_phone_enc"], "phone"))
                   == bytes(r["phone_hash"]) for r in rows)
        errors = await conn.fetch("SELECT original_enc FROM import_errors ORDER BY row_number")
        assert [new.decrypt(r["original_enc"], ROW_PURPOSE) for r in errors] == plain["cells"]
        log = msgspec.json.decode(await conn.fetchval(
            "SELECT error_log::text FROM customer_import_batches"))
        assert [new.decrypt(e["data"], ROW_PURPOSE) for e in log] == plain["cells"][
            :LOG_ENTRIES]
        assert [e["rowNumber"] for e in log] == list(range(2, LOG_ENTRIES + 2))

        # The retired key removed from the configuration: status says all is under k2.
        without = _env(db_url, tmp_path / "state", ONBOARDD_PII_KEY=NEW_KEY,
                       ONBOARDD_PII_KEY_ID="k2", ONBOARDD_PII_HASH_KEY=OLD_HASH_KEY)
        status = subprocess.run([sys.executable, "-m", "onboardd", "pii", "status"],
                                env=without, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "k1" not in status.stdout.split("every ciphertext")[0]
    finally:
        await conn.close()


async def test_rotation_refuses_before_writing_when_keys_are_missing(
        db_url: str, tmp_path: Path) -> None:
    old = PiiCipher("k1", base64.b64decode(PII_KEY),
                    _derived_hash_key(base64.b64decode(PII_KEY)))
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("INSERT INTO salons (id, name) VALUES ('s', 'S')")
        await conn.execute(
            "INSERT INTO imported_customers (salon_id, customer_name, phone_enc, "
            "normalized_phone_enc, phone_hash) VALUES ('s', 'C', $1, $2, $3)",
            old.encrypt("9876543210", "phone"), old.encrypt("+919876543210", "phone"),
            old.phone_hash("+919876543210"))
        before = await conn.fetchrow("SELECT phone_enc, normalized_phone_enc "
                                     "FROM imported_customers")
        state = tmp_path / "state"
        # The old key not listed as retired: its ciphertext cannot be read.
        run = subprocess.run(
            [sys.executable, "-m", "onboardd", "pii", "rotate"], capture_output=True, text=True,
            timeout=60, env=_env(db_url, state, ONBOARDD_PII_KEY=NEW_KEY,
                                 ONBOARDD_PII_KEY_ID="k2", ONBOARDD_PII_HASH_KEY=OLD_HASH_KEY))
        assert run.returncode == 2 and "'k1'" in run.stderr and "retired_keys" in run.stderr
        # The hash key left to derive from the new key: stored hashes would no longer match.
        run = subprocess.run(
            [sys.executable, "-m", "onboardd", "pii", "rotate"], capture_output=True, text=True,
            timeout=60, env=_env(db_url, state, ONBOARDD_PII_KEY=NEW_KEY,
                                 ONBOARDD_PII_KEY_ID="k2",
                                 ONBOARDD_PII_RETIRED_KEYS=f"k1:{PII_KEY}"))
        assert run.returncode == 2 and "hash_key" in run.stderr, run.stderr
        assert dict(await conn.fetchrow("SELECT phone_enc, normalized_phone_enc "
                                        "FROM imported_customers")) == dict(before)
    finally:
        await conn.close()
