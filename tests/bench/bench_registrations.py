"""Registration matching benchmark: latency at a steady rate, then a burst.

Usage: .venv/bin/python tests/bench/bench_registrations.py [--users N] [--rate R] [--burst B]

Inserts N users the way the host app does (one INSERT per registration, R per second), half of
them imported customers of one or two salons, with the offer-matcher actor running in-process,
and measures from the INSERT's commit to the redemption row being visible (p50/p99). Then
inserts B users in one transaction and measures how long matching all of them takes
(events_per_s). Prints figures, then one JSON line. Uses ONBOARDD_TEST_DATABASE_URL's server
if set, else an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

# Run as a script from anywhere: the repository root must be importable (tests.bench.support).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from onboardd.actors import offer_matcher
from onboardd.auth import TokenCodec
from onboardd.config import load
from onboardd.db.pool import create_pool
from onboardd.logging import configure
from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from tests.bench.support import bench_database

SALONS = 3


def phone(i: int) -> str:
    """User i's number in the national format an app might send."""
    digits = f"9{i:09d}"
    return f"{digits[:5]} {digits[5:]}"


async def seed(pool: asyncpg.Pool, cipher: PiiCipher, imported: list[int]) -> None:
    """Salons with an active offer each; imported customers (every third one in two salons)."""
    salons = [await pool.fetchval("INSERT INTO salons (name) VALUES ($1) RETURNING id",
                                  f"Salon {s}") for s in range(SALONS)]
    for salon in salons:
        await pool.execute(
            "INSERT INTO welcome_offers (salon_id, name, discount_type, discount_value) "
            "VALUES ($1, 'Welcome', 'percentage', 15)", salon)
    rows = []
    for i in imported:
        e164 = f"+919{i:09d}"
        enc, digest = cipher.encrypt(e164, "phone"), cipher.phone_hash(e164)
        for salon in {salons[i % SALONS], salons[(i + 1) % SALONS] if i % 3 == 0 else None}:
            if salon is not None:
                rows.append((salon, "Customer", enc, enc, digest, "invited"))
    await pool.copy_records_to_table(
        "imported_customers", records=rows,
        columns=["salon_id", "customer_name", "phone_enc", "normalized_phone_enc", "phone_hash",
                 "status"])


async def steady(pool: asyncpg.Pool, first: int, count: int, rate: float) -> list[float]:
    """Register count users at rate/s; latency (ms) to each imported user's redemption row."""
    committed: dict[str, float] = {}
    seen: dict[str, float] = {}
    inserting = True

    async def watch() -> None:
        async with pool.acquire() as conn:
            while inserting or len(seen) < len(committed):
                waiting = [u for u in committed if u not in seen]
                if waiting:
                    rows = await conn.fetch(
                        "SELECT DISTINCT user_id FROM welcome_offer_redemptions "
                        "WHERE user_id = ANY($1::varchar[])", waiting)
                    now = time.perf_counter()
                    for row in rows:
                        seen[row["user_id"]] = now
                await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch())
    start = time.perf_counter()
    for n in range(count):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        i = first + n
        user = await pool.fetchval("INSERT INTO users (phone) VALUES ($1) RETURNING id",
                                   phone(i))
        if i % 2 == 0:  # imported customers are the even ones
            committed[user] = time.perf_counter()
    inserting = False
    await asyncio.wait_for(watcher, 60)
    return [(seen[u] - t) * 1000 for u, t in committed.items()]


async def burst(pool: asyncpg.Pool, first: int, count: int) -> float:
    """Register count users in one transaction; seconds until every event is processed."""
    await pool.execute("INSERT INTO users (phone) SELECT '9' || lpad(g::text, 9, '0') "
                       "FROM generate_series($1::int, $2::int) g", first, first + count - 1)
    start = time.perf_counter()
    while await pool.fetchval(
            "SELECT count(*) FROM registration_events WHERE processed_at IS NULL"):
        await asyncio.sleep(0.01)
    return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def main(args: argparse.Namespace) -> dict[str, float]:
    configure("warning", "json")
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    secret = secrets.token_urlsafe(40)
    cipher = PiiCipher("k1", base64.b64decode(key), secrets.token_bytes(32))
    async with bench_database() as url:
        cfg = load(None, {"ONBOARDD_DATABASE_URL": url, "ONBOARDD_PII_KEY": key,
                          "ONBOARDD_AUTH_JWT_SECRET": secret,
                          "ONBOARDD_PATHS_STATE_DIR": tempfile.gettempdir()})
        matcher_pool = await create_pool(cfg, url, min_size=2, max_size=4)
        app_pool = await create_pool(cfg, url, min_size=4, max_size=8)
        total = args.users + args.burst
        await seed(app_pool, cipher, [i for i in range(total) if i % 2 == 0])
        services = Services(cfg=cfg, pool=matcher_pool, cipher=cipher,
                            tokens=TokenCodec("HS256", secret, secret))
        stopping = asyncio.Event()
        actor = asyncio.create_task(offer_matcher.run(services, stopping))
        try:
            await asyncio.sleep(0.5)  # subscribed
            latencies = await steady(app_pool, 0, args.users, args.rate)
            burst_s = await burst(app_pool, args.users, args.burst) if args.burst else 0.0
            granted = await app_pool.fetchval(
                "SELECT count(*) FROM welcome_offer_redemptions")
        finally:
            stopping.set()
            await actor
            await matcher_pool.close()
            await app_pool.close()
    return {
        "users": args.users,
        "rate_per_s": args.rate,
        "p50_ms": round(statistics.median(latencies), 2) if latencies else 0.0,
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies, default=0.0), 2),
        "burst": args.burst,
        "burst_s": round(burst_s, 3),
        "events_per_s": round(args.burst / burst_s, 1) if burst_s else 0.0,
        "redemptions": granted,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000, help="steady-rate registrations")
    parser.add_argument("--rate", type=float, default=200.0, help="registrations per second")
    parser.add_argument("--burst", type=int, default=5000, help="registrations in one burst")
    figures = asyncio.run(main(parser.parse_args()))
    print(f"steady: {figures['users']} registrations at {figures['rate_per_s']:g}/s: "
          f"p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, max {figures['max_ms']} ms")
    print(f"burst: {figures['burst']} registrations matched in {figures['burst_s']} s "
          f"({figures['events_per_s']} events/s); {figures['redemptions']} redemptions in all")
    print(json.dumps(figures))
