"""Chaos benchmark: 3 daemons on one PostgreSQL, killed and restarted while they work.

    .venv/bin/python tests/bench/bench_chaos.py --quick   # 2k customers, 5k rows, 500 users
    .venv/bin/python tests/bench/bench_chaos.py           # 20k customers, 50k rows, 5k users

Starts a dedicated PostgreSQL (pgserver's binaries, its data in a temporary directory), the
Twilio simulator in a process of its own (`python -m onboardd simulator`: no rate enforcement,
so the windows are measured rather than enforced; 20 ms latency; status callbacks on) and N
`python -m onboardd serve` daemons in real-Twilio mode pointed at it, sharing one sender limit
(`[twilio] whatsapp_rate_per_s`, 100/s). The simulator posts its callbacks to one public URL: a
front in this process that hands each to a daemon that is up, as a load balancer would.

All at once: a WhatsApp campaign to every customer of one salon (one sender), a CSV import of
the given rows (every 25th row an invalid number) uploaded and confirmed through the API into
another salon, and the registration of some of the campaign's customers as app users (one
INSERT INTO users each, at a steady rate), each to be matched to its salon's offer. While that
runs it kills -9 a random daemon every 5-10 s (starting it again at once) and restarts
PostgreSQL once (pg_ctl stop -m immediate, down 4 s, start), until the work is done or the
chaos time is over; then it waits, without chaos, for the work to finish.

Prints progress lines, then a JSON last line: lost (customers of the campaign's audience, as
frozen at the send, never messaged; a customer who registered before the send is not in it),
duplicated (messaged more than once), max_stall_s (the longest gap between message arrivals at the
simulator while a daemon was up and messages were unsent), worst_window_per_sender (most
arrivals from each sender number in any one-second window, stamped by the simulator's handler
when it accepts the request, read back from its /_sim/messages) against limit_per_s, with when
it was and every burst over the limit, final_counters_equal_recount, import (exactly_once:
completed, customers == valid rows == successfulImports), registrations (matched_once: every
user linked to one customer and granted one offer, every event processed), elapsed_s, kills,
the daemons' error events, simulator_cpu_share (its CPU seconds over the run's length: how idle
the stamping process was), simulator_priority (it runs at nice -10 when allowed: see
tests/serving.py) and machine (with the 1-minute load average during the run).
Everything it starts is stopped on exit, Ctrl-C and SIGTERM included; --keep DIR keeps the
data directory, the daemons' and the simulator's logs, and arrivals.json (every arrival's
stamp, sender and sid, and the t0 the t= figures count from).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import random
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from onboardd.auth import codec_from_config
from onboardd.config import load
from onboardd.db.delivery import recount
from onboardd.logging import configure
from onboardd.pii import cipher_from_config
from tests.bench.chaos_cluster import Fleet, Postgres, front, log_problems
from tests.bench.chaos_figures import max_stall, per_recipient, windows_over, worst_window
from tests.bench.chaos_work import customers_csv, import_file, register, retrying, start_campaign
from tests.bench.support import machine, migrated_database
from tests.campaign_support import add_customers, add_offer, add_salon, phone
from tests.conftest import daemon_env
from tests.serving import Arrival, simulator_process


@dataclass(frozen=True)
class Plan:
    customers: int = 20_000
    rows: int = 50_000
    registrations: int = 5_000
    registrations_per_s: float = 100.0
    daemons: int = 3
    limit_per_s: float = 100.0
    kill_every_s: tuple[float, float] = (5.0, 10.0)
    pg_restart_after_s: float = 60.0  # after the campaign starts
    pg_down_s: float = 4.0
    chaos_s: float = 300.0  # longest chaos, from the campaign's start
    settle_s: float = 300.0  # longest wait for the work to finish afterwards
    seed: int = 1


QUICK = Plan(customers=2_000, rows=5_000, registrations=500, registrations_per_s=50.0,
             pg_restart_after_s=8.0, chaos_s=60.0, settle_s=200.0)


@dataclass
class Progress:
    """What the monitor last read from the database (None before the first read)."""

    unsent: int | None = None
    import_status: str | None = None
    import_processed: int = 0
    unmatched: int | None = None
    registered: int = 0
    batch_id: str | None = None
    campaign_id: str | None = None
    notes: list[str] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)  # 1-minute load average, every 5 s


async def monitor(pool: asyncpg.Pool, seen: Progress) -> None:
    """Read the work left every second."""
    while True:
        with contextlib.suppress(Exception):
            row = await pool.fetchrow(
                """SELECT (SELECT count(*) FROM invitation_messages WHERE campaign_id = $1
                             AND status IN ('pending', 'sending')) AS unsent,
                          b.status, b.processed,
                          (SELECT count(*) FROM registration_events
                           WHERE processed_at IS NULL) AS unmatched
                   FROM (SELECT 1) one
                   LEFT JOIN customer_import_batches b ON b.id = $2""",
                seen.campaign_id, seen.batch_id)
            if row is not None:
                seen.unsent, seen.import_status = row["unsent"], row["status"]
                seen.import_processed, seen.unmatched = row["processed"] or 0, row["unmatched"]
        await asyncio.sleep(1.0)


def finished(seen: Progress, plan: Plan) -> bool:
    return (seen.unsent == 0 and seen.import_status in ("completed", "failed")
            and seen.registered == plan.registrations and seen.unmatched == 0)


async def chaos(fleet: Fleet, pg: Postgres, plan: Plan, rng: random.Random,
                started: float, seen: Progress) -> None:
    """kill -9 a random daemon every few seconds (started again at once); PostgreSQL once."""
    def note(text: str) -> None:
        fleet.say(text)
        seen.notes.append(f"{text} at t={time.time() - fleet.t0:.1f} s")

    async def pg_restart() -> None:
        await asyncio.sleep(max(0.0, started + plan.pg_restart_after_s - time.time()))
        note("postgres stopped (immediate)")
        await pg.restart(plan.pg_down_s)
        note("postgres started")

    restart = asyncio.get_running_loop().create_task(pg_restart())
    try:
        while time.time() - started < plan.chaos_s and not finished(seen, plan):
            await asyncio.sleep(rng.uniform(*plan.kill_every_s))
            if not pg.up:
                continue
            slot = await fleet.kill_random(rng)
            if slot is not None:
                fleet.start_soon(slot)
        await restart  # the restart happens even when the work finished first
    finally:
        restart.cancel()


def progress_line(t: float, sent: int, last: int, every: float, fleet: Fleet, pg: Postgres,
                  seen: Progress, plan: Plan) -> str:
    return (f"t={t:6.1f}s sent={sent}/{plan.customers} ({(sent - last) / every:.0f}/s) "
            f"unsent={seen.unsent} up={len(fleet.ready())}/{plan.daemons} kills={fleet.kills} "
            f"pg={'up' if pg.up else 'DOWN'} import={seen.import_status}:"
            f"{seen.import_processed}/{plan.rows} registered={seen.registered} "
            f"unmatched={seen.unmatched}")


async def figures(pool: asyncpg.Pool, sim_records: list[Arrival], phone_of: dict[str, str],
                  fleet: Fleet, seen: Progress, started: float, ended: float, valid_rows: int,
                  plan: Plan) -> dict[str, Any]:
    """The JSON figures, from the simulator's messages and the database."""
    counts = per_recipient(r.to for r in sim_records)
    campaign, batch = seen.campaign_id, seen.batch_id
    # The audience frozen at the send: a customer who registered before it is not invited.
    frozen = await retrying(lambda: pool.fetch(
        "SELECT imported_customer_id AS id FROM invitation_messages WHERE campaign_id = $1",
        campaign))
    audience = [phone_of[r["id"]] for r in frozen]
    lost = sum(1 for p in audience if counts[p] == 0)
    by_sender: dict[str, list[float]] = {}
    for record in sim_records:
        by_sender.setdefault(record.from_, []).append(record.arrived_at)
    windows = {k: worst_window(v) for k, v in by_sender.items()}
    arrivals = sorted(r.arrived_at for r in sim_records)
    stall, stall_at = max_stall(arrivals, started, ended, fleet.spans(), all_sent=lost == 0)
    statuses = {r["status"]: r["count"] for r in await retrying(lambda: pool.fetch(
        "SELECT status, count(*) FROM invitation_messages WHERE campaign_id = $1 "
        "GROUP BY status", campaign))}
    counters = await retrying(lambda: recount(pool, str(campaign)))
    imp = await retrying(lambda: pool.fetchrow(
        """SELECT b.status, b.total_records, b.successful_imports, b.failed_imports,
                  b.duplicate_skipped,
                  (SELECT count(*) FROM imported_customers c WHERE c.import_batch_id = b.id)
                      AS customers
           FROM customer_import_batches b WHERE b.id = $1""", batch))
    reg = await retrying(lambda: pool.fetchrow(
        """SELECT count(*) AS users,
                  count(*) FILTER (WHERE l.n = 1) AS linked_once,
                  count(*) FILTER (WHERE g.n = 1) AS granted_once,
                  (SELECT count(*) FROM registration_events) AS events,
                  (SELECT count(*) FROM registration_events WHERE processed_at IS NULL)
                      AS unprocessed
           FROM users u
           CROSS JOIN LATERAL (SELECT count(*) AS n FROM imported_customers c
                               WHERE c.linked_user_id = u.id) l
           CROSS JOIN LATERAL (SELECT count(*) AS n FROM welcome_offer_redemptions r
                               WHERE r.user_id = u.id) g
           WHERE u.id LIKE 'chaos-user-%'"""))
    problems, examples = log_problems(fleet.log_paths())
    return {
        "audience": len(audience),
        "registered_before_the_send": len(phone_of) - len(audience),
        "lost": lost,
        "duplicated": sum(1 for p in audience if counts[p] > 1),
        "messaged_outside_audience": sum(1 for p in set(phone_of.values()) - set(audience)
                                         if counts[p]),
        "max_stall_s": round(stall, 1),
        "max_stall_began_at_s": round(stall_at - fleet.t0, 1),
        "campaign_started_at_s": round(started - fleet.t0, 1),
        "worst_window_per_sender": {k: n for k, (n, _) in windows.items()},
        "worst_window_at_s": {k: round(at - fleet.t0, 1) for k, (_, at) in windows.items()},
        "bursts_over_limit": {k: [(round(at - fleet.t0, 1), n)
                                  for at, n in windows_over(v, plan.limit_per_s)][:20]
                              for k, v in by_sender.items()},
        "limit_per_s": plan.limit_per_s,
        "final_counters_equal_recount": counters.equal,
        "counters": counters.stored,
        "recount": counters.recount,
        "messages": statuses,
        "sending_s": round(arrivals[-1] - arrivals[0], 1) if arrivals else 0.0,
        "import": {**dict(imp or {}), "rows": plan.rows, "valid_rows": valid_rows,
                   "exactly_once": imp is not None and imp["status"] == "completed"
                   and imp["customers"] == valid_rows == imp["successful_imports"]},
        "registrations": {**dict(reg or {}), "matched_once": reg is not None
                          and reg["users"] == reg["linked_once"] == reg["granted_once"]
                          == reg["events"] == plan.registrations and reg["unprocessed"] == 0},
        "kills": fleet.kills,
        "kill_times_s": [round(t - fleet.t0, 1) for t in fleet.kill_times],
        "daemon_incarnations": sum(s.incarnations for s in fleet.slots),
        "daemon_ready_s_max": round(max(fleet.ready_s, default=0.0), 1),
        "daemon_exits": fleet.exits,
        "daemon_errors": dict(problems.most_common(12)),
        "daemon_error_examples": {k: v for k, v in examples.items() if k in
                                  dict(problems.most_common(6))},
        "notes": seen.notes,
        "machine": {**machine(), "load_1m_max": round(max(seen.loads, default=0.0), 2),
                    "load_1m_mean": round(sum(seen.loads) / max(1, len(seen.loads)), 2)},
    }


async def run(plan: Plan, pg: Postgres, root: Path, log_level: str) -> dict[str, Any]:
    """The whole benchmark on a started PostgreSQL; the daemons are killed on the way out."""
    configure("warning", "json")
    rng = random.Random(plan.seed)
    async with migrated_database(pg.uri, "chaos", keep=True) as url:
        base_cfg = load(None, daemon_env(url, root / "state"))
        cipher, tokens = cipher_from_config(base_cfg), codec_from_config(base_cfg)
        # No connection floor to restore while PostgreSQL restarts: connections are opened as
        # the benchmark's queries need them.
        pool = await asyncpg.create_pool(url, min_size=0, max_size=4)
        assert pool is not None
        salon = await add_salon(pool, "Chaos Salon")
        offer = await add_offer(pool, salon)
        import_salon = await add_salon(pool, "Import Salon")
        phones = [phone(i) for i in range(plan.customers)]
        phone_of = dict(zip(await add_customers(pool, cipher, salon, phones), phones,
                            strict=True))
        registering = rng.sample(phones, plan.registrations)
        data, valid_rows = customers_csv(plan.rows)
        token = secrets.token_urlsafe(24)
        async with simulator_process(root, token, rate_per_s=0, latency_ms=20,
                                     callback_workers=32, callback_max_attempts=20,
                                     callback_retry_delay_ms=1000, callback_timeout_s=10
                                     ) as sim, aiohttp.ClientSession() as sim_http:
            def env_for(n: int) -> dict[str, str]:
                return daemon_env(
                    url, root / f"state{n}",
                    ONBOARDD_TWILIO_ACCOUNT_SID=sim.account_sid,
                    ONBOARDD_TWILIO_AUTH_TOKEN=token, ONBOARDD_TWILIO_API_BASE_URL=sim.url,
                    ONBOARDD_SIMULATOR_ENABLED="false",
                    ONBOARDD_TWILIO_WHATSAPP_RATE_PER_S=f"{plan.limit_per_s:g}",
                    ONBOARDD_IMPORT_MAX_ROWS=str(max(plan.rows, 10_000)),
                    ONBOARDD_IMPORT_MAX_FILE_BYTES=str(max(len(data) * 2, 5 << 20)),
                    ONBOARDD_DATABASE_START_RETRY_S="60", ONBOARDD_LOG_LEVEL=log_level)

            fleet = Fleet(env_for, root, plan.daemons)
            tasks: list[asyncio.Task[Any]] = []
            try:
                async with front(fleet) as public_url:
                    for slot in fleet.slots:
                        slot.env["ONBOARDD_HTTP_PUBLIC_BASE_URL"] = public_url
                    await fleet.start_all()
                    print(f"{plan.daemons} daemons ready (slowest start "
                          f"{max(fleet.ready_s):.1f} s); starting the work", flush=True)
                    headers = {"Authorization": "Bearer " + tokens.encode(
                        "admin-1", "admin", [salon, import_salon], 24 * 3600)}
                    seen = Progress()
                    loop = asyncio.get_running_loop()
                    async with aiohttp.ClientSession(headers=headers) as http:
                        t0 = fleet.t0 = time.time()
                        tasks.append(loop.create_task(fleet.watch()))
                        tasks.append(loop.create_task(
                            register(pool, registering, plan.registrations_per_s,
                                     functools.partial(setattr, seen, "registered"))))
                        (seen.campaign_id, started), seen.batch_id = await asyncio.gather(
                            start_campaign(http, fleet, salon, offer),
                            import_file(http, fleet, import_salon, data))
                    tasks.append(loop.create_task(monitor(pool, seen)))
                    tasks.append(loop.create_task(chaos(fleet, pg, plan, rng, started, seen)))
                    last, every = 0, 5.0
                    while not (finished(seen, plan) and tasks[-1].done()):
                        if time.time() - started > plan.chaos_s + plan.settle_s:
                            seen.notes.append("gave up waiting: work left")
                            break
                        failed = tasks[-1].exception() if tasks[-1].done() else None
                        if failed is not None:
                            raise failed
                        await asyncio.sleep(every)
                        sent = await sim.stored(sim_http)
                        seen.loads.append(os.getloadavg()[0])
                        print(progress_line(time.time() - t0, sent, last, every, fleet, pg,
                                            seen, plan), flush=True)
                        last = sent
                    ended = time.time()
                    result = {"elapsed_s": round(ended - t0, 1), "completed": finished(
                        seen, plan)}
            finally:
                for task in tasks:
                    task.cancel()
                fleet.kill_all()
            listed = time.monotonic()
            result["simulator_cpu_share"] = round(sim.cpu_s() / (ended - t0), 2)
            result["simulator_priority"] = sim.priority
            records = await sim.arrivals(sim_http)
            print(f"listed {len(records)} messages from the simulator in "
                  f"{time.monotonic() - listed:.1f} s", flush=True)
            # For a look at a burst afterwards (--keep): each arrival, and what t= counts from.
            (root / "arrivals.json").write_bytes(msgspec.json.encode(
                {"t0": fleet.t0, "arrivals": [(r.arrived_at, r.from_, r.sid) for r in records]}))
            result.update(await figures(pool, records, phone_of, fleet, seen, started, ended,
                                        valid_rows, plan))
            await pool.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="2k customers, 5k rows, 500 registrations, shorter chaos")
    parser.add_argument("--daemons", type=int)
    parser.add_argument("--customers", type=int)
    parser.add_argument("--chaos-s", type=float)
    parser.add_argument("--settle-s", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--log-level", default="warning", choices=["info", "warning"],
                        help="the daemons' log level (their logs are read for errors)")
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it")
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    overrides = {k: v for k, v in {"daemons": args.daemons, "customers": args.customers,
                                   "chaos_s": args.chaos_s, "settle_s": args.settle_s,
                                   "seed": args.seed}.items() if v is not None}
    plan = replace(plan, **overrides)
    plan = replace(plan, registrations=min(plan.registrations, plan.customers))
    root = args.keep or Path(tempfile.mkdtemp(prefix="onboardd-chaos-"))
    root.mkdir(parents=True, exist_ok=True)
    # SIGTERM as Ctrl-C (SIGINT too when a shell started us in the background with it
    # ignored): the finally blocks below stop the daemons and PostgreSQL.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    pg: Postgres | None = None
    try:
        pg = Postgres(root / "pg")
        figures_ = asyncio.run(run(plan, pg, root, args.log_level))
    except KeyboardInterrupt:
        print("interrupted: stopping the daemons and PostgreSQL", flush=True)
        return 130
    finally:
        if pg is not None:
            pg.stop("fast")
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}", flush=True)
    for key, value in figures_.items():
        print(f"{key:>30}: {value}")
    print(msgspec.json.encode(figures_).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
