"""The status recorder on a real database: outcomes, callbacks in every order, orphans,
completion, counters equal to recounts, and the actor's queue/futures/drain behaviour."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import secrets
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onboardd.actors import status_recorder
from onboardd.db import delivery as db
from onboardd.domain import delivery
from onboardd.domain.status_events import SendOutcome, StatusCallback, StatusWork
from onboardd.runtime import Services
from tests.campaign_support import wait_for
from tests.status_inbox_support import inbox_rows

T0 = datetime(2025, 1, 1, tzinfo=UTC)
TWILIO_STATUSES = ["queued", "sending", "sent", "delivered", "undelivered", "failed", "read"]


def new_sid() -> str:
    """A Twilio-shaped message SID."""
    return "SM" + secrets.token_hex(16)


async def new_salon(services: Services) -> str:
    """Another salon (one campaign per salon may be sending at a time)."""
    salon_id: str = await services.pool.fetchval(
        "INSERT INTO salons (name) VALUES ('Another salon') RETURNING id")
    return salon_id


async def seed_campaign(services: Services, salon_id: str, n: int, *, status: str = "sending",
                        channel: str = "whatsapp", phones: list[str] | None = None
                        ) -> tuple[str, list[str]]:
    """A campaign with n pending messages (one customer each); returns (campaign, message ids)."""
    cipher = services.cipher
    phones = phones or [f"+9198{secrets.randbelow(10**8):08d}" for _ in range(n)]
    async with services.pool.acquire() as conn, conn.transaction():
        campaign_id: str = await conn.fetchval(
            """INSERT INTO invitation_campaigns (salon_id, name, channel, message_template,
                   status, created_by, target_customer_count, started_at)
               VALUES ($1, 'Test', $2, 'Hi {{customer_name}}', $3, 'admin-1', $4, now())
               RETURNING id""", salon_id, channel, status, n)
        customer_ids = await conn.fetch(
            """INSERT INTO imported_customers (salon_id, customer_name, phone_enc,
                   normalized_phone_enc, phone_hash)
               SELECT $1, 'Customer ' || ord, enc, enc, hash
               FROM unnest($2::text[], $3::bytea[]) WITH ORDINALITY AS t(enc, hash, ord)
               ON CONFLICT (salon_id, phone_hash) DO UPDATE SET updated_at = now()
               RETURNING id""",
            salon_id, [cipher.encrypt(p, "phone") for p in phones],
            [cipher.phone_hash(p) for p in phones])
        rows = await conn.fetch(
            """INSERT INTO invitation_messages
                   (campaign_id, imported_customer_id, channel, salon_id)
               SELECT $1, cid, $2, $3 FROM unnest($4::text[]) WITH ORDINALITY AS t(cid, ord)
               RETURNING id""",
            campaign_id, channel, salon_id, [r["id"] for r in customer_ids])
    return campaign_id, [r["id"] for r in rows]


async def accept_all(services: Services, message_ids: list[str]) -> list[str]:
    """Record an accepted outcome for each message; returns their SIDs."""
    sids = [new_sid() for _ in message_ids]
    now = datetime.now(UTC)
    outcomes: list[SendOutcome | StatusCallback] = [
        SendOutcome(message_id=m, outcome="accepted", at=now, channel="whatsapp", sid=s,
                    sender="whatsapp:+14155238886") for m, s in zip(message_ids, sids, strict=True)]
    await db.record_batch(services.pool, outcomes, 3600.0)
    return sids


async def message_rows(services: Services, campaign_id: str) -> dict[str, asyncpg.Record]:
    """The campaign's messages by id."""
    rows = await services.pool.fetch(
        "SELECT * FROM invitation_messages WHERE campaign_id = $1", campaign_id)
    return {r["id"]: r for r in rows}


async def assert_counters_equal(services: Services, campaign_id: str) -> db.Counters:
    """Stored counters equal the recount."""
    counters = await db.recount(services.pool, campaign_id)
    assert counters.stored == counters.recount
    return counters


def expected(statuses: list[str], start: str = "queued") -> str:
    """Sequential merge_status of Twilio statuses, as stored."""
    current = start
    for status in statuses:
        stored = delivery.storable_status(status)
        if stored is not None:
            current = delivery.merge_status(current, stored)
    return current


def cb(sid: str, status: str, seconds: int = 0, code: int | None = None) -> StatusCallback:
    """A status callback."""
    return StatusCallback(sid=sid, status=status, at=T0 + timedelta(seconds=seconds),
                          error_code=code, error_message="carrier said no" if code else None)


async def sql_merge_table(pool: asyncpg.Pool, statuses: list[str]) -> dict[tuple[str, str], str]:
    """onboardd_merge_status (migration 0004) over every pair of statuses."""
    rows = await pool.fetch(
        "SELECT a.s AS current_status, b.s AS incoming, onboardd_merge_status(a.s, b.s) AS merged"
        " FROM unnest($1::text[]) AS a(s), unnest($1::text[]) AS b(s)", statuses)
    return {(r["current_status"], r["incoming"]): r["merged"] for r in rows}


async def test_sql_merge_equals_merge_status_for_every_pair(services: Services) -> None:
    statuses = [*delivery._ORDER, "skipped", "receiving", "received"]
    table = await sql_merge_table(services.pool, statuses)
    for a, b in itertools.product(statuses, statuses):
        assert table[(a, b)] == delivery.merge_status(a, b), (a, b)


async def test_every_pair_in_order_reversed_and_in_one_flush(services: Services,
                                                             salon: str) -> None:
    pairs = list(itertools.product(TWILIO_STATUSES, TWILIO_STATUSES))  # includes duplicates
    campaign, ids = await seed_campaign(services, salon, 2 * len(pairs))
    sids = await accept_all(services, ids)
    separate = list(zip(pairs, sids[: len(pairs)], strict=True))
    together = list(zip(pairs, sids[len(pairs):], strict=True))
    # Separate flushes: first everyone's first status, then everyone's second.
    await db.record_batch(services.pool, [cb(s, a, 1, 30003 if a in ("failed", "undelivered")
                                             else None) for (a, _b), s in separate], 3600.0)
    await db.record_batch(services.pool, [cb(s, b, 2) for (_a, b), s in separate], 3600.0)
    # One flush holding both events of a SID (folded in Python first).
    await db.record_batch(services.pool, [e for (a, b), s in together
                                          for e in (cb(s, a, 1), cb(s, b, 2))], 3600.0)
    rows = {r["twilio_message_sid"]: r for r in (await message_rows(services, campaign)).values()}
    for (a, b), sid in separate + together:
        row = rows[sid]
        assert row["status"] == expected([a, b]), (a, b, row["status"])
        if row["status"] in ("delivered", "read"):
            assert row["delivered_at"] is not None
        if row["status"] == "read":
            assert row["read_at"] is not None
    # First error wins and is explained.
    failed_first = rows[separate[pairs.index(("failed", "delivered"))][1]]
    assert failed_first["status"] == "delivered"
    assert failed_first["error_code"] == 30003
    assert failed_first["error_message"] == delivery.error_message(30003, None)
    await assert_counters_equal(services, campaign)


async def test_timestamps_and_errors_are_set_once(services: Services, salon: str) -> None:
    _campaign, ids = await seed_campaign(services, salon, 1)
    [sid] = await accept_all(services, ids)
    await db.record_batch(services.pool, [cb(sid, "sent", 5)], 3600.0)
    await db.record_batch(services.pool, [cb(sid, "delivered", 9), cb(sid, "sent", 7)], 3600.0)
    await db.record_batch(services.pool, [cb(sid, "delivered", 11), cb(sid, "read", 20)], 3600.0)
    await db.record_batch(services.pool, [cb(sid, "read", 30), cb(sid, "failed", 31, 30008)],
                          3600.0)
    row = await services.pool.fetchrow("SELECT * FROM invitation_messages WHERE id = $1", ids[0])
    assert row is not None
    assert row["status"] == "read"
    assert row["sent_at"] == T0 + timedelta(seconds=5)
    assert row["delivered_at"] == T0 + timedelta(seconds=9)
    assert row["read_at"] == T0 + timedelta(seconds=20)
    assert row["error_code"] == 30008  # recorded, though the status stays read


async def test_outcomes_update_message_customer_campaign_and_opt_outs(services: Services,
                                                                      salon: str) -> None:
    campaign, ids = await seed_campaign(services, salon, 5)
    a, r, f, s, fb = ids
    retry_at = T0 + timedelta(minutes=1)
    items: list[SendOutcome | StatusCallback] = [
        SendOutcome(a, "accepted", T0, "whatsapp", sid=new_sid(), sender="whatsapp:+1415"),
        SendOutcome(r, "retry", T0, "whatsapp", error_code=30003, next_attempt_at=retry_at),
        SendOutcome(f, "failed", T0, "whatsapp", error_code=21211, error_message="bad"),
        SendOutcome(s, "skipped", T0, "sms", sender="+1500", error_code=21610,
                    skip_reason="opted_out", opted_out=True),
        SendOutcome(fb, "fallback", T0, "whatsapp", error_code=63003),
    ]
    result = await db.record_batch(services.pool, items, 3600.0)
    assert result.outcomes_applied == 5
    rows = await message_rows(services, campaign)
    assert rows[a]["status"] == "queued" and rows[a]["queued_at"] == T0
    assert rows[a]["attempts"] == 1 and rows[a]["claimed_until"] is None
    assert rows[r]["status"] == "pending" and rows[r]["next_attempt_at"] == retry_at
    assert rows[r]["error_code"] == 30003
    assert rows[f]["status"] == "failed"
    assert rows[f]["error_message"] == delivery.error_message(21211, "bad")
    assert rows[s]["status"] == "skipped" and rows[s]["skip_reason"] == "opted_out"
    assert rows[fb]["channel"] == "sms" and rows[fb]["fallback_from"] == "whatsapp"
    assert rows[fb]["status"] == "pending" and rows[fb]["error_code"] == 63003
    customers = {r["id"]: r for r in await services.pool.fetch(
        "SELECT c.*, m.id AS mid FROM imported_customers c JOIN invitation_messages m "
        "ON m.imported_customer_id = c.id WHERE m.campaign_id = $1", campaign)}
    by_message = {c["mid"]: c for c in customers.values()}
    assert by_message[a]["status"] == "invited" and by_message[a]["invited_at"] == T0
    assert by_message[a]["last_campaign_id"] == campaign
    assert by_message[s]["status"] == "opted_out"
    assert by_message[r]["status"] == "pending"
    opt = await services.pool.fetch("SELECT * FROM opt_outs")
    assert [(o["phone_hash"], o["sender"], o["source"]) for o in opt] == [
        (by_message[s]["phone_hash"], "+1500", "twilio_21610")]
    counters = await assert_counters_equal(services, campaign)
    assert counters.stored == {"sent": 1, "delivered": 0, "read": 0, "failed": 1, "skipped": 1}
    # A stale outcome for a message already accepted changes nothing.
    again = await db.record_batch(services.pool, [SendOutcome(a, "failed", T0, "whatsapp")],
                                  3600.0)
    assert again.outcomes_ignored == [a]
    await assert_counters_equal(services, campaign)


async def test_an_outcome_under_a_taken_over_claim_changes_nothing(services: Services,
                                                                   salon: str) -> None:
    """The fencing token: the late answer of an attempt the lease sweep took over (claim 4) is
    ignored, in the same flush as the sweep's own outcome (claim 5) and on its own later."""
    campaign, (mid,) = await seed_campaign(services, salon, 1)
    await services.pool.execute(
        "UPDATE invitation_messages SET status = 'sending', claim_token = 5, claimed_by = 1"
        " WHERE id = $1", mid)
    stale = SendOutcome(mid, "accepted", T0, "whatsapp", sid=new_sid(), claim_token=4)
    current = SendOutcome(mid, "retry", T0, "whatsapp", next_attempt_at=T0, claim_token=5)
    result = await db.record_batch(services.pool, [current, stale], 3600.0)
    assert result.outcomes_applied == 1
    row = (await message_rows(services, campaign))[mid]
    assert row["status"] == "pending" and row["twilio_message_sid"] is None
    assert row["claim_token"] is None and row["claimed_by"] is None
    late = await db.record_batch(services.pool, [stale], 3600.0)
    assert late.outcomes_applied == 0 and late.outcomes_ignored == [mid]
    assert (await message_rows(services, campaign))[mid]["status"] == "pending"


async def test_callback_before_its_outcome_is_kept_then_applied(services: Services,
                                                                salon: str) -> None:
    campaign, ids = await seed_campaign(services, salon, 2)
    sid = new_sid()
    early = await db.record_batch(services.pool, [cb(sid, "delivered", 3)], 3600.0)
    assert early.orphaned_sids == [sid]
    assert await services.pool.fetchval("SELECT count(*) FROM status_callback_orphans") == 1
    # The SID appears (dispatcher outcome), with another callback in the same flush.
    other = new_sid()
    await db.record_batch(services.pool, [
        cb(other, "sent", 1),
        SendOutcome(ids[0], "accepted", T0, "whatsapp", sid=sid),
        SendOutcome(ids[1], "accepted", T0, "whatsapp", sid=other),
    ], 3600.0)
    rows = await message_rows(services, campaign)
    assert rows[ids[0]]["status"] == "delivered"
    assert rows[ids[1]]["status"] == "sent"
    assert await services.pool.fetchval("SELECT count(*) FROM status_callback_orphans") == 0
    await assert_counters_equal(services, campaign)


async def test_campaign_completes_when_all_final_but_paused_stays(services: Services,
                                                                  salon: str) -> None:
    campaign, ids = await seed_campaign(services, salon, 2)
    sids = await accept_all(services, ids)
    await db.record_batch(services.pool, [cb(sids[0], "delivered")], 3600.0)
    status = "SELECT status, completed_at FROM invitation_campaigns WHERE id = $1"
    assert (await services.pool.fetchrow(status, campaign))["status"] == "sending"
    # The other one is only queued: final once the delivery wait is over (0 s here).
    result = await db.record_batch(services.pool, [cb(sids[0], "read")], 0.0)
    assert result.completed_campaigns == [campaign]
    row = await services.pool.fetchrow(status, campaign)
    assert row is not None and row["status"] == "completed" and row["completed_at"] is not None

    paused, pids = await seed_campaign(services, await new_salon(services), 1, status="paused")
    psids = await accept_all(services, pids)
    await db.record_batch(services.pool, [cb(psids[0], "delivered")], 0.0)
    assert await db.complete_campaigns(services.pool, 0.0) == []
    assert (await services.pool.fetchrow(status, paused))["status"] == "paused"


async def test_a_flush_leaving_a_message_unfinished_completes_nothing_until_its_end(
        services: Services, salon: str) -> None:
    status = "SELECT status FROM invitation_campaigns WHERE id = $1"
    campaign, ids = await seed_campaign(services, salon, 2)
    sids = await accept_all(services, ids)
    # One settles, the other is left sent (within the wait): the campaign stays open...
    result = await db.record_batch(services.pool, [cb(sids[0], "failed", 1, 30003),
                                                   cb(sids[1], "sent", 1)], 3600.0)
    assert result.completed_campaigns == []
    assert await services.pool.fetchval(status, campaign) == "sending"
    # ... until the flush that settles the last one completes it.
    result = await db.record_batch(services.pool, [cb(sids[1], "delivered", 2)], 3600.0)
    assert result.completed_campaigns == [campaign]
    assert await services.pool.fetchval(status, campaign) == "completed"

    # A message left sent whose delivery wait is over counts as final in the same flush.
    other, oids = await seed_campaign(services, await new_salon(services), 2)
    osids = await accept_all(services, oids)
    result = await db.record_batch(services.pool, [cb(osids[0], "delivered", 1),
                                                   cb(osids[1], "sent", 1)], 0.0)
    assert result.completed_campaigns == [other]
    await assert_counters_equal(services, other)


_event = st.tuples(st.integers(min_value=0, max_value=7), st.sampled_from(TWILIO_STATUSES))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(_event, min_size=1, max_size=60),
       cuts=st.lists(st.integers(min_value=1, max_value=60), max_size=6))
async def test_random_storm_keeps_counters_equal_to_recounts(
        services: Services, events: list[tuple[int, str]], cuts: list[int]) -> None:
    campaign, ids = await seed_campaign(services, await new_salon(services), 8)
    sids = await accept_all(services, ids)
    stream = [cb(sids[i], status, n, 30003 if status in ("failed", "undelivered") else None)
              for n, (i, status) in enumerate(events)]
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    for lo, hi in itertools.pairwise(bounds):
        await db.record_batch(services.pool, list(stream[lo:hi]), 3600.0)
    rows = {r["twilio_message_sid"]: r for r in (await message_rows(services, campaign)).values()}
    for i, sid in enumerate(sids):
        assert rows[sid]["status"] == expected([s for j, s in events if j == i])
    await assert_counters_equal(services, campaign)


async def test_actor_resolves_futures_after_commit_and_drains_on_stop(services: Services,
                                                                      salon: str) -> None:
    campaign, ids = await seed_campaign(services, salon, 40)
    stopping = asyncio.Event()
    task = asyncio.create_task(status_recorder.run(services, stopping))
    loop = asyncio.get_running_loop()
    sids = [new_sid() for _ in ids]
    futures = []
    for message_id, sid in zip(ids, sids, strict=True):
        done: asyncio.Future[None] = loop.create_future()
        await services.queues.status.put(StatusWork(
            items=[SendOutcome(message_id, "accepted", T0, "sms", sid=sid)], done=done))
        futures.append(done)
    await asyncio.gather(*futures)
    rows = await message_rows(services, campaign)
    assert all(r["status"] == "queued" for r in rows.values())
    # Work queued right as the actor is told to stop is still recorded before it returns.
    late = [StatusWork(items=[cb(sid, "delivered")], done=loop.create_future()) for sid in sids]
    for work in late:
        services.queues.status.put_nowait(work)
    stopping.set()
    await task
    assert all(w.done is not None and w.done.done() and w.done.exception() is None
               for w in late)
    # Settled once durable in the status inbox; on stop the recorder applies what it appended.
    assert await inbox_rows(services) == 0
    counters = await assert_counters_equal(services, campaign)
    assert counters.stored["delivered"] == 40


async def test_the_recorder_keeps_a_connection_only_while_it_has_work(services: Services,
                                                                      salon: str) -> None:
    supervisor = msgspec.structs.replace(services.cfg.supervisor, poll_interval_s=0.1)
    quick = dataclasses.replace(services, cfg=msgspec.structs.replace(
        services.cfg, supervisor=supervisor), queues=type(services.queues)())
    pool = services.pool

    def in_use() -> int:
        return pool.get_size() - pool.get_idle_size()

    campaign, ids = await seed_campaign(services, salon, 2)
    sids = await accept_all(services, ids)
    stopping = asyncio.Event()
    task = asyncio.create_task(status_recorder.run(quick, stopping))
    loop = asyncio.get_running_loop()
    for sid in sids:
        done: asyncio.Future[None] = loop.create_future()
        quick.queues.status.put_nowait(StatusWork(items=[cb(sid, "delivered")], done=done))
        await done
        assert in_use() == 1, "held from one flush to the next"
    await wait_for(lambda: in_use() == 0, timeout_s=5)  # idle for a poll interval
    done = loop.create_future()
    quick.queues.status.put_nowait(StatusWork(items=[cb(sids[0], "read")], done=done))
    await done
    stopping.set()
    await task
    assert in_use() == 0, "given back when it stops"
    rows = await message_rows(services, campaign)
    assert sorted(r["status"] for r in rows.values()) == ["delivered", "read"]
    await assert_counters_equal(services, campaign)


async def test_failed_flush_fails_the_futures(services: Services, db_url: str) -> None:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    await pool.close()
    broken = dataclasses.replace(services, pool=pool)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    work = StatusWork(items=[cb(new_sid(), "sent")], done=done)
    with pytest.raises(asyncpg.InterfaceError):
        await status_recorder.flush(broken, [work])
    assert isinstance(done.exception(), asyncpg.InterfaceError)


# Asynchronous WhatsApp -> SMS fallback ---------------------------------------------------------


async def seed_both(services: Services, salon_id: str, n: int, *, status: str = "sending"
                    ) -> tuple[str, list[str]]:
    """A `both` campaign whose n messages start on WhatsApp (as the audience freeze makes them)."""
    campaign, ids = await seed_campaign(services, salon_id, n, status=status)
    await services.pool.execute(
        "UPDATE invitation_campaigns SET channel = 'both' WHERE id = $1", campaign)
    return campaign, ids


async def test_unreachable_failure_requeues_on_sms_for_both(services: Services,
                                                             salon: str) -> None:
    campaign, ids = await seed_both(services, salon, 4)
    sids = await accept_all(services, ids)
    invited_at = await services.pool.fetchval(
        "SELECT last_invited_at FROM imported_customers c JOIN invitation_messages m "
        "ON m.imported_customer_id = c.id WHERE m.id = $1", ids[0])
    result = await db.record_batch(services.pool, [
        cb(sids[0], "sent", 1), cb(sids[0], "failed", 2, 63003),  # folded in one flush
        cb(sids[1], "undelivered", 2, 63024),
        cb(sids[2], "failed", 2, 30008),  # another error: a plain failure
        cb(sids[3], "delivered", 2),
    ], 3600.0)
    assert sorted(result.fell_back_sids) == sorted(sids[:2])
    assert result.orphaned_sids == []
    rows = await message_rows(services, campaign)
    for message_id, sid, code in ((ids[0], sids[0], 63003), (ids[1], sids[1], 63024)):
        row = rows[message_id]
        assert (row["channel"], row["status"], row["fallback_from"]) == (
            "sms", "pending", "whatsapp")
        assert (row["twilio_message_sid"], row["fallback_sid"]) == (None, sid)
        assert row["error_code"] == code
        assert row["error_message"] == delivery.error_message(code, "carrier said no")
        assert row["next_attempt_at"] <= datetime.now(UTC)
        assert row["sent_at"] is None and row["queued_at"] is None
    assert (rows[ids[2]]["status"], rows[ids[2]]["channel"]) == ("failed", "whatsapp")
    assert rows[ids[3]]["status"] == "delivered"
    counters = await assert_counters_equal(services, campaign)
    # One invitation per customer: the re-queued ones are not counted as sent nor failed.
    assert counters.stored == {"sent": 2, "delivered": 1, "read": 0, "failed": 1, "skipped": 0}
    assert await services.pool.fetchval(
        "SELECT last_invited_at FROM imported_customers c JOIN invitation_messages m "
        "ON m.imported_customer_id = c.id WHERE m.id = $1", ids[0]) == invited_at
    # The SMS is then accepted and delivered: counted once.
    sms_sid = new_sid()
    await db.record_batch(services.pool, [
        SendOutcome(ids[0], "accepted", T0, "sms", sid=sms_sid, sender="+15005550006")], 3600.0)
    await db.record_batch(services.pool, [cb(sms_sid, "delivered", 5)], 3600.0)
    row = (await message_rows(services, campaign))[ids[0]]
    assert (row["status"], row["channel"], row["twilio_message_sid"], row["fallback_sid"]) == (
        "delivered", "sms", sms_sid, sids[0])
    counters = await assert_counters_equal(services, campaign)
    assert counters.stored["sent"] == 3 and counters.stored["delivered"] == 2


async def test_unreachable_failure_on_paused_both_campaign_waits_on_sms(
        services: Services, salon: str) -> None:
    campaign, ids = await seed_both(services, salon, 1, status="paused")
    [sid] = await accept_all(services, ids)
    result = await db.record_batch(services.pool, [cb(sid, "failed", 1, 63005)], 3600.0)
    assert result.fell_back_sids == [sid]
    row = (await message_rows(services, campaign))[ids[0]]
    assert (row["status"], row["channel"]) == ("pending", "sms")
    assert await db.complete_campaigns(services.pool, 0.0) == []
    await assert_counters_equal(services, campaign)


async def test_unreachable_failure_fails_when_whatsapp_only_or_completed(
        services: Services, salon: str) -> None:
    only, [only_id] = await seed_campaign(services, salon, 1)  # channel whatsapp
    done, [done_id] = await seed_both(services, await new_salon(services), 1,
                                      status="completed")
    sids = await accept_all(services, [only_id, done_id])
    result = await db.record_batch(
        services.pool, [cb(sid, "failed", 1, 63003) for sid in sids], 3600.0)
    assert result.fell_back_sids == []
    for campaign, message_id, sid in ((only, only_id, sids[0]), (done, done_id, sids[1])):
        row = (await message_rows(services, campaign))[message_id]
        assert (row["status"], row["channel"], row["error_code"]) == (
            "failed", "whatsapp", 63003)
        assert (row["twilio_message_sid"], row["fallback_sid"]) == (sid, None)
        counters = await assert_counters_equal(services, campaign)
        assert (counters.stored["sent"], counters.stored["failed"]) == (1, 1)


async def test_late_callbacks_for_the_whatsapp_sid_are_no_ops(services: Services,
                                                               salon: str) -> None:
    campaign, ids = await seed_both(services, salon, 1)
    [wa_sid] = await accept_all(services, ids)
    await db.record_batch(services.pool, [cb(wa_sid, "failed", 1, 63003)], 3600.0)
    pending = (await message_rows(services, campaign))[ids[0]]
    # A duplicate of the failure (and a stray later status) before the SMS goes out.
    late = await db.record_batch(services.pool, [cb(wa_sid, "failed", 3, 63003),
                                                 cb(wa_sid, "read", 4)], 3600.0)
    assert (late.callbacks_matched, late.orphaned_sids, late.fell_back_sids) == (1, [], [])
    assert (await message_rows(services, campaign))[ids[0]] == pending
    sms_sid = new_sid()
    await db.record_batch(services.pool, [
        SendOutcome(ids[0], "accepted", T0, "sms", sid=sms_sid),
        cb(sms_sid, "sent", 5)], 3600.0)
    sent = (await message_rows(services, campaign))[ids[0]]
    # ... and after it: still no-ops, not orphans.
    late = await db.record_batch(services.pool, [cb(wa_sid, "failed", 6, 63003)], 3600.0)
    assert (late.callbacks_matched, late.orphaned_sids) == (1, [])
    assert await services.pool.fetchval("SELECT count(*) FROM status_callback_orphans") == 0
    assert (await message_rows(services, campaign))[ids[0]] == sent
    assert sent["status"] == "sent" and sent["channel"] == "sms"
    assert await db.known_sids(services.pool, [wa_sid, sms_sid]) == {wa_sid, sms_sid}
    await assert_counters_equal(services, campaign)


async def test_unreachable_failure_kept_as_orphan_falls_back_when_its_sid_lands(
        services: Services, salon: str) -> None:
    campaign, ids = await seed_both(services, salon, 1)
    sid = new_sid()
    early = await db.record_batch(services.pool, [cb(sid, "failed", 2, 63003)], 3600.0)
    assert early.orphaned_sids == [sid]
    result = await db.record_batch(services.pool, [
        SendOutcome(ids[0], "accepted", T0, "whatsapp", sid=sid)], 3600.0)
    assert result.fell_back_sids == [sid]
    row = (await message_rows(services, campaign))[ids[0]]
    assert (row["status"], row["channel"], row["fallback_sid"]) == ("pending", "sms", sid)
    await assert_counters_equal(services, campaign)


async def test_final_drain_settles_every_future_even_when_flushes_fail(services: Services,
                                                                        db_url: str) -> None:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    await pool.close()
    broken = dataclasses.replace(services, pool=pool, queues=type(services.queues)())
    loop = asyncio.get_running_loop()
    works = [StatusWork(items=[cb(new_sid(), "sent")], done=loop.create_future())
             for _ in range(3)]
    for work in works:
        broken.queues.status.put_nowait(work)
    stopping = asyncio.Event()
    stopping.set()  # told to stop (drain-last: the producers are gone) with work queued
    await status_recorder.run(broken, stopping)
    assert broken.queues.status.empty()
    assert all(w.done is not None and isinstance(w.done.exception(), asyncpg.InterfaceError)
               for w in works)


async def test_cancelled_recorder_fails_the_futures_it_will_not_record(services: Services
                                                                        ) -> None:
    queues = type(services.queues)()
    idle = dataclasses.replace(services, queues=queues)
    stopping = asyncio.Event()
    task = asyncio.create_task(status_recorder.run(idle, stopping))
    await asyncio.sleep(0)  # the actor is waiting for work
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task.cancel()
    queues.status.put_nowait(StatusWork(items=[cb(new_sid(), "sent")], done=done))
    with pytest.raises(asyncio.CancelledError):
        await task
    assert isinstance(done.exception(), RuntimeError)
