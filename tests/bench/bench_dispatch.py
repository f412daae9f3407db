"""Benchmark: one campaign through the HTTP API, `onboardd serve`, and the Twilio simulator.

    .venv/bin/python tests/bench/bench_dispatch.py --customers 4000 --rate 80 --latency-ms 150
    .venv/bin/python tests/bench/bench_dispatch.py --customers 20000 --rate 100000

The daemon runs as a subprocess in real-Twilio mode pointed at a simulator in this process
(Twilio-like: it accepts at most R per second, answering 429 beyond). The WhatsApp limit of
the daemon is R. Figures come from the simulator's record of accepted messages:
achieved_rate = (sent - 1) / (last - first accept); max_1s_window = the most create requests
in any sliding one-second window as they reach the simulator (before its artificial latency;
max_1s_window_at_accept counts accept times instead; the dispatcher tests used to assert
it is at most R, they now check the limiter on a virtual clock); duplicates = extra messages to a
number; lost = customers never messaged or not recorded as accepted in the database.
Prints a JSON last line.
Uses ONBOARDD_TEST_DATABASE_URL or an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import asyncpg
import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from onboardd.auth import TokenCodec
from onboardd.pii import PiiCipher, _derived_hash_key
from onboardd.simulator.app import create_app, serve_app
from onboardd.simulator.settings import SimulatorSettings
from onboardd.simulator.state import STATE_KEY
from tests.bench.support import bench_database
from tests.e2e.daemon import Daemon

JWT_SECRET = "bench-secret-" + "x" * 40
PII_KEY = b"b" * 32


async def seed(url: str, cipher: PiiCipher, n: int) -> tuple[str, str, list[str]]:
    """A salon, an offer and n pending customers: (salon, offer, phones)."""
    conn = await asyncpg.connect(url)
    try:
        salon = await conn.fetchval(
            "INSERT INTO salons (name, app_download_link) VALUES ('Bench Salon', "
            "'https://app.salonhub.com/s/bench') RETURNING id")
        offer = await conn.fetchval(
            "INSERT INTO welcome_offers (salon_id, name, discount_type, discount_value) "
            "VALUES ($1, 'Welcome', 'fixed', 10000) RETURNING id", salon)
        phones = [f"+9198{i:08d}" for i in range(n)]
        encrypted = [cipher.encrypt(p, "phone") for p in phones]
        await conn.execute(
            """INSERT INTO imported_customers (salon_id, customer_name, phone_enc,
                   normalized_phone_enc, phone_hash)
               SELECT $1, 'Bench Customer', e, e, h
               FROM unnest($2::text[], $3::bytea[]) AS u(e, h)""",
            salon, encrypted, [cipher.phone_hash(p) for p in phones])
        return salon, offer, phones
    finally:
        await conn.close()


def max_window(stamps: list[float], width: float = 1.0) -> int:
    """Most events in any half-open window [t, t + width) starting at an event."""
    return max((bisect.bisect_left(stamps, t + width) - i for i, t in enumerate(stamps)),
               default=0)


async def run(customers: int, rate: float, latency_ms: float, in_flight: int) -> dict[str, object]:
    cipher = PiiCipher("k1", PII_KEY, _derived_hash_key(PII_KEY))
    tokens = TokenCodec("HS256", JWT_SECRET, JWT_SECRET)
    unlimited = rate >= 100_000
    settings = SimulatorSettings(rate_per_s=0.0 if unlimited else rate, latency_ms=latency_ms,
                                 callbacks_enabled=False)
    async with bench_database() as url:
        salon, offer, phones = await seed(url, cipher, customers)
        app = create_app(settings)
        sim = app[STATE_KEY]
        arrivals: list[float] = []

        @web.middleware
        async def stamp(request: web.Request, handler: Handler) -> web.StreamResponse:
            # When "Twilio" receives a create request: before the simulator's own latency.
            if request.method == "POST":
                arrivals.append(time.time())
            return await handler(request)

        app.middlewares.append(stamp)
        async with serve_app(app, "127.0.0.1", 0) as sim_url:
            with tempfile.TemporaryDirectory() as tmp:
                env = {
                    "ONBOARDD_DATABASE_URL": url,
                    "ONBOARDD_PATHS_STATE_DIR": tmp,
                    "ONBOARDD_AUTH_JWT_SECRET": JWT_SECRET,
                    "ONBOARDD_PII_KEY": base64.b64encode(PII_KEY).decode(),
                    "ONBOARDD_TWILIO_ACCOUNT_SID": sim.settings.account_sid,
                    "ONBOARDD_TWILIO_AUTH_TOKEN": sim.settings.auth_token,
                    "ONBOARDD_TWILIO_API_BASE_URL": sim_url,
                    "ONBOARDD_TWILIO_WHATSAPP_RATE_PER_S": str(rate),
                    "ONBOARDD_TWILIO_MAX_IN_FLIGHT": str(in_flight),
                    "ONBOARDD_LOG_LEVEL": "warning",
                    # Quiet hours would hold the campaign outside 09:00-21:00 salon time.
                    "ONBOARDD_CAMPAIGNS_SENDING_WINDOW_START": "00:00",
                    "ONBOARDD_CAMPAIGNS_SENDING_WINDOW_END": "24:00",
                }
                daemon = Daemon(env, Path(tmp))
                try:
                    await asyncio.to_thread(daemon.wait_ready)
                    result = await drive(daemon, tokens, salon, offer, url, customers, sim)
                finally:
                    code = await asyncio.to_thread(daemon.stop, signal.SIGTERM)
                result["daemon_exit"] = code
    records = sim.store.all()
    stamps = sorted(r.created_at for r in records)
    per_number = Counter(r.to.removeprefix("whatsapp:") for r in records)
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    unrecorded = int(str(result.pop("unrecorded")))
    result.update({
        "customers": customers,
        "rate": rate,
        "latency_ms": latency_ms,
        "sent": len(records),
        "seconds": round(span, 3),
        "achieved_rate": round((len(records) - 1) / span, 2) if span else 0.0,
        "achieved_pct_of_limit": None if unlimited else round(
            100 * (len(records) - 1) / span / rate, 2) if span else 0.0,
        "max_1s_window": max_window(sorted(arrivals)),
        "max_1s_window_at_accept": max_window(stamps),
        "requests": len(arrivals),
        "duplicates": sum(c - 1 for c in per_number.values()),
        "lost": customers - len(set(per_number) & set(phones)) + unrecorded,
        "sim_rejected": sim.stats.as_json()["rejected"],
    })
    return result


async def drive(daemon: Daemon, tokens: TokenCodec, salon: str, offer: str, url: str,
                customers: int, sim: object) -> dict[str, object]:
    """Create and send the campaign over HTTP; wait until every message is accepted."""
    headers = {"Authorization": "Bearer " + tokens.encode("bench", "admin", [salon], 3600)}
    api = f"{daemon.base_url}/api/salons/{salon}/invitation-campaigns"
    async with aiohttp.ClientSession(headers=headers) as http:
        made = await (await http.post(api, json={
            "name": "Bench", "channel": "whatsapp", "welcomeOfferId": offer})).json()
        started = time.monotonic()
        resp = await http.post(f"{api}/{made['id']}/send")
        if resp.status != 202:
            raise SystemExit(f"send failed: {resp.status} {await resp.text()}")
    store = sim.store  # type: ignore[attr-defined]
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + 120 + customers / 50
        while time.monotonic() < deadline:
            left = await conn.fetchval(
                "SELECT count(*) FROM invitation_messages WHERE status IN ('pending', 'sending')")
            if left == 0:
                break
            await asyncio.sleep(0.2)
        wall = time.monotonic() - started
        unrecorded = await conn.fetchval(
            "SELECT count(*) FROM invitation_messages WHERE status <> 'queued'")
    finally:
        await conn.close()
    return {"wall_seconds_from_send": round(wall, 3), "unrecorded": unrecorded,
            "stored": len(store)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--rate", type=float, default=80.0)
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args()
    result = asyncio.run(run(args.customers, args.rate, args.latency_ms, args.in_flight))
    for key, value in result.items():
        print(f"{key:>24}: {value}", file=sys.stderr)
    print(msgspec.json.encode(result).decode())


if __name__ == "__main__":
    main()
