"""What the benchmark scripts share: a PostgreSQL server and fresh, migrated databases on it."""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from onboardd.db.migrate import migrate
from tests.conftest import db_url_for, embedded_server


@contextlib.asynccontextmanager
async def bench_server(keep: str | None = None) -> AsyncIterator[str]:
    """ONBOARDD_TEST_DATABASE_URL's server, or an embedded one (its data in a temporary
    directory, or kept in `keep`), stopped afterwards."""
    base = os.environ.get("ONBOARDD_TEST_DATABASE_URL", "")
    if base:
        yield base
        return
    with tempfile.TemporaryDirectory() as tmp, embedded_server(Path(keep or tmp)) as uri:
        yield uri


@contextlib.asynccontextmanager
async def migrated_database(base: str, name: str | None = None, keep: bool = False
                            ) -> AsyncIterator[str]:
    """A fresh migrated database on the server at `base` (replacing one of the same name);
    dropped afterwards unless kept."""
    name = name or "bench_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    url = db_url_for(base, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    try:
        yield url
    finally:
        if not keep:
            admin = await asyncpg.connect(base)
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            finally:
                await admin.close()


@contextlib.asynccontextmanager
async def bench_database() -> AsyncIterator[str]:
    """A fresh, migrated database on a benchmark server; dropped (and the server stopped)
    afterwards."""
    async with bench_server() as base, migrated_database(base) as url:
        yield url


def machine() -> dict[str, object]:
    """Where a benchmark ran: nproc (CPUs this process may use) and the CPU model."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": model}


def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by this process ("server"), its other Python
    children ("client") and every PostgreSQL process ("postgres"); read from /proc (Linux),
    empty elsewhere. Take two readings around a run: their difference splits its CPU."""
    me = os.getpid()
    tick = os.sysconf("SC_CLK_TCK")
    totals = {"server": 0.0, "client": 0.0, "postgres": 0.0}
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        ppid, used = int(fields[1]), (int(fields[11]) + int(fields[12])) / tick
        if int(entry.name) == me:
            totals["server"] += used
        elif comm == "postgres":
            totals["postgres"] += used
        elif ppid == me and comm.startswith("python"):
            totals["client"] += used
    return totals


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds by process kind between two cpu_seconds readings."""
    return {kind: after[kind] - before[kind] for kind in after}
