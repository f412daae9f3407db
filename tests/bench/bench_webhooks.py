"""Benchmark: signed Twilio status callbacks through the web front and the status recorder.

    .venv/bin/python tests/bench/bench_webhooks.py --events 2000 --concurrency 64

Creates N/2.2 accepted messages, then posts about N status callbacks (each message's true
sequence, interleaved at random, 5 % of adjacent pairs swapped out of order, 10 % of
callbacks repeated) with C concurrent clients, signed like Twilio. Prints figures, then a
JSON last line with
events_per_s, p50_ms, p99_ms and final_state_correct (every message in its true final status
and the campaign counters equal to a recount). Uses ONBOARDD_TEST_DATABASE_URL or an embedded
PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import random
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import msgspec
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from onboardd.actors import status_recorder
from onboardd.auth import codec_from_config
from onboardd.config import load
from onboardd.db import delivery as db
from onboardd.db.pool import create_pool
from onboardd.domain import delivery
from onboardd.domain.status_events import SendOutcome, StatusCallback
from onboardd.logging import configure
from onboardd.pii import cipher_from_config
from onboardd.runtime import Services
from onboardd.web.app import create_app
from onboardd.web.webhooks import twilio_auth_token
from tests.bench.support import bench_database
from tests.serving import served

PATH = "/api/webhooks/twilio/status"
TRUE_SEQUENCES = [
    ["sent", "delivered"],
    ["sent", "delivered"],
    ["sent", "delivered", "read"],
    ["sent", "undelivered"],
    ["failed"],
]


def plan_events(sids: list[str], rng: random.Random) -> tuple[list[tuple[str, str]],
                                                                dict[str, str]]:
    """The callbacks to post, and each SID's true final status."""
    sequences = {sid: list(rng.choice(TRUE_SEQUENCES)) for sid in sids}
    truth = {sid: seq[-1] for sid, seq in sequences.items()}
    # Interleave the messages at random, each message's callbacks in order.
    slots = [sid for sid, seq in sequences.items() for _ in seq]
    rng.shuffle(slots)
    cursor = dict.fromkeys(sids, 0)
    events: list[tuple[str, str]] = []
    for sid in slots:
        events.append((sid, sequences[sid][cursor[sid]]))
        cursor[sid] += 1
    for i in rng.sample(range(len(events) - 1), k=len(events) // 20):  # 5 % out of order
        events[i], events[i + 1] = events[i + 1], events[i]
    for _ in range(len(events) // 10):  # 10 % duplicates
        events.insert(rng.randrange(len(events) + 1), rng.choice(events))
    return events, truth


async def seed(services: Services, n: int) -> tuple[str, list[str]]:
    """A salon, a sending campaign and n accepted messages; returns (campaign, sids)."""
    pool = services.pool
    salon = await pool.fetchval("INSERT INTO salons (name) VALUES ('Bench') RETURNING id")
    campaign = await pool.fetchval(
        """INSERT INTO invitation_campaigns (salon_id, name, message_template, status,
               created_by, target_customer_count, started_at)
           VALUES ($1, 'Bench', 'Hi', 'sending', 'bench', $2, now()) RETURNING id""", salon, n)
    phones = [f"+9197{i:08d}" for i in range(n)]
    enc = services.cipher.encrypt(phones[0], "phone")  # content is irrelevant here
    customers = await pool.fetch(
        """INSERT INTO imported_customers (salon_id, customer_name, phone_enc,
               normalized_phone_enc, phone_hash)
           SELECT $1, 'C', $2, $2, h FROM unnest($3::bytea[]) AS t(h) RETURNING id""",
        salon, enc, [services.cipher.phone_hash(p) for p in phones])
    messages = await pool.fetch(
        """INSERT INTO invitation_messages (campaign_id, imported_customer_id, channel, salon_id)
           SELECT $1, c, 'sms', $2 FROM unnest($3::text[]) AS t(c) RETURNING id""",
        campaign, salon, [r["id"] for r in customers])
    sids = ["SM" + secrets.token_hex(16) for _ in messages]
    now = datetime.now(UTC)
    outcomes: list[SendOutcome | StatusCallback] = [
        SendOutcome(m["id"], "accepted", now, "sms", sid=s, sender="+15005550006")
        for m, s in zip(messages, sids, strict=True)]
    for lo in range(0, n, 1000):
        await db.record_batch(pool, outcomes[lo:lo + 1000], 3600.0)
    return campaign, sids


async def post_all(base: str, public: str, token: str, events: list[tuple[str, str]],
                   concurrency: int) -> tuple[float, list[float], int]:
    """Post every event with `concurrency` clients; returns (seconds, latencies ms, errors)."""
    # Bodies and signatures are computed up front, so the client (sharing the server's
    # cores) spends its CPU on HTTP only.
    validator = RequestValidator(token)
    requests: list[tuple[bytes, dict[str, str]]] = []
    for sid, status in events:
        form = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                "AccountSid": "AC" + "b" * 32, "From": "+15005550006", "To": "+919700000000",
                "ApiVersion": "2010-04-01"}
        if status in ("failed", "undelivered"):
            form["ErrorCode"] = "30003"
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "X-Twilio-Signature": validator.compute_signature(public + PATH, form)}
        requests.append((urlencode(form).encode(), headers))
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    url = base + PATH

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal errors
        while True:
            try:
                body, headers = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            async with http.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return seconds, latencies, errors


def _post_all_sync(base: str, public: str, token: str, events: list[tuple[str, str]],
                   concurrency: int) -> tuple[float, list[float], int]:
    return asyncio.run(post_all(base, public, token, events, concurrency))


async def main(n: int, concurrency: int, seed_value: int) -> dict[str, object]:
    configure("warning", "json")
    async with bench_database() as url:
        env = {"ONBOARDD_DATABASE_URL": url,
               "ONBOARDD_AUTH_JWT_SECRET": "bench-" + "x" * 40,
               "ONBOARDD_PII_KEY": base64.b64encode(b"b" * 32).decode(),
               "ONBOARDD_PATHS_STATE_DIR": tempfile.gettempdir(),
               "ONBOARDD_SIMULATOR_ENABLED": "true"}
        cfg = load(None, env)
        pool = await create_pool(cfg, url, min_size=2, max_size=8)
        try:
            services = Services(cfg=cfg, pool=pool, cipher=cipher_from_config(cfg),
                                tokens=codec_from_config(cfg))
            # Each message gets 2 callbacks on average, plus 10 % duplicates.
            campaign, sids = await seed(services, max(1, round(n / 2.2)))
            events, truth = plan_events(sids, random.Random(seed_value))
            services.public_base_url = "https://hooks.example.com"
            stopping = asyncio.Event()
            recorder = asyncio.create_task(status_recorder.run(services, stopping))
            try:
                async with served(create_app(services)) as base:
                    # The clients run in another process, as Twilio would, so they do not
                    # take the server's event loop.
                    loop = asyncio.get_running_loop()
                    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")
                                             ) as pool_exec:
                        seconds, latencies, errors = await loop.run_in_executor(
                            pool_exec, _post_all_sync, base, services.public_base_url,
                            twilio_auth_token(services), events, concurrency)
            finally:
                stopping.set()
                await recorder
            rows = await pool.fetch(
                "SELECT twilio_message_sid, status FROM invitation_messages WHERE campaign_id = $1",
                campaign)
            wrong = sum(1 for r in rows if r["status"] != truth[r["twilio_message_sid"]])
            counters = await db.recount(pool, campaign)
        finally:
            await pool.close()
    latencies.sort()
    result: dict[str, object] = {
        "messages": len(sids),
        "events": len(events),
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "events_per_s": round(len(events) / seconds, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 2),
        "http_errors": errors,
        "wrong_final_status": wrong,
        "counters": counters.stored,
        "final_state_correct": wrong == 0 and errors == 0 and counters.equal,
    }
    assert delivery.merge_status("sent", "delivered") == "delivered"
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000,
                        help="about how many callbacks to post (default 2000)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    figures = asyncio.run(main(args.events, args.concurrency, args.seed))
    for key, value in figures.items():
        print(f"{key:>22}: {value}")
    print(msgspec.json.encode(figures).decode())
