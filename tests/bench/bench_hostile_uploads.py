"""Benchmark: hostile uploads against a real `onboardd serve`, with the daemon's memory and its
/healthz latency watched throughout.

    .venv/bin/python tests/bench/bench_hostile_uploads.py [--parallel 10] [--probes 400]

The daemon runs as a subprocess on a fresh database (ONBOARDD_TEST_DATABASE_URL or an embedded
PostgreSQL in a temporary directory). Floors, measured first in the same run: the idle daemon's
RSS and the p99 of sequential /healthz requests while nothing else happens. Then phases, each
`--parallel` uploads at once from other connections while a probe thread keeps asking /healthz
and a sampler reads the RSS of the daemon and of its children (the sandboxed readers) every
10 ms:

- far_cell_xlsx: a ~5 KB workbook, cells A1:B2 plus XFD1048576 (refused: 422)
- far_cell_zz: the same with the far cell at ZZ100000 (refused: 422)
- wide_header_csv: a ~370 KB CSV whose header has 50,002 columns (refused: 422)
- max_csv: 10,000 rows, ~5 MB (the upload limit), all accepted (201)
- max_xlsx: 10,000 rows x 8 columns, all accepted (201)

Figures: peak RSS (daemon alone, and daemon plus children) and /healthz p50/p99/max per phase;
the summary puts the worst of them next to their floors as ratios. The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from onboardd.auth import TokenCodec
from tests.bench.support import bench_database
from tests.e2e.daemon import Daemon
from tests.hostile_files import far_cell_xlsx, wide_header_csv, xlsx_bytes

JWT_SECRET = "bench-secret-" + "x" * 40
PII_KEY = b"h" * 32
MAX_FILE_BYTES = 5 * 1024 * 1024


def max_csv(rng: random.Random) -> bytes:
    """10,000 customers padded with notes to just under the 5 MB upload limit."""
    rows = ["Name,Phone,Email,Notes"]
    for i in range(10_000):
        rows.append(f"Customer {i},9{rng.randrange(10**9):09d},c{i}@example.com,"
                    + "n" * 470)
    data = ("\n".join(rows) + "\n").encode()
    return data[:MAX_FILE_BYTES - 1024].rsplit(b"\n", 1)[0] + b"\n"


def max_xlsx(rng: random.Random) -> bytes:
    """10,000 customers in an .xlsx with a few extra columns."""

    def build(workbook: Any) -> None:
        sheet = workbook.add_worksheet()
        sheet.write_row(0, 0, ["Name", "Phone", "Email", "City", "Notes", "Since", "Visits",
                               "Stylist"])
        for i in range(10_000):
            sheet.write_row(i + 1, 0, [f"Customer {i}", f"9{rng.randrange(10**9):09d}",
                                       f"c{i}@example.com", "Pune", "likes tea " * 5,
                                       "2021-04-01", i % 40, "Meera"])

    return xlsx_bytes(build)


class Watch:
    """A /healthz probe thread and an RSS sampler thread, started and stopped together."""

    def __init__(self, port: int, pid: int) -> None:
        self.port = port
        self.process = psutil.Process(pid)
        self.latencies: list[float] = []
        self.failures = 0
        self.peak_main = self.peak_total = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._probe, daemon=True),
                         threading.Thread(target=self._sample, daemon=True)]

    def _probe(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                conn.request("GET", "/healthz")
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            if ok:
                self.latencies.append((time.perf_counter() - started) * 1000)
            else:
                self.failures += 1
            time.sleep(0.002)
        conn.close()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                main = self.process.memory_info().rss
                children = sum(child.memory_info().rss
                               for child in self.process.children(recursive=True))
            except psutil.Error:
                children = 0
                main = self.peak_main
            self.peak_main = max(self.peak_main, main)
            self.peak_total = max(self.peak_total, main + children)
            time.sleep(0.01)

    def __enter__(self) -> Watch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def figures(self) -> dict[str, Any]:
        """Peak RSS and /healthz latency percentiles over the watch."""
        lat = sorted(self.latencies)
        return {
            "peak_rss_mb": round(self.peak_main / 2**20, 1),
            "peak_rss_with_children_mb": round(self.peak_total / 2**20, 1),
            "healthz_n": len(lat),
            "healthz_failures": self.failures,
            "healthz_p50_ms": round(statistics.median(lat), 2) if lat else None,
            "healthz_p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 2)
            if lat else None,
            "healthz_max_ms": round(lat[-1], 2) if lat else None,
        }


async def idle_floor(daemon: Daemon, probes: int) -> dict[str, Any]:
    """The idle daemon: RSS and sequential /healthz latency, nothing else running."""
    watch = Watch(daemon.port, daemon.proc.pid)
    with watch:
        while len(watch.latencies) < probes:
            await asyncio.sleep(0.05)
    return watch.figures()


async def phase(daemon: Daemon, headers: dict[str, str], salon: str, name: str,
                data: bytes, filename: str, parallel: int) -> dict[str, Any]:
    """`parallel` uploads of one file at once, watched."""
    url = f"{daemon.base_url}/api/salons/{salon}/customers/import"

    async def one(http: aiohttp.ClientSession) -> tuple[int, str]:
        form = aiohttp.FormData()
        form.add_field("file", data, filename=filename, content_type="application/octet-stream")
        async with http.post(url, data=form, headers=headers) as resp:
            body = await resp.json()
            code = body.get("error", {}).get("code", "") if resp.status >= 400 else ""
            return resp.status, code

    watch = Watch(daemon.port, daemon.proc.pid)
    timeout = aiohttp.ClientTimeout(total=600)
    with watch:
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        async with aiohttp.ClientSession(timeout=timeout) as http:
            results = await asyncio.gather(*(one(http) for _ in range(parallel)))
        wall = time.perf_counter() - started
        await asyncio.sleep(0.2)
    statuses = Counter(f"{status} {code}".strip() for status, code in results)
    return {"phase": name, "file_bytes": len(data), "uploads": parallel,
            "answers": dict(statuses), "seconds": round(wall, 3), **watch.figures()}


async def run(parallel: int, probes: int) -> dict[str, Any]:
    rng = random.Random(7)
    files = [
        ("far_cell_xlsx", far_cell_xlsx("XFD1048576"), "far.xlsx"),
        ("far_cell_zz", far_cell_xlsx("ZZ100000"), "zz.xlsx"),
        ("wide_header_csv", wide_header_csv(50_002), "wide.csv"),
        ("max_csv", max_csv(rng), "customers.csv"),
        ("max_xlsx", max_xlsx(rng), "customers.xlsx"),
    ]
    tokens = TokenCodec("HS256", JWT_SECRET, JWT_SECRET)
    async with bench_database() as url:
        conn = await asyncpg.connect(url)
        salon = await conn.fetchval("INSERT INTO salons (name) VALUES ('Bench') RETURNING id")
        await conn.close()
        headers = {"Authorization": "Bearer " + tokens.encode("bench", "admin", [salon], 3600)}
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                "ONBOARDD_DATABASE_URL": url,
                "ONBOARDD_PATHS_STATE_DIR": tmp,
                "ONBOARDD_AUTH_JWT_SECRET": JWT_SECRET,
                "ONBOARDD_PII_KEY": base64.b64encode(PII_KEY).decode(),
                # The built-in simulator (explicit with an external database); nothing is sent.
                "ONBOARDD_SIMULATOR_ENABLED": "true",
                "ONBOARDD_IMPORT_UPLOADS_PER_HOUR": "100000",
                "ONBOARDD_LOG_LEVEL": "warning",
            }
            daemon = Daemon(env, Path(tmp))
            try:
                await asyncio.to_thread(daemon.wait_ready)
                await asyncio.sleep(1.0)
                floor = await idle_floor(daemon, probes)
                phases = [await phase(daemon, headers, salon, name, data, filename, parallel)
                          for name, data, filename in files]
                alive = daemon.get("/healthz")[0] == 200
            finally:
                code = await asyncio.to_thread(daemon.stop, signal.SIGTERM)
    worst_rss = max(p["peak_rss_with_children_mb"] for p in phases)
    worst_main = max(p["peak_rss_mb"] for p in phases)
    worst_p99 = max(p["healthz_p99_ms"] or 0.0 for p in phases)
    return {
        "parallel": parallel,
        "phases": phases,
        "idle_rss_mb": floor["peak_rss_mb"],
        "idle_healthz_p99_ms": floor["healthz_p99_ms"],
        "idle_healthz_p50_ms": floor["healthz_p50_ms"],
        "peak_rss_mb": worst_main,
        "peak_rss_with_children_mb": worst_rss,
        "rss_ratio": round(worst_main / floor["peak_rss_mb"], 2),
        "rss_with_children_ratio": round(worst_rss / floor["peak_rss_mb"], 2),
        "healthz_p99_ms": worst_p99,
        "healthz_p99_ratio": round(worst_p99 / floor["healthz_p99_ms"], 2),
        "healthz_failures": sum(p["healthz_failures"] for p in phases),
        "daemon_alive_after": alive,
        "daemon_exit": code,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parallel", type=int, default=10)
    parser.add_argument("--probes", type=int, default=400,
                        help="sequential /healthz requests for the idle floor")
    args = parser.parse_args()
    result = asyncio.run(run(args.parallel, args.probes))
    for item in result["phases"]:
        print(f"{item['phase']:>16}: {item['answers']} in {item['seconds']} s, peak RSS "
              f"{item['peak_rss_mb']} MB ({item['peak_rss_with_children_mb']} MB with "
              f"children), /healthz p99 {item['healthz_p99_ms']} ms", file=sys.stderr)
    for key, value in result.items():
        if key != "phases":
            print(f"{key:>26}: {value}", file=sys.stderr)
    print(msgspec.json.encode(result).decode())


if __name__ == "__main__":
    main()
