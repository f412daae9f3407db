"""Schema and migrations against the real embedded PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from onboardd.db.migrate import available, migrate, pending
from tests.conftest import db_url_for


async def test_fresh_database_migrates_once_even_when_two_instances_race(pg_uri: str) -> None:
    admin = await asyncpg.connect(pg_uri)
    await admin.execute("DROP DATABASE IF EXISTS race_db")
    await admin.execute("CREATE DATABASE race_db")
    await admin.close()
    url = db_url_for(pg_uri, "race_db")
    conns = [await asyncpg.connect(url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        applied = sorted(v for r in results for v in r)
        assert applied == [m.version for m in available()]
        rows = await conns[0].fetch("SELECT version FROM onboardd_schema_migrations")
        assert sorted(r["version"] for r in rows) == applied
        assert await pending(conns[0]) == []
        assert await migrate(conns[0]) == []
    finally:
        for c in conns:
            await c.close()


SPEC_TABLES = {
    "customer_import_batches": {"id", "salon_id", "imported_by", "file_name", "total_records",
                                "successful_imports", "failed_imports", "duplicate_skipped",
                                "status", "error_log", "created_at", "completed_at"},
    "imported_customers": {"id", "salon_id", "import_batch_id", "customer_name", "status",
                           "invited_at", "registered_at", "linked_user_id", "created_at",
                           "updated_at"},
    "invitation_campaigns": {"id", "salon_id", "name", "channel", "message_template",
                             "welcome_offer_id", "status", "scheduled_for",
                             "target_customer_count", "messages_sent", "messages_delivered",
                             "messages_failed", "created_by", "created_at", "started_at",
                             "completed_at"},
    "invitation_messages": {"id", "campaign_id", "imported_customer_id", "channel",
                            "twilio_message_sid", "status", "error_message", "sent_at",
                            "delivered_at", "read_at", "created_at"},
    "welcome_offers": {"id", "salon_id", "name", "discount_type", "discount_value",
                       "max_discount_in_paisa", "minimum_purchase_in_paisa", "validity_days",
                       "usage_limit", "is_active", "total_redemptions", "created_at",
                       "updated_at"},
    "welcome_offer_redemptions": {"id", "welcome_offer_id", "user_id", "imported_customer_id",
                                  "booking_id", "discount_applied_in_paisa", "expires_at",
                                  "redeemed_at", "status", "created_at"},
}


async def test_every_spec_column_exists(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        for table, columns in SPEC_TABLES.items():
            rows = await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1", table)
            found = {r["column_name"] for r in rows}
            assert columns <= found, (table, columns - found)
    finally:
        await conn.close()


async def test_cascades_and_set_null(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        salon = await conn.fetchval("INSERT INTO salons (name) VALUES ('S') RETURNING id")
        batch = await conn.fetchval(
            "INSERT INTO customer_import_batches (salon_id, imported_by) VALUES ($1, 'a') "
            "RETURNING id", salon)
        cust = await conn.fetchval(
            "INSERT INTO imported_customers (salon_id, import_batch_id, customer_name, phone_enc,"
            " normalized_phone_enc, phone_hash) VALUES ($1, $2, 'A', 'x', 'y', '\\x01') "
            "RETURNING id", salon, batch)
        await conn.execute("DELETE FROM customer_import_batches WHERE id = $1", batch)
        assert await conn.fetchval(
            "SELECT import_batch_id FROM imported_customers WHERE id = $1", cust) is None
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO imported_customers (salon_id, customer_name, phone_enc, "
                "normalized_phone_enc, phone_hash) VALUES ($1, 'B', 'x', 'y', '\\x01')", salon)
        await conn.execute("DELETE FROM salons WHERE id = $1", salon)
        assert await conn.fetchval("SELECT count(*) FROM imported_customers") == 0
    finally:
        await conn.close()


async def test_user_insert_writes_registration_event_and_notifies(db_url: str) -> None:
    listener = await asyncpg.connect(db_url)
    conn = await asyncpg.connect(db_url)
    got: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("onboardd_registration", lambda *a: got.put_nowait(a[3]))
    try:
        user = await conn.fetchval(
            "INSERT INTO users (phone, name) VALUES ('+919876543210', 'P') RETURNING id")
        event_id = await asyncio.wait_for(got.get(), 5)
        row = await conn.fetchrow("SELECT * FROM registration_events WHERE id = $1",
                                  int(event_id))
        assert row["user_id"] == user and row["processed_at"] is None
        await conn.execute("UPDATE users SET name = 'Q' WHERE id = $1", user)
        await conn.execute("UPDATE users SET phone = '+919876543211' WHERE id = $1", user)
        assert await conn.fetchval("SELECT count(*) FROM registration_events") == 2
        await conn.execute("INSERT INTO users (name) VALUES ('no phone')")
        assert await conn.fetchval("SELECT count(*) FROM registration_events") == 2
    finally:
        await listener.close()
        await conn.close()


async def test_one_sending_campaign_per_salon_is_enforced(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        salon = await conn.fetchval("INSERT INTO salons (name) VALUES ('S') RETURNING id")
        insert = ("INSERT INTO invitation_campaigns (salon_id, name, message_template, status, "
                  "created_by) VALUES ($1, $2, 't', $3, 'a')")
        await conn.execute(insert, salon, "one", "sending")
        await conn.execute(insert, salon, "two", "draft")
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(insert, salon, "three", "sending")
    finally:
        await conn.close()
