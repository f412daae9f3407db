"""The chaos benchmark's work: API calls to whichever daemon is up, the import file, the
campaign, registrations, and retries through a database restart."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import asyncpg

from tests.bench.chaos_cluster import Fleet

T = TypeVar("T")


def transient(exc: BaseException) -> bool:
    """A database or connection error that passes (a restart, a daemon killed mid-request)."""
    return isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError
                      | asyncpg.PostgresConnectionError
                      | asyncpg.exceptions.OperatorInterventionError
                      | aiohttp.ClientConnectionError)


async def retrying(call: Callable[[], Awaitable[T]], deadline_s: float = 180.0) -> T:
    """call() again while it fails transiently, for at most deadline_s."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return await call()
        except Exception as exc:
            if not transient(exc) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.5)


async def api(http: aiohttp.ClientSession, fleet: Fleet, method: str, path: str,
              body: Callable[[], Any] | None = None, json_body: Any = None) -> Any:
    """One API call to any daemon that is up, again on another when it is cut off or 5xx."""
    deadline = time.monotonic() + 180.0
    while time.monotonic() < deadline:
        base = fleet.next_ready()
        if base is None:
            await asyncio.sleep(0.5)
            continue
        try:
            async with http.request(method, base + path, json=json_body,
                                    data=body() if body else None) as resp:
                answer = await resp.json(content_type=None)
                if resp.status < 400:
                    return answer
                if resp.status < 500:
                    raise RuntimeError(f"{method} {path}: {resp.status} {answer}")
        except (aiohttp.ClientConnectionError, TimeoutError):
            pass
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{method} {path}: no daemon answered")


def customers_csv(rows: int) -> tuple[bytes, int]:
    """A CSV of `rows` customers (every 25th number invalid); the count of valid rows."""
    lines = ["Customer Name,Mobile No."]
    for i in range(rows):
        number = "12345" if i % 25 == 24 else f"+9197{i:08d}"
        lines.append(f"Import Customer {i},{number}")
    return ("\r\n".join(lines) + "\r\n").encode(), rows - rows // 25


async def import_file(http: aiohttp.ClientSession, fleet: Fleet, salon: str, data: bytes
                      ) -> str:
    """Upload and confirm the file; the batch id."""
    def form() -> aiohttp.FormData:
        out = aiohttp.FormData()
        out.add_field("file", data, filename="customers.csv", content_type="text/csv")
        return out

    preview = await api(http, fleet, "POST", f"/api/salons/{salon}/customers/import", form)
    await api(http, fleet, "POST", urlsplit(preview["confirmUrl"]).path, json_body={})
    return str(preview["batchId"])


async def start_campaign(http: aiohttp.ClientSession, fleet: Fleet, salon: str, offer: str
                         ) -> tuple[str, float]:
    """Create and send the campaign; (its id, when the send was asked for). Prints how long
    the send took to answer (the audience frozen and the codes assigned, in one transaction)."""
    path = f"/api/salons/{salon}/invitation-campaigns"
    made = await api(http, fleet, "POST", path, json_body={
        "name": "Chaos", "channel": "whatsapp", "welcomeOfferId": offer})
    started = time.time()
    await api(http, fleet, "POST", f"{path}/{made['id']}/send", json_body={})
    print(f"campaign started: the send answered in {time.time() - started:.1f} s", flush=True)
    return str(made["id"]), started


async def register(pool: asyncpg.Pool, phones: list[str], rate: float,
                   done: Callable[[int], None]) -> None:
    """Users registering at `rate` per second, as the host app inserts them (ids chaos-user-N);
    done(n) after each."""
    async def insert(n: int, number: str) -> None:
        await pool.execute(
            "INSERT INTO users (id, phone) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            f"chaos-user-{n}", number)

    started = time.monotonic()
    for n, number in enumerate(phones):
        delay = started + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await retrying(functools.partial(insert, n, number))
        done(n + 1)
