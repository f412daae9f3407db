"""Benchmark: what the salon existence check in the auth step costs, i.e. whether a cache pays.

    .venv/bin/python tests/bench/bench_salon_check.py --requests 2000 --concurrency 16

Every /api/salons/{salonId}/... request looks its salon up once (a primary-key probe) after
the token check. This serves the real app on a real socket against a real PostgreSQL and
times GET /api/salons/{id}/welcome-offers (a cheap handler, so the check's share is as large
as it gets) in two configurations measured in the same run:

- ``checked``: the shipped middleware (one `salon_exists` query per request);
- ``free``: the same app with the lookup answered in-process at no cost, the floor that a
  perfect cache could reach.

Each is run sequentially (latency) and with C concurrent clients (throughput). Also times the
query alone next to ``SELECT 1`` (the pool round-trip floor). Prints figures, then a JSON last
line. Uses ONBOARDD_TEST_DATABASE_URL or an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from onboardd.auth import TokenCodec
from onboardd.config import load
from onboardd.db.pool import create_pool
from onboardd.db.salons import salon_exists
from onboardd.logging import configure
from onboardd.pii import cipher_from_config
from onboardd.runtime import Services
from onboardd.web import middleware
from onboardd.web.app import create_app
from tests.bench.support import bench_database
from tests.serving import served

SECRET = "bench-secret-" + "x" * 40


async def _timed(calls: int, concurrency: int, one: Callable[[], Awaitable[None]]
                 ) -> tuple[float, list[float]]:
    """Run `one` `calls` times over `concurrency` workers: (seconds, latencies in ms)."""
    latencies: list[float] = []
    left = calls

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            started = time.perf_counter()
            await one()
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


async def _http_figures(base: str, salon: str, headers: dict[str, str], requests: int,
                        concurrency: int) -> dict[str, float]:
    """p50/p99 sequentially and requests per second with `concurrency` clients."""
    url = f"{base}/api/salons/{salon}/welcome-offers"
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency)) as http:

        async def one() -> None:
            async with http.get(url, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise AssertionError(f"{resp.status} {await resp.text()}")

        await _timed(100, 1, one)  # warm-up: connections, prepared statements
        _, sequential = await _timed(requests, 1, one)
        seconds, _ = await _timed(requests, concurrency, one)
    return {"p50_ms": _p(sequential, 0.5), "p99_ms": _p(sequential, 0.99),
            "rps": round(requests / seconds, 1)}


async def run(requests: int, concurrency: int) -> dict[str, Any]:
    """Measure both configurations in one run; the figures and their ratios."""
    configure("warning", "json")
    async with bench_database() as url:
        with tempfile.TemporaryDirectory() as state:
            cfg = load(None, {"ONBOARDD_DATABASE_URL": url, "ONBOARDD_PATHS_STATE_DIR": state,
                              "ONBOARDD_AUTH_JWT_SECRET": SECRET,
                              "ONBOARDD_RATELIMIT_ENABLED": "false",
                              "ONBOARDD_PII_KEY": base64.b64encode(b"b" * 32).decode()})
            pool = await create_pool(cfg, url, min_size=4, max_size=10)
            tokens = TokenCodec("HS256", SECRET, SECRET)
            services = Services(cfg=cfg, pool=pool, cipher=cipher_from_config(cfg),
                                tokens=tokens)
            salon: str = await pool.fetchval(
                "INSERT INTO salons (name) VALUES ('Bench') RETURNING id")
            # Salons of other tenants, so the probe is an index lookup in a non-trivial table.
            await pool.execute("INSERT INTO salons (name) SELECT 'S' || g "
                               "FROM generate_series(1, 20000) g")
            await pool.execute("ANALYZE salons")
            headers = {"Authorization": "Bearer "
                       + tokens.encode("admin-1", "admin", [salon], 3600)}
            try:
                async with served(create_app(services)) as base:
                    query_alone = await _query_figures(pool, salon, requests)
                    checked = await _http_figures(base, salon, headers, requests, concurrency)

                    async def free(_conn: Any, _salon_id: str) -> bool:
                        return True

                    # The floor: the middleware's lookup answered in-process, at no cost.
                    module: Any = middleware
                    module.salon_exists = free
                    try:
                        floor = await _http_figures(base, salon, headers, requests,
                                                    concurrency)
                    finally:
                        module.salon_exists = salon_exists
            finally:
                await pool.close()
    return {
        "requests": requests, "concurrency": concurrency,
        "exists_query_p50_ms": query_alone["exists"], "select1_p50_ms": query_alone["select1"],
        "exists_vs_select1": round(query_alone["exists"] / query_alone["select1"], 2),
        "checked": checked, "free_lookup_floor": floor,
        "p50_ratio": round(checked["p50_ms"] / floor["p50_ms"], 3),
        "rps_ratio": round(checked["rps"] / floor["rps"], 3),
    }


async def _query_figures(pool: Any, salon: str, calls: int) -> dict[str, float]:
    """p50 of the existence query and of SELECT 1 through the same pool."""

    async def exists() -> None:
        if not await salon_exists(pool, salon):
            raise AssertionError("the bench salon is missing")

    async def select1() -> None:
        await pool.fetchval("SELECT 1")

    await _timed(100, 1, exists)
    _, with_exists = await _timed(calls, 1, exists)
    _, with_select1 = await _timed(calls, 1, select1)
    return {"exists": statistics.median(with_exists), "select1": statistics.median(with_select1)}


def main() -> None:
    """Parse arguments, run, print figures and the JSON last line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    result = asyncio.run(run(args.requests, args.concurrency))
    checked, floor = result["checked"], result["free_lookup_floor"]
    print(f"salon_exists query p50 {result['exists_query_p50_ms']:.3f} ms "
          f"(SELECT 1 floor {result['select1_p50_ms']:.3f} ms, "
          f"x{result['exists_vs_select1']})")
    print(f"GET welcome-offers, checked:      p50 {checked['p50_ms']} ms, "
          f"p99 {checked['p99_ms']} ms, {checked['rps']} req/s at {args.concurrency} clients")
    print(f"GET welcome-offers, free lookup:  p50 {floor['p50_ms']} ms, "
          f"p99 {floor['p99_ms']} ms, {floor['rps']} req/s  (floor: a perfect cache)")
    print(f"checked / floor: p50 x{result['p50_ratio']}, throughput x{result['rps_ratio']}")
    print(msgspec.json.encode(result).decode())


if __name__ == "__main__":
    main()
