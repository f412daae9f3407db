"""Admin UI benchmark: server render time of every admin page at the analytics benchmark's
data scale, and the compressed weight of the heaviest page.

    .venv/bin/python tests/bench/bench_admin_pages.py                      # 2000 x 500 + 100k
    .venv/bin/python tests/bench/bench_admin_pages.py --salons 40 --customers 100 --big 3000 \\
        --calls 20                                                         # a quick smoke run

Builds the analytics benchmark's platform (tests/bench/bench_analytics.py: SALONS salons x
CUSTOMERS imported customers with three campaigns each, registrations, grants, redemptions
and bookings, plus one salon of BIG customers), serves the real app in a child process, signs
in to /admin with an admin token per salon (the session cookie, as a browser does) and times
GET of each page to the last byte:

- ``pages.<page>``: CALLS distinct ordinary salons, one GET each, after warm-up;
- ``big_salon.<page>``: BIG_CALLS GETs of each page for the big salon;
- ``floor``: GET /admin/login (the same middleware, a template, no query) on the same
  server in the same run: each page's p95 is also given as a ratio to the floor's p95, since
  these shared machines differ from run to run by 2x or more.

The bundle: for each page, the gzip size of its HTML plus every script and stylesheet it
loads (as served, gzip); the heaviest page must stay under 250 KB.

Prints figures, then one JSON line with the figures, targets and whether each is met.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from onboardd.auth import TokenCodec
from onboardd.logging import configure
from tests.bench.bench_analytics import (
    SECRET,
    _figures,
    app_process,
    build,
    machine,
    salon_id,
)
from tests.bench.support import bench_server, migrated_database

TARGETS = {"page_p95_ms": 50.0, "bundle_kb": 250.0}
# Each page, with {campaign} and {stage} filled per salon.
PAGES = {
    "dashboard": "/admin/dashboard",
    "stage": "/admin/dashboard/stages/delivered",
    "customers": "/admin/customers",
    "customers_search": "/admin/customers?q=Customer&status=invited",
    "import": "/admin/import",
    "offers": "/admin/offers",
    "campaigns": "/admin/campaigns",
    "builder": "/admin/campaigns/new",
    "campaign": "/admin/campaigns/{campaign}",
}
_ASSET = re.compile(r'(?:src|href)="(/admin/static/[^"]+)"')


class Browser:
    """One signed-in cookie session per salon."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.tokens = TokenCodec("HS256", SECRET, SECRET)
        self.sessions: dict[str, aiohttp.ClientSession] = {}

    async def session(self, salon: str) -> aiohttp.ClientSession:
        if salon not in self.sessions:
            http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
            token = self.tokens.encode("bench-admin", "admin", [salon], 24 * 3600)
            async with http.get(f"{self.base}/admin/login", params={"token": token},
                                allow_redirects=False) as resp:
                if resp.status != 303:
                    raise AssertionError(f"sign-in: {resp.status} {await resp.text()}")
            self.sessions[salon] = http
        return self.sessions[salon]

    async def get(self, salon: str, path: str) -> tuple[float, bytes]:
        http = await self.session(salon)
        started = time.perf_counter()
        async with http.get(self.base + path, allow_redirects=False) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise AssertionError(f"GET {path}: {resp.status} {body[:300]!r}")
        return (time.perf_counter() - started) * 1000, body

    async def close(self) -> None:
        for http in self.sessions.values():
            await http.close()


async def campaign_of(url: str, salons: list[str]) -> dict[str, str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT DISTINCT ON (salon_id) salon_id, id FROM "
                                "invitation_campaigns WHERE salon_id = ANY($1::text[]) "
                                "ORDER BY salon_id, created_at DESC", salons)
    finally:
        await conn.close()
    return {r["salon_id"]: r["id"] for r in rows}


async def time_pages(browser: Browser, salons: list[str], warm: list[str],
                     campaigns: dict[str, str]) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for page, template in PAGES.items():
        def path(salon: str, template: str = template) -> str:
            return template.format(campaign=campaigns.get(salon, "none"))
        for salon in warm:
            await browser.get(salon, path(salon))
        figures[page] = _figures([(await browser.get(s, path(s)))[0] for s in salons])
    for salon in warm:
        await browser.get(salon, "/admin/login")
    figures["floor"] = _figures([(await browser.get(s, "/admin/login"))[0] for s in salons])
    return figures


async def bundle(browser: Browser, salon: str, campaign: str) -> dict[str, float]:
    """Per page: gzip KB of its HTML and every script and stylesheet it loads."""
    sizes: dict[str, float] = {}
    http = await browser.session(salon)
    for page, template in PAGES.items():
        _, html = await browser.get(salon, template.format(campaign=campaign))
        total = len(gzip.compress(html, 6))
        for asset in sorted(set(_ASSET.findall(html.decode()))):
            async with http.get(browser.base + asset,
                                headers={"Accept-Encoding": "gzip"},
                                auto_decompress=False) as resp:
                total += len(await resp.read())
        sizes[page] = round(total / 1024, 1)
    return sizes


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configure("warning", "json")
    rng = random.Random(args.seed)
    nos = list(range(1, args.salons + 1))
    measured = [salon_id(n) for n in rng.sample(nos, min(args.calls, args.salons))]
    warm = [salon_id(n) for n in rng.choices(nos, k=args.warmup)]
    big = salon_id(0)
    result: dict[str, Any] = {"machine": machine(), "scale": {
        "salons": args.salons, "customers": args.customers, "big": args.big}}
    async with bench_server(args.keep) as base, \
            migrated_database(base, "bench_admin_pages", bool(args.keep)) as url:
        print(f"building {args.salons} salons x {args.customers} customers + 1 x {args.big} ...",
              flush=True)
        result["platform"] = await build(url, args.salons, args.customers, args.big)
        campaigns = await campaign_of(url, measured + warm + [big])
        async with app_process(url) as app:
            browser = Browser(app.base)
            try:
                result["pages"] = await time_pages(browser, measured, warm, campaigns)
                result["big_salon"] = (await time_pages(browser, [big] * args.big_calls,
                                                        [big] * 3, campaigns)
                                       if args.big else None)
                result["bundle_kb"] = await bundle(browser, measured[0],
                                                   campaigns.get(measured[0], "none"))
            finally:
                await browser.close()
    pages = result["pages"]
    floor = pages["floor"]["p95_ms"] or 1.0
    result["ratio_to_floor"] = {p: round(f["p95_ms"] / floor, 1) for p, f in pages.items()
                                if p != "floor"}
    heaviest = max(result["bundle_kb"].values())
    result["targets"] = TARGETS
    result["met"] = {
        "page_p95": {p: f["p95_ms"] < TARGETS["page_p95_ms"] for p, f in pages.items()
                     if p != "floor"},
        "big_salon_page_p95": ({p: f["p95_ms"] < TARGETS["page_p95_ms"]
                                for p, f in result["big_salon"].items() if p != "floor"}
                               if result["big_salon"] else None),
        "bundle": heaviest < TARGETS["bundle_kb"],
    }
    return result


def report(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"machine: {m['cores']} cores, {m['cpu']}, {m['memory_gb']} GB")
    floor = result["pages"]["floor"]
    print(f"floor, GET /admin/login: p50 {floor['p50_ms']} ms, p95 {floor['p95_ms']} ms")
    for page, f in result["pages"].items():
        if page == "floor":
            continue
        line = (f"{page:17} ordinary salons: p50 {f['p50_ms']:7} ms, p95 {f['p95_ms']:7} ms "
                f"(x{result['ratio_to_floor'][page]} floor)")
        if result["big_salon"]:
            b = result["big_salon"][page]
            line += f"; big salon p95 {b['p95_ms']} ms"
        print(line + f"; {result['bundle_kb'][page]} KB gzip with its assets")
    print(f"targets met: {result['met']}")
    print(msgspec.json.encode(result).decode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env = os.environ.get
    parser.add_argument("--salons", type=int, default=int(env("BENCH_SALONS", "2000")))
    parser.add_argument("--customers", type=int, default=int(env("BENCH_CUSTOMERS", "500")))
    parser.add_argument("--big", type=int, default=int(env("BENCH_BIG", "100000")))
    parser.add_argument("--calls", type=int, default=100, help="ordinary salons measured")
    parser.add_argument("--big-calls", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--keep", metavar="DIR")
    report(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
