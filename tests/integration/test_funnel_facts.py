"""The funnel facts on each customer row (migration 0011) stay equal to a recount from the
messages and bookings after every kind of write, whoever makes it: message inserts, status
changes, deletes and cascades; linking, unlinking and deleted users; the host app's bookings
made, moved, removed and truncated; and the backfill of a database migrated from 0010."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import asyncpg
import pytest

from onboardd.db.migrate import available, migrate
from onboardd.pii import PiiCipher
from tests.campaign_support import add_customers, add_salon, phone
from tests.conftest import fresh_database

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
Db: TypeAlias = "asyncpg.Pool | asyncpg.Connection"

# The facts recounted from the base tables with the definition 0010 computed per report,
# independently of the triggers' functions.
RECOUNT = """
SELECT c.id,
       coalesce(g.invited, false) AS funnel_invited,
       coalesce(g.delivered, false) AS funnel_delivered,
       g.last_message_at, fb.at AS first_booking_at
FROM imported_customers c
LEFT JOIN (
    SELECT m.imported_customer_id,
           bool_or(m.twilio_message_sid IS NOT NULL AND m.status IN
                   ('queued', 'sent', 'delivered', 'read', 'failed', 'undelivered')) AS invited,
           bool_or(m.status IN ('delivered', 'read')) AS delivered,
           max(m.queued_at) AS last_message_at
    FROM invitation_messages m GROUP BY 1) g ON g.imported_customer_id = c.id
LEFT JOIN (
    SELECT r.id, min(b.created_at) AS at
    FROM imported_customers r
    JOIN bookings b ON b.salon_id = r.salon_id AND b.user_id = r.linked_user_id
                   AND b.created_at >= r.registered_at
    GROUP BY r.id) fb ON fb.id = c.id
"""
STORED = """SELECT id, funnel_invited, funnel_delivered, last_message_at, first_booking_at
            FROM imported_customers"""


async def facts(conn: Db) -> dict[str, tuple[object, ...]]:
    """The stored facts per customer, after asserting they equal the recount."""
    stored = {r["id"]: tuple(r.values())[1:] for r in await conn.fetch(STORED)}
    recount = {r["id"]: tuple(r.values())[1:] for r in await conn.fetch(RECOUNT)}
    assert stored == recount
    return stored


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def campaign(pool: Db, salon_id: str, customers: list[str]) -> str:
    """A campaign with one pending message per customer (as the send start freezes them)."""
    campaign_id: str = await pool.fetchval(
        """INSERT INTO invitation_campaigns (salon_id, name, channel, message_template, status,
                                             created_by, target_customer_count, started_at)
           VALUES ($1, 'C', 'whatsapp', 'Hi', 'completed', 'admin-1', $2, now()) RETURNING id""",
        salon_id, len(customers))
    await pool.execute(
        """INSERT INTO invitation_messages (campaign_id, imported_customer_id, channel, salon_id)
           SELECT $1, unnest($2::text[]), 'whatsapp', $3""", campaign_id, customers, salon_id)
    return campaign_id


async def set_status(pool: Db, campaign_id: str, customer: str, status: str,
                     queued_at: datetime | None = None) -> None:
    await pool.execute(
        """UPDATE invitation_messages
           SET status = $3::varchar,
               twilio_message_sid = CASE WHEN $3::varchar IN ('pending', 'sending') THEN NULL
                                         ELSE coalesce(twilio_message_sid, 'SM' || md5(id)) END,
               queued_at = coalesce($4, queued_at)
           WHERE campaign_id = $1 AND imported_customer_id = $2""",
        campaign_id, customer, status, queued_at)


async def register(pool: asyncpg.Pool, customer: str, n: int, at: datetime) -> str:
    user: str = await pool.fetchval(
        "INSERT INTO users (phone, name) VALUES ($1, 'U') RETURNING id", phone(700 + n))
    await pool.execute("UPDATE imported_customers SET linked_user_id = $2, registered_at = $3, "
                       "status = 'registered' WHERE id = $1", customer, user, at)
    return user


async def book(pool: Db, salon_id: str, user: str, at: datetime) -> str:
    booking: str = await pool.fetchval(
        "INSERT INTO bookings (salon_id, user_id, amount_in_paisa, created_at) "
        "VALUES ($1, $2, 50000, $3) RETURNING id", salon_id, user, at)
    return booking


async def test_message_writes_keep_the_invited_and_delivered_facts(
        pool: asyncpg.Pool, cipher: PiiCipher) -> None:
    salon = await add_salon(pool, "Facts")
    a, b, c = await add_customers(pool, cipher, salon, [phone(1), phone(2), phone(3)])
    first = await campaign(pool, salon, [a, b, c])
    got = await facts(pool)
    assert got[a] == (False, False, None, None)

    await set_status(pool, first, a, "sending")
    assert (await facts(pool))[a] == (False, False, None, None)
    await set_status(pool, first, a, "queued", T0)
    await set_status(pool, first, b, "queued", T0)
    await set_status(pool, first, b, "failed")
    got = await facts(pool)
    assert got[a] == (True, False, T0, None)
    assert got[b] == (True, False, T0, None), "a later failure stays invited"
    assert got[c] == (False, False, None, None)

    await set_status(pool, first, a, "read")
    assert (await facts(pool))[a] == (True, True, T0, None)

    second = await campaign(pool, salon, [a, c])
    await set_status(pool, second, a, "queued", T0 + timedelta(days=3))
    await set_status(pool, second, c, "skipped")
    got = await facts(pool)
    assert got[a] == (True, True, T0 + timedelta(days=3), None)
    assert got[c] == (False, False, None, None), "a skipped message is no invitation"

    await pool.execute("DELETE FROM invitation_campaigns WHERE id = $1", second)
    assert (await facts(pool))[a] == (True, True, T0, None), "the cascade recounts"
    await pool.execute("DELETE FROM invitation_messages WHERE campaign_id = $1 "
                       "AND imported_customer_id = $2", first, a)
    assert (await facts(pool))[a] == (False, False, None, None)

    # Erasing a customer deletes it with its messages; the others keep their facts.
    await pool.execute("DELETE FROM imported_customers WHERE id = $1", b)
    got = await facts(pool)
    assert b not in got and got[a] == (False, False, None, None)


async def test_links_and_the_host_apps_bookings_keep_the_first_booking(
        pool: asyncpg.Pool, cipher: PiiCipher) -> None:
    salon = await add_salon(pool, "Bookings")
    elsewhere = await add_salon(pool, "Elsewhere")
    a, b = await add_customers(pool, cipher, salon, [phone(11), phone(12)])
    registered = T0 + timedelta(days=2)
    user = await register(pool, a, 1, registered)
    await book(pool, salon, user, registered - timedelta(hours=1))
    await book(pool, elsewhere, user, registered + timedelta(hours=1))
    assert (await facts(pool))[a][3] is None, "before registering, or at another salon"

    later = await book(pool, salon, user, registered + timedelta(days=5))
    assert (await facts(pool))[a][3] == registered + timedelta(days=5)
    sooner = await book(pool, salon, user, registered + timedelta(days=1))
    assert (await facts(pool))[a][3] == registered + timedelta(days=1)

    await pool.execute("UPDATE bookings SET created_at = $2 WHERE id = $1", sooner,
                       registered + timedelta(days=9))
    assert (await facts(pool))[a][3] == registered + timedelta(days=5), "a moved booking"
    await pool.execute("DELETE FROM bookings WHERE id = $1", later)
    assert (await facts(pool))[a][3] == registered + timedelta(days=9), "a removed booking"
    await pool.execute("UPDATE bookings SET salon_id = $2 WHERE id = $1", sooner, elsewhere)
    assert (await facts(pool))[a][3] is None, "moved to another salon"

    # A registration time moved before the early booking makes it the first.
    await pool.execute("UPDATE imported_customers SET registered_at = $2 WHERE id = $1", a,
                       registered - timedelta(days=1))
    assert (await facts(pool))[a][3] == registered - timedelta(hours=1)

    # Relinking b to the same user at the same salon shares the user's bookings.
    await pool.execute("UPDATE imported_customers SET linked_user_id = $2, registered_at = $3 "
                       "WHERE id = $1", b, user, registered - timedelta(days=1))
    assert (await facts(pool))[b][3] == registered - timedelta(hours=1)

    # The host app deletes the user: the links are set to NULL, and so are the first bookings.
    await pool.execute("DELETE FROM users WHERE id = $1", user)
    got = await facts(pool)
    assert got[a][3] is None and got[b][3] is None

    # A customer inserted already linked gets its first booking on insert; TRUNCATE clears it.
    other = await pool.fetchval("INSERT INTO users (phone, name) VALUES ($1, 'V') RETURNING id",
                                phone(799))
    await book(pool, salon, other, registered)
    linked = await pool.fetchval(
        """INSERT INTO imported_customers (salon_id, customer_name, phone_enc,
               normalized_phone_enc, phone_hash, status, linked_user_id, registered_at)
           VALUES ($1, 'Linked', 'x', 'y', '\\x0b', 'registered', $2, $3) RETURNING id""",
        salon, other, registered - timedelta(minutes=5))
    assert (await facts(pool))[linked][3] == registered
    await pool.execute("TRUNCATE bookings")
    assert (await facts(pool))[linked][3] is None


async def test_migrating_from_0010_backfills_the_facts(pg_uri: str, cipher: PiiCipher) -> None:
    async with fresh_database(pg_uri, None) as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE TABLE onboardd_schema_migrations (version integer "
                               "PRIMARY KEY, name text NOT NULL, applied_at timestamptz "
                               "NOT NULL DEFAULT now())")
            for m in available():
                if m.version > 10:
                    break
                await conn.execute(m.source.read_text(encoding="utf-8"))
                await conn.execute("INSERT INTO onboardd_schema_migrations (version, name) "
                                   "VALUES ($1, $2)", m.version, m.name)
            salon = await conn.fetchval("INSERT INTO salons (name) VALUES ('Old') RETURNING id")
            ids = [await conn.fetchval(
                "INSERT INTO imported_customers (salon_id, customer_name, phone_enc, "
                "normalized_phone_enc, phone_hash) VALUES ($1, $2, 'x', 'y', $3) RETURNING id",
                salon, f"C{i}", cipher.phone_hash(phone(30 + i))) for i in range(3)]
            camp = await conn.fetchval(
                "INSERT INTO invitation_campaigns (salon_id, name, channel, message_template, "
                "status, created_by) VALUES ($1, 'C', 'sms', 'Hi', 'completed', 'a') "
                "RETURNING id", salon)
            for customer, status in zip(ids, ("delivered", "queued", "pending"), strict=True):
                await conn.execute(
                    "INSERT INTO invitation_messages (campaign_id, imported_customer_id, "
                    "channel, salon_id, status, twilio_message_sid, queued_at) VALUES "
                    "($1, $2::varchar, 'sms', $3, $4::varchar, CASE WHEN $4::varchar = 'pending' "
                    "THEN NULL ELSE 'SM' || $2::varchar END, "
                    "CASE WHEN $4::varchar = 'pending' THEN NULL ELSE $5::timestamptz END)",
                    camp, customer, salon, status, T0)
            user = await conn.fetchval(
                "INSERT INTO users (phone, name) VALUES ($1, 'U') RETURNING id", phone(40))
            await conn.execute("UPDATE imported_customers SET linked_user_id = $2, "
                               "registered_at = $3 WHERE id = $1", ids[0], user, T0)
            await conn.execute("INSERT INTO bookings (salon_id, user_id, amount_in_paisa, "
                               "created_at) VALUES ($1, $2, 100, $3)", salon, user,
                               T0 + timedelta(days=1))

            assert 11 in await migrate(conn)
            got = await facts(conn)
            assert got[ids[0]] == (True, True, T0, T0 + timedelta(days=1))
            assert got[ids[1]] == (True, False, T0, None)
            assert got[ids[2]] == (False, False, None, None)
        finally:
            await conn.close()


async def test_a_bulk_load_that_bypassed_the_triggers_is_repaired(
        pool: asyncpg.Pool, cipher: PiiCipher) -> None:
    salon = await add_salon(pool, "Bulk")
    a, b = await add_customers(pool, cipher, salon, [phone(51), phone(52)])
    user = await register(pool, a, 51, T0)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")  # no triggers
        first = await campaign(conn, salon, [a, b])
        await set_status(conn, first, a, "delivered", T0 - timedelta(days=1))
        await book(conn, salon, user, T0 + timedelta(days=2))
    stale = {r["id"]: tuple(r.values())[1:] for r in await pool.fetch(STORED)}
    assert stale[a] == (False, False, None, None)

    assert await pool.fetchval("SELECT onboardd_refresh_funnel_facts()") == 1
    got = await facts(pool)
    assert got[a] == (True, True, T0 - timedelta(days=1), T0 + timedelta(days=2))
    assert got[b] == (False, False, None, None)
    assert await pool.fetchval("SELECT onboardd_refresh_funnel_facts()") == 0
