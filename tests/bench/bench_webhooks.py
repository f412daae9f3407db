"""Benchmark: signed Twilio status callbacks through the web front and the status recorder.

    .venv/bin/python tests/bench/bench_webhooks.py --events 2000 --concurrency 64

Creates N/2.2 accepted messages, then posts about N status callbacks (each message's true
sequence, interleaved at random, 5 % of adjacent pairs swapped out of order, 10 % of
callbacks repeated) with C concurrent clients, signed like Twilio. The same client posts the
same requests to a floor: a bare aiohttp handler in this process that only checks the Twilio
signature with twilio's RequestValidator and answers 200, so the figure is read against what
this machine does in this run (machines differ by 2x or more from run to run). The two take
turns in rounds (floor, durable, floor, ..., floor; --rounds durable ones, each on the next
part of the events, the floors either side on the same part), so load that comes and goes on
a shared machine falls on both alike.

A callback is answered once it is durable in the status inbox; the status folder applies the
inbox to the messages meanwhile (both actors run as in the daemon). After each durable round
the bench waits for the inbox to be empty (so the folder's backlog does not slow the next
floor round), and at the end checks the messages.

Prints figures, then a JSON last line with events_per_s, p50_ms, p99_ms (durable rounds
pooled), floor_events_per_s, floor_p99_ms, ratio (durable events per second over the floor's,
the rounds pooled; the target is >= 0.5 with p99 < 100 ms), round_ratios (each durable round
against the floors either side), ratio_vs_best_floor (against the fastest floor round),
cpu_us_per_event and floor_cpu_us_per_event (CPU per event of this process, the client process
and PostgreSQL), inbox_rows_at_end (answered but not yet applied when each round's last answer
came), inbox_drain_s (the longest it took to apply those), machine (nproc, CPU model) and
final_state_correct (every message in its true final status and the campaign counters equal to
a recount). Uses ONBOARDD_TEST_DATABASE_URL or an embedded PostgreSQL in a temporary
directory.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from aiohttp import web
from twilio.request_validator import RequestValidator

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from onboardd.actors import status_folder, status_recorder
from onboardd.auth import codec_from_config
from onboardd.config import load
from onboardd.daemon import settle_heap
from onboardd.db import delivery as db
from onboardd.db import status_inbox as inbox_db
from onboardd.db.pool import create_pool
from onboardd.domain.status_events import SendOutcome, StatusCallback
from onboardd.logging import configure
from onboardd.pii import cipher_from_config
from onboardd.runtime import Services
from onboardd.web.app import create_app
from onboardd.web.webhooks import twilio_auth_token
from tests.bench.support import bench_database, cpu_seconds, cpu_used, machine
from tests.bench.webhook_client import PATH, post_all_sync
from tests.serving import served

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


def floor_app(token: str, public: str) -> web.Application:
    """The floor: a bare aiohttp handler that checks the Twilio signature and answers 200."""
    validator = RequestValidator(token)

    async def handler(request: web.Request) -> web.Response:
        form = await request.post()
        if not validator.validate(public + request.path_qs, form,
                                  request.headers.get("X-Twilio-Signature", "")):
            return web.Response(status=403)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post(PATH, handler)
    return app


@dataclass(frozen=True, slots=True)
class Run:
    """One round of posts: events, seconds, latencies (ms), HTTP errors, CPU seconds used by
    kind of process (tests.bench.support.cpu_seconds)."""

    events: int
    seconds: float
    latencies: list[float]
    errors: int
    cpu: dict[str, float]


def latency_figures(prefix: str, seconds: float, latencies: list[float], errors: int,
                    events: int) -> dict[str, object]:
    """events_per_s, p50_ms, p99_ms (and http_errors) of one run, names prefixed."""
    latencies = sorted(latencies)
    return {
        f"{prefix}events_per_s": round(events / seconds, 1),
        f"{prefix}p50_ms": round(statistics.median(latencies), 2),
        f"{prefix}p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
                                 2),
        f"{prefix}http_errors": errors,
    }


def split_rounds(events: list[tuple[str, str]], rounds: int) -> list[list[tuple[str, str]]]:
    """The events in `rounds` consecutive parts of (nearly) equal size, in order: posted one
    part after the other, every message's callbacks still arrive in the planned order."""
    size = -(-len(events) // rounds)
    return [events[lo:lo + size] for lo in range(0, len(events), size)]


def ratio_figures(floors: list[Run], durables: list[Run]) -> dict[str, object]:
    """The durable path against the floor, over interleaved rounds (floor, durable, floor, ...,
    floor): `ratio` pools them (all durable events over all durable seconds, against the same
    for the floor runs); `round_ratios` sets each durable round against the mean of the floors
    either side of it; `ratio_vs_best_floor` against the fastest floor round (the strictest)."""
    def rate(run: Run) -> float:
        return run.events / run.seconds

    floor_rate = sum(r.events for r in floors) / sum(r.seconds for r in floors)
    durable_rate = sum(r.events for r in durables) / sum(r.seconds for r in durables)
    return {
        "ratio": round(durable_rate / floor_rate, 3),
        "round_ratios": [round(rate(d) / ((rate(before) + rate(after)) / 2), 3)
                         for d, before, after in zip(durables, floors, floors[1:],
                                                     strict=False)],
        "ratio_vs_best_floor": round(durable_rate / max(rate(r) for r in floors), 3),
        "floor_runs_events_per_s": [round(rate(r), 1) for r in floors],
        "durable_runs_events_per_s": [round(rate(r), 1) for r in durables],
    }


def pooled(prefix: str, runs: list[Run]) -> dict[str, object]:
    """events_per_s, p50_ms, p99_ms, http_errors and CPU per event over runs, names prefixed."""
    events = sum(r.events for r in runs)
    figures = latency_figures(prefix, sum(r.seconds for r in runs),
                              [ms for r in runs for ms in r.latencies],
                              sum(r.errors for r in runs), events)
    figures[f"{prefix}cpu_us_per_event"] = {
        kind: round(sum(r.cpu[kind] for r in runs) * 1e6 / events, 1) for kind in runs[0].cpu}
    return figures


async def main(n: int, concurrency: int, seed_value: int, rounds: int, client: str
               ) -> dict[str, object]:
    configure("warning", "json")
    async with bench_database() as url:
        env = {"ONBOARDD_DATABASE_URL": url,
               "ONBOARDD_AUTH_JWT_SECRET": "bench-" + "x" * 40,
               "ONBOARDD_PII_KEY": base64.b64encode(b"b" * 32).decode(),
               "ONBOARDD_PATHS_STATE_DIR": tempfile.gettempdir(),
               "ONBOARDD_SIMULATOR_ENABLED": "true",
               "ONBOARDD_RATELIMIT_ENABLED": "false"}  # one address, as fast as it can
        cfg = load(None, env)
        pool = await create_pool(cfg, url, min_size=2, max_size=8)
        try:
            services = Services(cfg=cfg, pool=pool, cipher=cipher_from_config(cfg),
                                tokens=codec_from_config(cfg))
            # Each message gets 2 callbacks on average, plus 10 % duplicates.
            campaign, sids = await seed(services, max(1, round(n / 2.2)))
            events, truth = plan_events(sids, random.Random(seed_value))
            services.public_base_url = "https://hooks.example.com"
            token = twilio_auth_token(services)
            loop = asyncio.get_running_loop()
            # The clients run in another process, as Twilio would, so they do not take the
            # server's event loop; the same process posts to the floor and the durable path.
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")
                                     ) as clients:

                async def post(app: web.Application, posted: list[tuple[str, str]]) -> Run:
                    async with served(app) as base:
                        before = cpu_seconds()
                        seconds, latencies, errors = await loop.run_in_executor(
                            clients, post_all_sync, base, services.public_base_url, token,
                            posted, concurrency, client)
                        return Run(len(posted), seconds, latencies, errors,
                                   cpu_used(before, cpu_seconds()))

                def floor() -> web.Application:
                    return floor_app(token, services.public_base_url)

                # Settled first: the seed's rows analysed (no autovacuum during the runs), the
                # client process started and warmed up.
                await pool.execute("VACUUM ANALYZE invitation_messages")
                # The process as `onboardd serve` has it once started (the floor runs in it
                # too): start-up, here the seed as well, frozen out of the garbage collector.
                settle_heap()
                await post(floor(), events[:1000])
                # Floor and durable rounds take turns (F D F ... D F), each round on the next
                # part of the events (the floor's on the same part): load that comes and goes
                # on the machine falls on both alike.
                parts = split_rounds(events, rounds)
                floors: list[Run] = []
                durables: list[Run] = []
                left_at_end: list[int] = []
                drain_s: list[float] = []
                stopping = asyncio.Event()
                recorder = asyncio.create_task(status_recorder.run(services, stopping))
                folder = asyncio.create_task(status_folder.run(services, stopping))
                try:
                    for part in parts:
                        floors.append(await post(floor(), part))
                        durables.append(await post(create_app(services), part))
                        # Durable (answered) but maybe not applied yet: the folder's backlog,
                        # applied before the next round so it does not slow that one down.
                        left_at_end.append((await inbox_db.depth(pool))[0])
                        drain_started = time.perf_counter()
                        while (await inbox_db.depth(pool))[0]:
                            await asyncio.sleep(0.005)
                        drain_s.append(time.perf_counter() - drain_started)
                finally:
                    stopping.set()
                    await recorder
                    await folder
                floors.append(await post(floor(), parts[-1]))
            rows = await pool.fetch(
                "SELECT twilio_message_sid, status FROM invitation_messages WHERE campaign_id = $1",
                campaign)
            wrong = sum(1 for r in rows if r["status"] != truth[r["twilio_message_sid"]])
            counters = await db.recount(pool, campaign)
        finally:
            await pool.close()
    errors = sum(r.errors for r in durables)
    return {
        "messages": len(sids),
        "events": len(events),
        "concurrency": concurrency,
        "client": client,
        "rounds": len(parts),
        "seconds": round(sum(r.seconds for r in durables), 3),
        **pooled("", durables),
        **pooled("floor_", floors),
        **ratio_figures(floors, durables),
        "inbox_rows_at_end": left_at_end,
        "inbox_drain_s": round(max(drain_s), 3),
        "machine": machine(),
        "wrong_final_status": wrong,
        "counters": counters.stored,
        "final_state_correct": wrong == 0 and errors == 0 and counters.equal,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000,
                        help="about how many callbacks to post (default 2000)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=4,
                        help="durable rounds, each between two floor rounds (default 4)")
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw",
                        help="what posts the callbacks: raw HTTP/1.1 (default: the lightest, "
                        "so the figures are the server's) or aiohttp's client")
    args = parser.parse_args()
    figures = asyncio.run(main(args.events, args.concurrency, args.seed, args.rounds,
                               args.client))
    for key, value in figures.items():
        print(f"{key:>22}: {value}")
    print(msgspec.json.encode(figures).decode())
