"""Benchmark: does check-imported-customer's time tell a caller without proof anything?

    .venv/bin/python tests/bench/bench_check_timing.py --rounds 1500

Serves the real app on a real socket against a real PostgreSQL holding 20,000 imported
customers in 50 salons, one number (KNOWN) a customer of 5 of them with offers. One caller
whose stored phone is another number asks, in interleaved rounds (so machine noise hits every
class alike), about:

- ``unproved_known``: KNOWN (a customer: the case that must not stand out);
- ``unproved_unknown``: a number nobody has;
- ``proved_unknown``: their own number, which nobody imported (a real lookup that finds
  nothing: what an unknown number costs);
- ``proved_known``: a second caller whose phone claim is KNOWN (a real answer with 5 matches:
  shows the bench can see a difference when there is one).

Prints p50/p90 per class and the ratios unproved_known / unproved_unknown (the leak, ~1.0 when
none) and proved_known / proved_unknown (the sensitivity), then a JSON last line. Uses
ONBOARDD_TEST_DATABASE_URL or an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from onboardd.auth import TokenCodec
from onboardd.config import load
from onboardd.db.pool import create_pool
from onboardd.logging import configure
from onboardd.pii import cipher_from_config
from onboardd.runtime import Services
from onboardd.web.app import create_app
from tests.bench.support import bench_database, machine
from tests.serving import served

SECRET = "bench-secret-" + "x" * 40
KNOWN = "+919876543210"
NOBODYS = "+919000000001"
OWN = "+919811111111"
CHECK = "/api/mobile/check-imported-customer"


async def _seed(services: Services) -> str:
    """20,000 customers in 50 salons; KNOWN in 5 salons with an offer each. The caller's id."""
    pool, cipher = services.pool, services.cipher
    salons = [r["id"] for r in await pool.fetch(
        "INSERT INTO salons (name) SELECT 'Salon ' || g FROM generate_series(1, 50) g "
        "RETURNING id")]
    await pool.execute(
        "INSERT INTO imported_customers (salon_id, customer_name, phone_enc, "
        "normalized_phone_enc, phone_hash, status) "
        "SELECT ($1::varchar[])[1 + g % 50], 'C' || g, 'x', 'x', "
        "decode(md5(g::text) || md5('h' || g), 'hex'), 'pending' "
        "FROM generate_series(1, 20000) g", salons)
    for salon in salons[:5]:
        await pool.execute(
            "INSERT INTO welcome_offers (salon_id, name, discount_type, discount_value, "
            "validity_days) VALUES ($1, 'Welcome', 'percentage', 10, 30)",
            salon)
        await pool.execute(
            "INSERT INTO imported_customers (salon_id, customer_name, phone_enc, "
            "normalized_phone_enc, phone_hash, status, invited_at, last_invited_at) "
            "VALUES ($1, 'Priya', $2, $2, $3, 'invited', now(), now())",
            salon, cipher.encrypt(KNOWN, "phone"), cipher.phone_hash(KNOWN))
    await pool.execute("ANALYZE")
    caller: str = await pool.fetchval(
        "INSERT INTO users (phone, name) VALUES ($1, 'Caller') RETURNING id", OWN)
    return caller


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


async def _measure(base: str, classes: dict[str, tuple[dict[str, str], str]], rounds: int
                   ) -> dict[str, list[float]]:
    """Latencies (ms) per class, one request of each class per round, in rotating order."""
    times: dict[str, list[float]] = {name: [] for name in classes}
    names = list(classes)
    async with aiohttp.ClientSession(base) as http:
        for i in range(rounds + 100):  # the first 100 rounds warm up and are not kept
            for name in names[i % len(names):] + names[:i % len(names)]:
                headers, phone = classes[name]
                started = time.perf_counter()
                async with http.get(CHECK, params={"phone": phone}, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise AssertionError(f"{name}: {resp.status} {await resp.text()}")
                if i >= 100:
                    times[name].append((time.perf_counter() - started) * 1000)
    return times


async def run(rounds: int) -> dict[str, Any]:
    """One run: the four classes' figures and the two ratios."""
    with open(os.devnull, "w") as sink:  # the warnings are written, as in production
        configure("warning", "json", sink)
        async with bench_database() as url:
            with tempfile.TemporaryDirectory() as state:
                cfg = load(None, {"ONBOARDD_DATABASE_URL": url,
                                  "ONBOARDD_PATHS_STATE_DIR": state,
                                  "ONBOARDD_AUTH_JWT_SECRET": SECRET,
                                  "ONBOARDD_RATELIMIT_ENABLED": "false",
                                  "ONBOARDD_PII_KEY": base64.b64encode(b"b" * 32).decode()})
                pool = await create_pool(cfg, url, min_size=2, max_size=4)
                tokens = TokenCodec("HS256", SECRET, SECRET)
                services = Services(cfg=cfg, pool=pool, cipher=cipher_from_config(cfg),
                                    tokens=tokens)
                try:
                    caller = await _seed(services)
                    plain = {"Authorization": "Bearer "
                             + tokens.encode(caller, "customer", [], 3600)}
                    proved = {"Authorization": "Bearer "
                              + tokens.encode("owner", "customer", [], 3600, phone=KNOWN)}
                    classes = {"unproved_known": (plain, KNOWN),
                               "unproved_unknown": (plain, NOBODYS),
                               "proved_unknown": (plain, OWN),
                               "proved_known": (proved, KNOWN)}
                    async with served(create_app(services)) as base:
                        times = await _measure(base, classes, rounds)
                finally:
                    await pool.close()
    figures = {name: {"p50_ms": _p(v, 0.5), "p90_ms": _p(v, 0.9),
                      "mean_ms": round(statistics.fmean(v), 3)} for name, v in times.items()}
    return {
        "rounds": rounds, "machine": machine(), **figures,
        "leak_p50_ratio": round(figures["unproved_known"]["p50_ms"]
                                / figures["unproved_unknown"]["p50_ms"], 3),
        "unproved_vs_unknown_p50_ratio": round(figures["unproved_known"]["p50_ms"]
                                               / figures["proved_unknown"]["p50_ms"], 3),
        "sensitivity_p50_ratio": round(figures["proved_known"]["p50_ms"]
                                       / figures["proved_unknown"]["p50_ms"], 3),
    }


def main() -> None:
    """Parse arguments, run, print figures and the JSON last line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1500)
    args = parser.parse_args()
    result = asyncio.run(run(args.rounds))
    for name in ("unproved_known", "unproved_unknown", "proved_unknown", "proved_known"):
        f = result[name]
        print(f"{name:17} p50 {f['p50_ms']:.3f} ms  p90 {f['p90_ms']:.3f} ms  "
              f"mean {f['mean_ms']:.3f} ms")
    print(f"unproved known / unproved unknown: p50 x{result['leak_p50_ratio']} (1.0: no leak)")
    print(f"unproved known / proved unknown:   p50 x{result['unproved_vs_unknown_p50_ratio']}")
    print(f"proved known / proved unknown:     p50 x{result['sensitivity_p50_ratio']} "
          "(what a real answer costs: the bench sees differences of this size)")
    print(msgspec.json.encode(result).decode())


if __name__ == "__main__":
    main()
