"""Analytics benchmark: GET /analytics on a platform-sized database, and whether it grows.

    .venv/bin/python tests/bench/bench_analytics.py --salons 2000 --customers 500 --big 100000
    .venv/bin/python tests/bench/bench_analytics.py --salons 40 --customers 100 --big 3000 \\
        --small-salons 4 --calls 30 --big-calls 10          # a quick smoke run

Builds, with set-based SQL after the migrations (their indexes in place), a platform of
SALONS salons x CUSTOMERS imported customers plus one salon of BIG customers, in the shape the
actors leave behind: three campaigns per salon (about 110, 60 and 20 days ago) inviting about
one message per customer (mostly delivered or read, some sent without a report, failed,
undelivered or skipped), a quarter of the customers registered after a delivered message (a
users row, linked_user_id, registered_at), every registration granted the salon's welcome
offer and a tenth of the customers redeeming it, and bookings by registered users (a few
before registering, most after). Then VACUUM (ANALYZE), the steady state autovacuum keeps.

It serves the real app in a child process (the daemon's pool sizes, an admin token per salon)
and times GET /api/salons/{id}/analytics with the default window (the last 90 days), after
warm-up calls (connections, caches, and prepared statements past PostgreSQL's switch to
generic plans after 5 executions, should the analytics reads ever stop forcing them):

- ``ordinary``: CALLS distinct random ordinary salons, one call each;
- ``big_salon``: BIG_CALLS calls for the big salon;
- ``small_platform``: the same ordinary-salon calls on a platform 100x smaller (SMALL_SALONS x
  CUSTOMERS, another database on the same server, built in the same run). Its p95 is the floor
  the ordinary p95 is compared with: their ratio shows whether a salon's report costs more
  when the platform holds more salons;
- ``http_floor``: GET /api/salons/{id}/welcome-offers (token check, salon check, one tiny
  query), what any request costs;
- ``export``: GET /analytics/export.xlsx for the big salon (seconds to the last byte, and the
  serving process's peak RSS) when the app has that route; null otherwise;
- context: ``machine.pg_cpu_probe_ms`` (PostgreSQL counting a million generated rows, to
  compare machines) and ``big_salon_scan_ms`` (one index-only pass over the big salon's
  customers and messages, the least an exact report of it reads).

Prints figures, then one JSON line with the figures, the targets and whether each is met.
Uses ONBOARDD_TEST_DATABASE_URL's server if set, else an embedded PostgreSQL in a temporary
directory (or in --keep DIR, left there afterwards for EXPLAIN sessions).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec

# Run as a script from anywhere: the repository root must be importable (tests.*).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from onboardd.auth import TokenCodec
from onboardd.config import load
from onboardd.logging import configure
from onboardd.pii import cipher_from_config
from tests.bench.support import bench_server, migrated_database

SECRET = "bench-secret-" + "x" * 40
PII_KEY = base64.b64encode(b"a" * 32).decode()
PHONES = 1000  # distinct encrypted phones, reused (phone_hash stays unique per customer)
TABLES = ("salons", "welcome_offers", "invitation_campaigns", "users", "imported_customers",
          "invitation_messages", "bookings", "welcome_offer_redemptions")
REGISTERED_SHARE = 0.25
REDEEMED_SHARE = 0.10
TARGETS = {"ordinary_p95_ms": 50.0, "platform_growth_ratio": 1.5, "big_salon_p95_ms": 300.0,
           "export_s": 15.0, "export_peak_rss_mb": 150.0}


def salon_id(no: int) -> str:
    """Salon no's id, as the load's md5('salon-' || no)::uuid::text makes it (0: the big one)."""
    digest = hashlib.md5(f"salon-{no}".encode(), usedforsecurity=False).hexdigest()
    return str(uuid.UUID(digest))


# -- building a platform ------------------------------------------------------------------------

# Each statement runs on one connection, in order; $1.. are bound per statement (see _build).
# Decisions are drawn once into temporary tables, so the rows that depend on one another agree
# (a registration follows a delivered message, a redemption's booking exists, ...).
PLAN = [
    ("plan salons", """
CREATE TEMP TABLE b_salon AS
SELECT s AS no, md5('salon-' || s)::uuid::text AS id,
       CASE WHEN s = 0 THEN $2::int ELSE $3::int END AS n
FROM generate_series(CASE WHEN $2::int > 0 THEN 0 ELSE 1 END, $1::int) s"""),
    # Three campaigns per salon, about 110, 60 and 20 days ago (+-10 days).
    ("plan campaigns", """
CREATE TEMP TABLE b_campaign AS
SELECT s.no AS salon_no, s.id AS salon_id, j,
       md5('campaign-' || s.no || '-' || j)::uuid::text AS id,
       now() - make_interval(days => (ARRAY[110, 60, 20])[j])
           + (random() - 0.5) * interval '20 days' AS started_at
FROM b_salon s CROSS JOIN generate_series(1, 3) j"""),
    # Customer k is targeted by campaign 1 (k % 10 in 0..3), 2 (2..5, so 2 and 3 get two
    # messages) or 3 (6, 7); 8 and 9 are never invited.
    ("plan customers", """
CREATE TEMP TABLE b_customer AS
SELECT s.no AS salon_no, s.id AS salon_id, k,
       md5('customer-' || s.no || '-' || k)::uuid::text AS id,
       CASE WHEN k % 10 < 4 THEN 1 WHEN k % 10 < 6 THEN 2 WHEN k % 10 < 8 THEN 3 END AS first_j,
       random() AS r_created, random() AS r_register
FROM b_salon s CROSS JOIN LATERAL generate_series(1, s.n) k"""),
    ("plan messages", """
CREATE TEMP TABLE b_message AS
SELECT q.*,
       CASE WHEN q.r < 0.40 THEN 'delivered' WHEN q.r < 0.78 THEN 'read'
            WHEN q.r < 0.86 THEN 'sent' WHEN q.r < 0.90 THEN 'undelivered'
            WHEN q.r < 0.95 THEN 'failed' ELSE 'skipped' END AS status
FROM (
    SELECT md5('message-' || c.id || '-' || ca.j)::uuid::text AS id, c.id AS customer_id,
           c.salon_no, c.salon_id, ca.id AS campaign_id, ca.started_at,
           ca.started_at + random() * interval '6 hours' AS at,
           random() * interval '10 minutes' AS delivery_delay,
           random() * interval '2 days' AS read_delay,
           random() AS r
    FROM b_customer c
    JOIN b_campaign ca ON ca.salon_no = c.salon_no
     AND ((ca.j = 1 AND c.k % 10 < 4) OR (ca.j = 2 AND c.k % 10 BETWEEN 2 AND 5)
          OR (ca.j = 3 AND c.k % 10 IN (6, 7)))
    OFFSET 0
) q"""),
    # A quarter of the customers register (only ones with a delivered message), 2 minutes to
    # 30 days after their first delivered message, most of them early.
    ("plan registrations", """
CREATE TEMP TABLE b_reg AS
SELECT d.customer_id, d.salon_no, d.salon_id,
       md5('user-' || d.customer_id)::uuid::text AS user_id,
       least(d.first_at + interval '2 minutes' + power(random(), 3) * interval '30 days',
             now() - interval '1 minute') AS registered_at
FROM (
    SELECT m.customer_id, m.salon_no, m.salon_id, min(m.at) AS first_at
    FROM b_message m WHERE m.status IN ('delivered', 'read')
    GROUP BY 1, 2, 3
) d JOIN b_customer c ON c.id = d.customer_id
ORDER BY c.r_register
LIMIT (SELECT round(count(*) * $1::float8) FROM b_customer)"""),
    ("plan redemptions", """
CREATE TEMP TABLE b_redeem AS
SELECT q.*, md5('booking-redeemed-' || q.user_id)::uuid::text AS booking_id,
       (5000 + floor(random() * 25000))::int AS discount
FROM (
    SELECT r.*, least(r.registered_at + power(random(), 2) * interval '20 days',
                      now() - interval '1 minute') AS redeemed_at
    FROM b_reg r
    ORDER BY random()
    LIMIT (SELECT round(count(*) * $1::float8) FROM b_customer)
) q"""),
]

LOAD = [
    ("salons", """
INSERT INTO salons (id, name, created_at)
SELECT id, 'Bench salon ' || no, now() - interval '400 days' FROM b_salon ORDER BY no"""),
    ("welcome_offers", """
INSERT INTO welcome_offers (id, salon_id, name, discount_type, discount_value,
                            max_discount_in_paisa, validity_days, created_at, updated_at)
SELECT md5('offer-' || no)::uuid::text, id, 'Welcome 20%', 'percentage', 20, 30000, 30,
       now() - interval '300 days', now() - interval '300 days'
FROM b_salon ORDER BY no"""),
    ("invitation_campaigns", """
INSERT INTO invitation_campaigns (
    id, salon_id, name, channel, message_template, welcome_offer_id, status,
    target_customer_count, messages_sent, messages_delivered, messages_read, messages_failed,
    messages_skipped, created_by, created_at, started_at, completed_at, updated_at)
SELECT ca.id, ca.salon_id, 'Campaign ' || ca.j, 'whatsapp', 'Hi {name}, join us: {link}',
       md5('offer-' || ca.salon_no)::uuid::text, 'completed',
       coalesce(m.target, 0), coalesce(m.sent, 0), coalesce(m.delivered, 0),
       coalesce(m.read, 0), coalesce(m.failed, 0), coalesce(m.skipped, 0), 'bench-admin',
       ca.started_at - interval '1 hour', ca.started_at, ca.started_at + interval '6 hours',
       ca.started_at + interval '6 hours'
FROM b_campaign ca
LEFT JOIN (
    SELECT campaign_id, count(*) AS target,
           count(*) FILTER (WHERE status <> 'skipped') AS sent,
           count(*) FILTER (WHERE status IN ('delivered', 'read')) AS delivered,
           count(*) FILTER (WHERE status = 'read') AS read,
           count(*) FILTER (WHERE status IN ('failed', 'undelivered')) AS failed,
           count(*) FILTER (WHERE status = 'skipped') AS skipped
    FROM b_message GROUP BY 1
) m ON m.campaign_id = ca.id
ORDER BY ca.started_at"""),
    # phone NULL: the registration trigger would otherwise queue every row for the matcher.
    ("users", """
INSERT INTO users (id, phone, name, created_at)
SELECT user_id, NULL, 'Bench user', registered_at FROM b_reg ORDER BY registered_at"""),
    ("imported_customers", """
INSERT INTO imported_customers (
    id, salon_id, customer_name, phone_enc, normalized_phone_enc, phone_hash, status,
    invited_at, registered_at, linked_user_id, created_at, updated_at, source_row,
    last_campaign_id, last_invited_at)
SELECT c.id, c.salon_id, 'Customer ' || c.k, p.enc, p.enc, decode(md5(c.id), 'hex'),
       CASE WHEN r.user_id IS NOT NULL THEN 'registered'
            WHEN m.first_at IS NOT NULL THEN 'invited' ELSE 'pending' END,
       m.first_at, r.registered_at, r.user_id, x.created_at,
       greatest(x.created_at, m.last_at, r.registered_at), c.k, m.last_campaign_id, m.last_at
FROM b_customer c
JOIN b_phone p ON p.no = c.k % $1::int
LEFT JOIN b_campaign fc ON fc.salon_no = c.salon_no AND fc.j = c.first_j
LEFT JOIN (
    SELECT customer_id, min(at) AS first_at, max(at) AS last_at,
           (array_agg(campaign_id ORDER BY at DESC))[1] AS last_campaign_id
    FROM b_message WHERE status <> 'skipped' GROUP BY 1
) m ON m.customer_id = c.id
LEFT JOIN b_reg r ON r.customer_id = c.id
CROSS JOIN LATERAL (
    SELECT CASE WHEN fc.started_at IS NULL THEN now() - c.r_created * interval '200 days'
                ELSE fc.started_at - (0.5 + c.r_created * 90) * interval '1 day' END AS created_at
) x
ORDER BY c.salon_no, c.k"""),
    # Skipped messages were never sent (no sid, no queued_at); the others were accepted.
    ("invitation_messages", """
INSERT INTO invitation_messages (
    id, campaign_id, imported_customer_id, salon_id, channel, twilio_message_sid, status,
    error_code, error_message, skip_reason, sent_at, delivered_at, read_at, queued_at,
    created_at, next_attempt_at, attempts, sender, updated_at)
SELECT m.id, m.campaign_id, m.customer_id, m.salon_id, 'whatsapp',
       CASE WHEN m.status <> 'skipped' THEN 'SM' || md5(m.id) END, m.status,
       CASE WHEN m.status IN ('failed', 'undelivered') THEN 63016 END,
       CASE WHEN m.status IN ('failed', 'undelivered') THEN 'Failed to send' END,
       CASE WHEN m.status = 'skipped' THEN 'opted_out' END,
       CASE WHEN m.status <> 'skipped' THEN m.at + interval '2 seconds' END,
       CASE WHEN m.status IN ('delivered', 'read') THEN m.at + m.delivery_delay END,
       CASE WHEN m.status = 'read' THEN m.at + m.delivery_delay + m.read_delay END,
       CASE WHEN m.status <> 'skipped' THEN m.at END,
       m.started_at, m.started_at, CASE WHEN m.status = 'skipped' THEN 0 ELSE 1 END,
       'whatsapp:+14155238886',
       CASE WHEN m.status = 'read' THEN m.at + m.delivery_delay + m.read_delay
            WHEN m.status = 'skipped' THEN m.started_at
            ELSE m.at + m.delivery_delay END
FROM b_message m
ORDER BY m.started_at, m.campaign_id, m.at"""),
    # Registered users' bookings at their salon: the redeemed offer's booking, a first booking
    # after registering for 60% of the others, a later one for 30%, one before for 10%.
    ("bookings", """
INSERT INTO bookings (id, salon_id, user_id, amount_in_paisa, created_at)
SELECT id, salon_id, user_id, (50000 + floor(random() * 250000))::int, at FROM (
    SELECT booking_id AS id, salon_id, user_id, redeemed_at AS at FROM b_redeem
    UNION ALL
    SELECT md5('booking-first-' || r.user_id)::uuid::text, r.salon_id, r.user_id,
           least(r.registered_at + power(random(), 2) * interval '40 days',
                 now() - interval '1 minute')
    FROM b_reg r
    WHERE NOT EXISTS (SELECT 1 FROM b_redeem d WHERE d.user_id = r.user_id)
      AND random() < 0.6
    UNION ALL
    SELECT md5('booking-later-' || r.user_id)::uuid::text, r.salon_id, r.user_id,
           least(r.registered_at + interval '20 days' + random() * interval '40 days',
                 now() - interval '1 minute')
    FROM b_reg r WHERE random() < 0.3
    UNION ALL
    SELECT md5('booking-before-' || r.user_id)::uuid::text, r.salon_id, r.user_id,
           r.registered_at - interval '1 hour' - random() * interval '30 days'
    FROM b_reg r WHERE random() < 0.1
) b
ORDER BY at"""),
    # Every registration's grant (still open: active or expired), then the redemptions.
    ("welcome_offer_redemptions", """
INSERT INTO welcome_offer_redemptions (
    welcome_offer_id, user_id, imported_customer_id, booking_id, discount_applied_in_paisa,
    expires_at, redeemed_at, status, created_at)
SELECT offer_id, user_id, customer_id, booking_id, discount, expires_at, redeemed_at, status,
       created_at
FROM (
    SELECT md5('offer-' || r.salon_no)::uuid::text AS offer_id, r.user_id, r.customer_id,
           NULL AS booking_id, 0 AS discount, r.registered_at + interval '30 days' AS expires_at,
           NULL::timestamptz AS redeemed_at,
           CASE WHEN r.registered_at + interval '30 days' < now() THEN 'expired'
                ELSE 'active' END AS status,
           r.registered_at AS created_at
    FROM b_reg r
    UNION ALL
    SELECT md5('offer-' || d.salon_no)::uuid::text, d.user_id, d.customer_id, d.booking_id,
           d.discount, d.registered_at + interval '30 days', d.redeemed_at, 'redeemed',
           d.redeemed_at
    FROM b_redeem d
) g
ORDER BY created_at"""),
]


async def build(url: str, salons: int, customers: int, big: int) -> dict[str, Any]:
    """Load one platform into the migrated database at url; the row counts and seconds."""
    started = time.perf_counter()
    cfg = _config(url, tempfile.gettempdir())
    cipher = cipher_from_config(cfg)
    conn = await asyncpg.connect(url)
    try:
        # (Commits stay synchronous: VACUUM marks a page all-visible only once the commits of
        # its rows are flushed.)
        await conn.execute("SET work_mem = '64MB'; SET maintenance_work_mem = '256MB'")
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            # Skip the foreign-key triggers while loading rows that satisfy them by
            # construction (needs a superuser, as the embedded server's user is).
            await conn.execute("SET session_replication_role = replica")
        await conn.execute("SELECT setseed(0.42)")
        await conn.execute("CREATE TEMP TABLE b_phone (no int PRIMARY KEY, enc text NOT NULL)")
        await conn.copy_records_to_table(
            "b_phone", records=[(i, cipher.encrypt(f"+9198{i:08d}", "phone"))
                                for i in range(PHONES)])
        params: dict[str, tuple[Any, ...]] = {
            "plan salons": (salons, big, customers),
            "plan registrations": (REGISTERED_SHARE,), "plan redemptions": (REDEEMED_SHARE,),
            "imported_customers": (PHONES,)}
        # No autovacuum while loading: one running next to the VACUUM below holds back the
        # horizon, and pages it cannot mark all-visible cost index-only scans heap fetches.
        for table in TABLES:
            await conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        for step, sql in PLAN + LOAD:
            await conn.execute(sql, *params.get(step, ()))
        await conn.execute("RESET session_replication_role")
        # The customers' funnel facts, which the triggers skipped under the replica role.
        await conn.execute("SELECT onboardd_refresh_funnel_facts()")
        loaded = time.perf_counter() - started
        await conn.execute("VACUUM (ANALYZE)")
        for table in TABLES:
            await conn.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")
        unset = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relname = ANY($1::text[]) "
            "AND relallvisible < relpages", list(TABLES))
        if unset:
            print(f"warning: not all-visible after VACUUM: {[r[0] for r in unset]}", flush=True)
        rows = {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in (
            "salons", "imported_customers", "invitation_messages", "users", "bookings",
            "welcome_offer_redemptions")}
        rows["redeemed"] = await conn.fetchval(
            "SELECT count(*) FROM welcome_offer_redemptions WHERE status = 'redeemed'")
    finally:
        await conn.close()
    return {"rows": rows, "load_s": round(loaded, 1),
            "build_s": round(time.perf_counter() - started, 1)}


def _env(url: str, state_dir: str) -> dict[str, str]:
    return {"ONBOARDD_DATABASE_URL": url, "ONBOARDD_PATHS_STATE_DIR": state_dir,
            "ONBOARDD_AUTH_JWT_SECRET": SECRET, "ONBOARDD_PII_KEY": PII_KEY,
            "ONBOARDD_RATELIMIT_ENABLED": "false"}  # one caller, as fast as it can


def _config(url: str, state_dir: str) -> Any:
    return load(None, _env(url, state_dir))


async def serve(url: str) -> None:
    """Child process: the real app on a free port with the daemon's pool, until stdin closes."""
    from onboardd.db.pool import create_pool
    from onboardd.runtime import Services
    from onboardd.web.app import create_app
    from tests.serving import served

    configure("warning", "json")
    with tempfile.TemporaryDirectory() as state:
        cfg = _config(url, state)
        pool = await create_pool(cfg, url)
        services = Services(cfg=cfg, pool=pool, cipher=cipher_from_config(cfg),
                            tokens=TokenCodec("HS256", SECRET, SECRET))
        try:
            async with served(create_app(services)) as base:
                print(base, flush=True)
                await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        finally:
            await pool.close()


class App:
    """The app served by a child process: its base URL and its pid (for its RSS)."""

    def __init__(self, base: str, pid: int) -> None:
        self.base = base
        self.pid = pid

    def status_kb(self, field: str) -> int:
        """A VmRSS/VmHWM-style field of /proc/<pid>/status, in kB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def reset_peak(self) -> bool:
        """Reset the process's peak RSS (VmHWM) to its current RSS; False if not allowed."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True


@contextlib.asynccontextmanager
async def app_process(url: str) -> AsyncIterator[App]:
    """Serve the app against url in a child process for the block."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).resolve()), "--serve", url,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert child.stdin is not None and child.stdout is not None
    try:
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        if not line:
            raise RuntimeError("the app process exited before serving")
        yield App(line.decode().strip(), child.pid)
    finally:
        child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), 15)
        except TimeoutError:
            child.terminate()
            await child.wait()


# -- measuring ----------------------------------------------------------------------------------

def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else 0.0


def _figures(latencies: list[float]) -> dict[str, float]:
    return {"calls": len(latencies), "p50_ms": _p(latencies, 0.5),
            "p95_ms": _p(latencies, 0.95), "max_ms": round(max(latencies, default=0.0), 2)}


class Client:
    """GETs as the admin of one salon at a time (a token per salon, as the host app issues)."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base
        self.tokens = TokenCodec("HS256", SECRET, SECRET)
        self._headers: dict[str, dict[str, str]] = {}

    def headers(self, salon: str) -> dict[str, str]:
        if salon not in self._headers:
            token = self.tokens.encode("bench-admin", "admin", [salon], 24 * 3600)
            self._headers[salon] = {"Authorization": f"Bearer {token}"}
        return self._headers[salon]

    async def get_json(self, salon: str, path: str) -> Any:
        async with self.http.get(f"{self.base}/api/salons/{salon}{path}",
                                 headers=self.headers(salon)) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise AssertionError(f"GET {path}: {resp.status} {body[:300]!r}")
        return msgspec.json.decode(body)

    async def timed(self, salons: list[str], path: str,
                    check: Callable[[str, Any], None] | None = None) -> list[float]:
        """One GET per entry of salons, sequentially; latencies in ms (to the last byte)."""
        latencies = []
        for salon in salons:
            started = time.perf_counter()
            body = await self.get_json(salon, path)
            latencies.append((time.perf_counter() - started) * 1000)
            if check is not None:
                check(salon, body)
        return latencies


def _expect_imported(counts: dict[str, int]) -> Callable[[str, Any], None]:
    """A check that the report's funnel counts the salon's customers (the data is there)."""

    def check(salon: str, body: Any) -> None:
        imported = body["funnel"][0]["count"]
        if imported != counts[salon]:
            raise AssertionError(f"salon {salon}: funnel imported {imported}, "
                                 f"built {counts[salon]}")

    return check


async def ordinary_calls(app: App, salons: list[str], warm: list[str], customers: int
                         ) -> tuple[dict[str, float], dict[str, float]]:
    """/analytics for each of salons after warm-up calls on `warm`; and the HTTP floor."""
    check = _expect_imported(dict.fromkeys(salons + warm, customers))
    async with aiohttp.ClientSession() as http:
        client = Client(http, app.base)
        await client.timed(warm, "/analytics", check)
        report = await client.timed(salons, "/analytics", check)
        await client.timed(warm, "/welcome-offers")
        floor = await client.timed(salons, "/welcome-offers")
    return _figures(report), _figures(floor)


async def big_calls(app: App, salon: str, calls: int, customers: int) -> dict[str, float]:
    check = _expect_imported({salon: customers})
    async with aiohttp.ClientSession() as http:
        client = Client(http, app.base)
        await client.timed([salon] * 6, "/analytics", check)
        return _figures(await client.timed([salon] * calls, "/analytics", check))


def export_route_exists() -> bool:
    """Whether this tree's app has GET .../analytics/export.xlsx (built in parallel)."""
    from onboardd.web import api_analytics

    return any(str(getattr(route, "path", "")).endswith("/analytics/export.xlsx")
               for route in api_analytics.routes)


async def export_call(app: App, salon: str) -> dict[str, Any]:
    """Download the big salon's export: seconds to the last byte, bytes, the serving process's
    RSS before and its peak during the export (VmHWM reset first; sampled as well)."""
    url = f"{app.base}/api/salons/{salon}/analytics/export.xlsx"
    tokens = TokenCodec("HS256", SECRET, SECRET)
    headers = {"Authorization": "Bearer " + tokens.encode("bench-admin", "admin", [salon], 3600)}
    rss_before = app.status_kb("VmRSS")
    peak_reset = app.reset_peak()
    sampled = rss_before
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal sampled
        while not done.is_set():
            sampled = max(sampled, app.status_kb("VmRSS"))
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    size = 0
    started = time.perf_counter()
    try:
        async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=600)) as http, \
                http.get(url, headers=headers) as resp:
            async for chunk in resp.content.iter_chunked(1 << 16):
                size += len(chunk)
            status = resp.status
    finally:
        seconds = time.perf_counter() - started
        done.set()
        await sampler
    peak = max(sampled, app.status_kb("VmHWM") if peak_reset else 0)
    return {"status": status, "seconds": round(seconds, 2), "bytes": size,
            "rss_before_mb": round(rss_before / 1024, 1), "peak_rss_mb": round(peak / 1024, 1),
            "peak_from": "VmHWM" if peak_reset else "sampled VmRSS"}


async def _median_ms(conn: asyncpg.Connection, sql: str, *args: Any) -> float:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        await conn.fetchval(sql, *args)
        times.append((time.perf_counter() - started) * 1000)
    return round(sorted(times)[2], 1)


async def cpu_probe(conn: asyncpg.Connection) -> float:
    """PostgreSQL counting a million generated rows: how fast this machine runs the executor
    (tens of ms on a current server core), to compare figures across machines."""
    return await _median_ms(conn, "SELECT count(*) FROM generate_series(1, 1000000)")


async def salon_scan(url: str, salon: str) -> float:
    """One index-only pass over a salon's customers and its messages: the least any exact
    report of that salon reads (the report makes several such passes)."""
    conn = await asyncpg.connect(url)
    try:
        return await _median_ms(
            conn, "SELECT (SELECT count(*) FROM imported_customers WHERE salon_id = $1)"
                  " + (SELECT count(*) FROM invitation_messages WHERE salon_id = $1)", salon)
    finally:
        await conn.close()


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gb = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_gb = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 ** 2, 1)
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gb": memory_gb,
            "python": platform.python_version()}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configure("warning", "json")
    rng = random.Random(args.seed)
    ordinary_nos = list(range(1, args.salons + 1))
    picked = rng.sample(ordinary_nos, min(args.calls, args.salons))
    rest = [n for n in ordinary_nos if n not in set(picked)] or ordinary_nos
    warm = [salon_id(n) for n in rng.choices(rest, k=args.warmup)]
    measured = [salon_id(n) for n in picked]
    small_nos = list(range(1, args.small_salons + 1))
    small_measured = [salon_id(n) for n in rng.choices(small_nos, k=args.calls)]
    small_warm = [salon_id(n) for n in rng.choices(small_nos, k=args.warmup)]
    result: dict[str, Any] = {"machine": machine(), "scale": {
        "salons": args.salons, "customers": args.customers, "big": args.big,
        "small_salons": args.small_salons}}

    async with bench_server(args.keep) as base:
        admin = await asyncpg.connect(base)
        result["machine"]["postgres"] = await admin.fetchval("SHOW server_version")
        result["machine"]["pg_cpu_probe_ms"] = await cpu_probe(admin)
        await admin.close()
        async with migrated_database(base, "bench_analytics_big", bool(args.keep)) as big_url, \
                migrated_database(base, "bench_analytics_small", bool(args.keep)) as small_url:
            print(f"building {args.salons} salons x {args.customers} customers "
                  f"+ 1 x {args.big} ...", flush=True)
            built = await build(big_url, args.salons, args.customers, args.big)
            print(f"built in {built['build_s']} s (load {built['load_s']} s, then VACUUM "
                  f"ANALYZE): {built['rows']}", flush=True)
            small = await build(small_url, args.small_salons, args.customers, 0)
            print(f"small platform built in {small['build_s']} s: {small['rows']}", flush=True)
            result["platform"], result["small_platform_build"] = built, small
            admin = await asyncpg.connect(base)
            try:  # the build's writes flushed now rather than during the measurements
                await admin.execute("CHECKPOINT")
            finally:
                await admin.close()

            if args.big:
                result["big_salon_scan_ms"] = await salon_scan(big_url, salon_id(0))
            async with app_process(big_url) as app:
                result["ordinary"], result["http_floor"] = await ordinary_calls(
                    app, measured, warm, args.customers)
                result["big_salon"] = await big_calls(app, salon_id(0), args.big_calls,
                                                      args.big) if args.big else None
                result["export"] = (await export_call(app, salon_id(0))
                                    if args.big and export_route_exists() else None)
            async with app_process(small_url) as app:
                result["small_platform"], _ = await ordinary_calls(
                    app, small_measured, small_warm, args.customers)

    ratio = result["ordinary"]["p95_ms"] / result["small_platform"]["p95_ms"]
    result["platform_growth_ratio"] = round(ratio, 2)
    result["targets"] = TARGETS
    export = result["export"]
    result["met"] = {
        "ordinary_p95": result["ordinary"]["p95_ms"] < TARGETS["ordinary_p95_ms"],
        "platform_growth_ratio": ratio <= TARGETS["platform_growth_ratio"],
        "big_salon_p95": (result["big_salon"]["p95_ms"] < TARGETS["big_salon_p95_ms"]
                          if result["big_salon"] else None),
        "export": (export["status"] == 200 and export["seconds"] < TARGETS["export_s"]
                   and export["peak_rss_mb"] < TARGETS["export_peak_rss_mb"])
        if export else None,
    }
    return result


def report(result: dict[str, Any]) -> None:
    m, o, s = result["machine"], result["ordinary"], result["small_platform"]
    print(f"machine: {m['cores']} cores, {m['cpu']}, {m['memory_gb']} GB, "
          f"PostgreSQL {m['postgres']} (count(*) of generate_series(1, 1e6): "
          f"{m['pg_cpu_probe_ms']} ms)")
    print(f"/analytics, {o['calls']} ordinary salons of {result['scale']['salons']}: "
          f"p50 {o['p50_ms']} ms, p95 {o['p95_ms']} ms (target < 50)")
    print(f"/analytics, small platform ({result['scale']['small_salons']} salons): "
          f"p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms; growth ratio "
          f"{result['platform_growth_ratio']} (target <= 1.5)")
    if result["big_salon"]:
        b = result["big_salon"]
        print(f"/analytics, big salon ({result['scale']['big']} customers), {b['calls']} calls: "
              f"p50 {b['p50_ms']} ms, p95 {b['p95_ms']} ms (target < 300); one index-only "
              f"pass over its customers and messages: {result['big_salon_scan_ms']} ms")
    f = result["http_floor"]
    print(f"floor, GET welcome-offers: p50 {f['p50_ms']} ms, p95 {f['p95_ms']} ms")
    e = result["export"]
    if e is None:
        print("export: no /analytics/export.xlsx route in this tree (not measured)")
    else:
        print(f"export.xlsx, big salon: HTTP {e['status']}, {e['seconds']} s, {e['bytes']} bytes, "
              f"server RSS {e['rss_before_mb']} MB before, peak {e['peak_rss_mb']} MB "
              f"(targets < 15 s, < 150 MB)")
    print(f"targets met: {result['met']}")
    print(msgspec.json.encode(result).decode())


def main() -> None:
    """Parse arguments, run (or serve, in the child process), print figures and JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env = os.environ.get
    parser.add_argument("--salons", type=int, default=int(env("BENCH_SALONS", "2000")))
    parser.add_argument("--customers", type=int, default=int(env("BENCH_CUSTOMERS", "500")))
    parser.add_argument("--big", type=int, default=int(env("BENCH_BIG", "100000")),
                        help="customers of the big salon (0: none)")
    parser.add_argument("--small-salons", type=int, default=None,
                        help="salons of the small platform (default: salons / 100)")
    parser.add_argument("--calls", type=int, default=200, help="ordinary salons measured")
    parser.add_argument("--big-calls", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--keep", metavar="DIR",
                        help="keep the embedded server's data (and both databases) in DIR")
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    if args.small_salons is None:
        args.small_salons = max(1, args.salons // 100)
    report(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
