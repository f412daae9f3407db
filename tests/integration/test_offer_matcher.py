"""The offer-matcher actor against real PostgreSQL: matching, linking, grants, catch-up, expiry."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
import structlog

from onboardd.actors import offer_matcher
from onboardd.config import Config
from onboardd.db.pool import create_pool
from onboardd.jobs.offers import expire_offers
from onboardd.pii import PiiCipher
from onboardd.runtime import Services


async def add_offer(pool: asyncpg.Pool, salon: str, *, name: str = "Welcome 15%",
                    discount_type: str = "percentage", value: int = 15,
                    cap: int | None = 20000, minimum: int | None = None, validity_days: int = 30,
                    usage_limit: int = 1, active: int = 1, age_s: int = 0) -> str:
    """Insert a welcome offer; age_s makes it older than offers created after it."""
    offer_id: str = await pool.fetchval(
        "INSERT INTO welcome_offers (salon_id, name, discount_type, discount_value, "
        "max_discount_in_paisa, minimum_purchase_in_paisa, validity_days, usage_limit, is_active,"
        " created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9, now() - make_interval(secs => $10))"
        " RETURNING id", salon, name, discount_type, value, cap, minimum, validity_days,
        usage_limit, active, float(age_s))
    return offer_id


async def add_campaign(pool: asyncpg.Pool, salon: str, offer_id: str | None) -> str:
    """Insert a completed campaign carrying an offer."""
    campaign_id: str = await pool.fetchval(
        "INSERT INTO invitation_campaigns (salon_id, name, message_template, welcome_offer_id, "
        "status, created_by) VALUES ($1, 'Invite', 'Hi {{customer_name}}', $2, 'completed', "
        "'admin-1') RETURNING id", salon, offer_id)
    return campaign_id


async def add_customer(pool: asyncpg.Pool, cipher: PiiCipher, salon: str, e164: str, *,
                       status: str = "invited", campaign: str | None = None,
                       code: str | None = None, invited_days_ago: float | None = 1.0,
                       linked_user: str | None = None) -> str:
    """Insert an imported customer the way the importer stores one."""
    invited = None if invited_days_ago is None else timedelta(days=invited_days_ago)
    customer_id: str = await pool.fetchval(
        "INSERT INTO imported_customers (salon_id, customer_name, phone_enc, "
        "normalized_phone_enc, phone_hash, status, last_campaign_id, offer_code, invited_at, "
        "last_invited_at, linked_user_id) VALUES ($1, 'Priya Sharma', $2, $2, $3, $4, $5, $6, "
        "now() - $7::interval, now() - $7::interval, $8) RETURNING id",
        salon, cipher.encrypt(e164, "phone"), cipher.phone_hash(e164), status, campaign, code,
        invited, linked_user)
    return customer_id


async def add_salon(pool: asyncpg.Pool, name: str, country: str = "IN") -> str:
    """Insert a salon."""
    salon_id: str = await pool.fetchval(
        "INSERT INTO salons (name, country) VALUES ($1, $2) RETURNING id", name, country)
    return salon_id


async def register(pool: asyncpg.Pool, phone: str, name: str = "App User") -> str:
    """Insert a user as the host app does (the trigger records the registration)."""
    user_id: str = await pool.fetchval(
        "INSERT INTO users (phone, name) VALUES ($1, $2) RETURNING id", phone, name)
    return user_id


async def eventually(check: Callable[[], Any], deadline_s: float = 15.0) -> Any:
    """Poll an async check until it returns a truthy value (the matcher runs concurrently)."""
    end = time.monotonic() + deadline_s
    while True:
        value = await check()
        if value or time.monotonic() > end:
            return value
        await asyncio.sleep(0.02)


async def all_processed(pool: asyncpg.Pool) -> bool:
    """True when no registration event is left."""
    left = await pool.fetchval(
        "SELECT count(*) FROM registration_events WHERE processed_at IS NULL")
    return bool(left == 0)


@contextlib.asynccontextmanager
async def matcher(services: Services) -> AsyncIterator[None]:
    """Run the actor for the duration of the block."""
    stopping = asyncio.Event()
    task = asyncio.create_task(offer_matcher.run(services, stopping), name="test-matcher")
    try:
        yield
    finally:
        stopping.set()
        await task


@pytest.fixture
async def slow_poll_services(make_config: Callable[..., Config], db_url: str,
                             cipher: PiiCipher, tokens: Any) -> AsyncIterator[Services]:
    """Services whose matcher polls only every 10 minutes: only LISTEN can wake it in a test."""
    cfg = make_config(offers_match_poll_s="600")
    pool = await create_pool(cfg, db_url, min_size=1, max_size=10)
    try:
        yield Services(cfg=cfg, pool=pool, cipher=cipher, tokens=tokens)
    finally:
        await pool.close()


async def test_registration_in_any_format_links_and_grants(
        slow_poll_services: Services, cipher: PiiCipher) -> None:
    services = slow_poll_services
    pool = services.pool
    salon = await add_salon(pool, "Glamour Studio")
    offer = await add_offer(pool, salon, validity_days=14)
    formats = ["98765 43210", "+91 98765-43211", "09876543212", "919876543213",
               "0091 98765 43214", "(+91) 98765.43215"]
    customers = [await add_customer(pool, cipher, salon, f"+91987654321{i}")
                 for i in range(len(formats))]
    async with matcher(services):
        users = [await register(pool, phone) for phone in formats]
        assert await eventually(lambda: all_processed(pool))
    rows = await pool.fetch(
        "SELECT c.id, c.status, c.linked_user_id, c.registered_at, r.welcome_offer_id, "
        "r.expires_at, r.status AS r_status, r.discount_applied_in_paisa, r.booking_id, "
        "r.imported_customer_id FROM imported_customers c "
        "JOIN welcome_offer_redemptions r ON r.user_id = c.linked_user_id ORDER BY c.id")
    by_customer = {r["id"]: r for r in rows}
    for customer, user in zip(customers, users, strict=True):
        row = by_customer[customer]
        assert row["status"] == "registered" and row["linked_user_id"] == user
        assert row["welcome_offer_id"] == offer and row["r_status"] == "active"
        assert row["expires_at"] - row["registered_at"] == timedelta(days=14)
        assert row["discount_applied_in_paisa"] == 0 and row["booking_id"] is None
        assert row["imported_customer_id"] == customer
    counts = await pool.fetch("SELECT matched_count FROM registration_events")
    assert [c["matched_count"] for c in counts] == [1] * len(formats)


async def test_offer_of_inviting_campaign_wins_over_newest_active(
        services: Services, cipher: PiiCipher) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    campaign_offer = await add_offer(pool, salon, name="Campaign offer", age_s=3600)
    newest = await add_offer(pool, salon, name="Newest")
    await add_offer(pool, salon, name="Inactive newer", active=0)
    campaign = await add_campaign(pool, salon, campaign_offer)
    await add_customer(pool, cipher, salon, "+919800000001", campaign=campaign)
    await add_customer(pool, cipher, salon, "+919800000002")  # never invited by a campaign
    inactive_offer = await add_offer(pool, salon, active=0, age_s=7200)
    dead_campaign = await add_campaign(pool, salon, inactive_offer)
    await add_customer(pool, cipher, salon, "+919800000003", campaign=dead_campaign)
    async with matcher(services):
        u1 = await register(pool, "9800000001")
        u2 = await register(pool, "9800000002")
        u3 = await register(pool, "9800000003")
        assert await eventually(lambda: all_processed(pool))
    grants = dict(await pool.fetch("SELECT user_id, welcome_offer_id FROM "
                                   "welcome_offer_redemptions"))
    assert grants == {u1: campaign_offer, u2: newest, u3: newest}


async def test_salon_without_active_offer_links_without_grant(
        services: Services, cipher: PiiCipher) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    await add_offer(pool, salon, active=0)
    customer = await add_customer(pool, cipher, salon, "+919811111111")
    async with matcher(services):
        user = await register(pool, "+919811111111")
        assert await eventually(lambda: all_processed(pool))
    assert await pool.fetchval("SELECT linked_user_id FROM imported_customers WHERE id = $1",
                               customer) == user
    assert await pool.fetchval("SELECT count(*) FROM welcome_offer_redemptions") == 0


async def test_one_person_matches_every_salon_and_abroad_only_in_international_form(
        services: Services, cipher: PiiCipher) -> None:
    pool = services.pool
    salon_a, salon_b = await add_salon(pool, "A"), await add_salon(pool, "B")
    dubai = await add_salon(pool, "Dubai", country="AE")
    offers = {s: await add_offer(pool, s) for s in (salon_a, salon_b, dubai)}
    for salon in (salon_a, salon_b):
        await add_customer(pool, cipher, salon, "+919822222222")
    ae_customer = await add_customer(pool, cipher, dubai, "+971501234567")
    ae_national = await add_customer(pool, cipher, dubai, "+971501234568")
    unrelated = await add_customer(pool, cipher, salon_a, "+919999999999", status="pending")
    async with matcher(services):
        indian = await register(pool, "98222 22222")
        emirati = await register(pool, "+971 50 123 4567")
        # National form is read with [offers] phone_region (IN) only, never with the Dubai
        # salon's region: this user is not linked to anyone.
        await register(pool, "050 123 4568")
        assert await eventually(lambda: all_processed(pool))
    grants = await pool.fetch("SELECT user_id, welcome_offer_id FROM welcome_offer_redemptions")
    assert sorted((g["user_id"], g["welcome_offer_id"]) for g in grants) == sorted(
        [(indian, offers[salon_a]), (indian, offers[salon_b]), (emirati, offers[dubai])])
    assert await pool.fetchval("SELECT linked_user_id FROM imported_customers WHERE id = $1",
                               ae_customer) == emirati
    assert await pool.fetchval("SELECT linked_user_id FROM imported_customers WHERE id = $1",
                               ae_national) is None
    assert await pool.fetchval("SELECT status FROM imported_customers WHERE id = $1",
                               unrelated) == "pending"


async def test_a_national_number_is_never_read_with_another_salons_region(
        services: Services, cipher: PiiCipher) -> None:
    pool = services.pool
    us_salon = await add_salon(pool, "New York Nails", country="US")
    await add_offer(pool, us_salon)
    us_customer = await add_customer(pool, cipher, us_salon, "+19172345678")
    async with matcher(services):
        # An Indian user stored in national form: +919172345678 with [offers] phone_region.
        indian = await register(pool, "9172345678")
        assert await eventually(lambda: all_processed(pool))
        assert await pool.fetchval("SELECT linked_user_id FROM imported_customers") is None
        american = await register(pool, "+1 917-234-5678")
        assert await eventually(lambda: all_processed(pool))
    assert await pool.fetchval("SELECT linked_user_id FROM imported_customers WHERE id = $1",
                               us_customer) == american
    assert [r["user_id"] for r in await pool.fetch(
        "SELECT user_id FROM welcome_offer_redemptions")] == [american]
    assert indian != american


async def test_without_a_phone_region_national_numbers_match_nothing(
        make_config: Callable[..., Config], db_url: str, cipher: PiiCipher,
        tokens: Any) -> None:
    cfg = make_config(offers_phone_region="")
    pool = await create_pool(cfg, db_url, min_size=1, max_size=5)
    services = Services(cfg=cfg, pool=pool, cipher=cipher, tokens=tokens)
    try:
        salon = await add_salon(pool, "S")
        await add_offer(pool, salon)
        national = await add_customer(pool, cipher, salon, "+919811100001")
        international = await add_customer(pool, cipher, salon, "+919811100002")
        async with matcher(services):
            await register(pool, "98111 00001")
            user = await register(pool, "+91 98111 00002")
            assert await eventually(lambda: all_processed(pool))
        linked = dict(await pool.fetch("SELECT id, linked_user_id FROM imported_customers"))
        assert linked == {national: None, international: user}
    finally:
        services.stopping.set()
        await pool.close()


async def test_catch_up_after_downtime_and_no_double_grant(
        services: Services, cipher: PiiCipher) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    await add_offer(pool, salon)
    for i in range(30):
        await add_customer(pool, cipher, salon, f"+9198330000{i:02d}")
    # Registrations while the daemon is down: nobody listens.
    users = [await register(pool, f"98330000{i:02d}") for i in range(30)]
    users += [await register(pool, f"98440000{i:02d}") for i in range(5)]  # not imported
    async with matcher(services):
        assert await eventually(lambda: all_processed(pool))
    assert await pool.fetchval("SELECT count(*) FROM welcome_offer_redemptions") == 30
    assert await pool.fetchval(
        "SELECT count(*) FROM imported_customers WHERE status = 'registered'") == 30
    # A later phone change re-runs matching for the user: still one grant, still linked once.
    await pool.execute("UPDATE users SET phone = '+919833000000' WHERE id = $1", users[0])
    await pool.execute("UPDATE users SET phone = '+91 98330 00000' WHERE id = $1", users[0])
    async with matcher(services):
        assert await eventually(lambda: all_processed(pool))
    assert await pool.fetchval("SELECT count(*) FROM welcome_offer_redemptions") == 30


async def test_linked_customer_is_not_taken_by_a_second_account(
        services: Services, cipher: PiiCipher) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    await add_offer(pool, salon)
    await add_customer(pool, cipher, salon, "+919855555555")
    async with matcher(services):
        first = await register(pool, "9855555555")
        second = await register(pool, "+919855555555")
        assert await eventually(lambda: all_processed(pool))
    assert await pool.fetchval("SELECT linked_user_id FROM imported_customers") == first
    assert [r["user_id"] for r in await pool.fetch(
        "SELECT user_id FROM welcome_offer_redemptions")] == [first]
    # Both registrations were processed: the first matched the customer, the second nothing.
    matched = {r["user_id"]: r["matched_count"] for r in await pool.fetch(
        "SELECT user_id, matched_count FROM registration_events WHERE processed_at IS NOT NULL")}
    assert matched == {first: 1, second: 0}


async def test_two_matchers_process_each_event_once(
        services: Services, cipher: PiiCipher, make_config: Callable[..., Config],
        db_url: str) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    await add_offer(pool, salon)
    for i in range(400):
        await add_customer(pool, cipher, salon, f"+91986{i:07d}")
    second_pool = await create_pool(services.cfg, db_url, min_size=1, max_size=5)
    other = Services(cfg=services.cfg, pool=second_pool, cipher=cipher, tokens=services.tokens)
    try:
        async with matcher(services), matcher(other):
            await pool.executemany("INSERT INTO users (phone) VALUES ($1)",
                                   [(f"986{i:07d}",) for i in range(400)])
            await pool.executemany("INSERT INTO users (phone) VALUES ($1)",
                                   [(f"987{i:07d}",) for i in range(400)])
            assert await eventually(lambda: all_processed(pool))
    finally:
        await second_pool.close()
    attempts = await pool.fetch("SELECT attempts, count(*) FROM registration_events "
                                "GROUP BY attempts")
    assert [(r["attempts"], r["count"]) for r in attempts] == [(1, 800)]
    assert await pool.fetchval("SELECT count(*) FROM welcome_offer_redemptions") == 400


# The matcher's LISTEN connection, as operators find it.
LISTENING = ("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
             f"AND application_name = '{offer_matcher.LISTEN_APPLICATION_NAME}' "
             "AND query LIKE 'LISTEN%'")


async def test_lost_listen_connection_resubscribes(
        slow_poll_services: Services, cipher: PiiCipher) -> None:
    services = slow_poll_services
    pool = services.pool
    salon = await add_salon(pool, "S")
    await add_offer(pool, salon)
    await add_customer(pool, cipher, salon, "+919866666666")
    async with matcher(services):
        pids = await eventually(lambda: pool.fetch(LISTENING))
        assert len(pids) == 1
        pid = pids[0]["pid"]
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", pid)
        new_pid = await eventually(lambda: pool.fetchval(LISTENING + " AND pid <> $1", pid))
        assert new_pid
        assert await pool.fetchval(LISTENING + " AND pid = $1", pid) is None
        await register(pool, "9866666666")
        # The poll interval is 10 minutes: only the new subscription can deliver this.
        assert await eventually(lambda: all_processed(pool))
    assert await pool.fetchval("SELECT count(*) FROM welcome_offer_redemptions") == 1
    # Released at stop: the connection is back in the pool under its ordinary name.
    assert await pool.fetchval(LISTENING) is None


async def test_expiry_sweeps(services: Services, cipher: PiiCipher) -> None:
    pool = services.pool
    salon = await add_salon(pool, "S")
    offer = await add_offer(pool, salon)
    old = await add_customer(pool, cipher, salon, "+919870000001", invited_days_ago=31)
    fresh = await add_customer(pool, cipher, salon, "+919870000002", invited_days_ago=29)
    done = await add_customer(pool, cipher, salon, "+919870000003", status="registered",
                              invited_days_ago=90)
    user = await register(pool, "+919870000009")
    other = await register(pool, "+919870000008")
    past = await pool.fetchval(
        "INSERT INTO welcome_offer_redemptions (welcome_offer_id, user_id, "
        "discount_applied_in_paisa, expires_at) VALUES ($1, $2, 0, now() - interval '1 minute')"
        " RETURNING id", offer, user)
    future = await pool.fetchval(
        "INSERT INTO welcome_offer_redemptions (welcome_offer_id, user_id, "
        "discount_applied_in_paisa, expires_at) VALUES ($1, $2, 0, now() + interval '1 day')"
        " RETURNING id", offer, other)
    await expire_offers(services)
    status = dict(await pool.fetch("SELECT id, status FROM imported_customers"))
    assert status == {old: "expired", fresh: "invited", done: "registered"}
    status = dict(await pool.fetch("SELECT id, status FROM welcome_offer_redemptions"))
    assert status == {past: "expired", future: "active"}


async def test_expiry_pass_forgets_quiet_code_claim_counters(services: Services) -> None:
    pool = services.pool
    day, hour = timedelta(days=1), timedelta(hours=1)
    rows = [("user", "quiet", 8 * day, None), ("user", "recent", hour, None),
            ("ip", "203.0.113.7", 8 * day, hour), ("ip", "never-charged", None, None)]
    for kind, subject, ago, locked_for in rows:
        await pool.execute(
            "INSERT INTO offer_claim_throttle (kind, subject, last_attempt_at, locked_until) "
            "VALUES ($1, $2, now() - $3::interval, now() + $4::interval)",
            kind, subject, ago, locked_for)
    await expire_offers(services)
    left = {r["subject"] for r in await pool.fetch("SELECT subject FROM offer_claim_throttle")}
    assert left == {"recent", "203.0.113.7"}


async def test_a_failing_event_logs_with_its_ids_as_context(
        services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    user = await register(services.pool, "+919876500001")

    async def refuse(*_args: object) -> None:
        raise asyncpg.DataError("value refused")

    monkeypatch.setattr(offer_matcher.db, "apply_matches", refuse)
    with structlog.testing.capture_logs([structlog.contextvars.merge_contextvars]) as logs:
        await offer_matcher.process_batch(services)
    event_id = await services.pool.fetchval(
        "SELECT id FROM registration_events WHERE user_id = $1", user)
    [failed] = [e for e in logs if e["event"] == "registration_event_failed"]
    assert (failed["event_id"], failed["user_id"]) == (event_id, user)
    assert "value refused" in failed["error"]
    [batch] = [e for e in logs if e["event"] == "registration_batch_failed"]
    assert "event_id" not in batch and "user_id" not in batch
