"""Poison status events on a real database (issue 10): queued straight to the recorder, past the
webhook's validation, an event the database refuses is parked and logged once, and every other
event of the same flush (send results from the dispatcher included) lands."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import asyncpg
import pytest
import structlog

from onboardd.actors import status_recorder
from onboardd.domain.status_events import SendOutcome, StatusCallback, StatusWork
from onboardd.runtime import Services
from tests.integration.test_status_recorder import (
    T0,
    assert_counters_equal,
    cb,
    message_rows,
    new_sid,
    seed_campaign,
)

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)


def _poison(sid: str) -> list[StatusCallback | SendOutcome]:
    """One event per way the database (or the driver) refuses a value."""
    return [
        cb("SM" + "a" * 60, "delivered"),  # longer than the varchar(50) SID columns
        cb(sid, "failed", code=2**31),  # beyond int32
        StatusCallback(sid=sid, status="undelivered", at=T0, error_code=39999,
                       error_message="To +919876543210 said no\x00"),  # NUL, and a phone
    ]


async def test_poison_events_are_parked_and_the_rest_of_the_flush_lands(
        services: Services, salon: str) -> None:
    campaign, ids = await seed_campaign(services, salon, 6)
    sids = [new_sid() for _ in ids]
    loop = asyncio.get_running_loop()
    # One flush: the dispatcher's send results, good callbacks, and poison events between them.
    accepted = [SendOutcome(m, "accepted", NOW, "whatsapp", sid=s, sender="whatsapp:+14155238886")
                for m, s in zip(ids[:4], sids[:4], strict=True)]
    poison = _poison(sids[0])
    bad_outcome = SendOutcome(ids[4], "accepted", NOW, "whatsapp", sid="SM" + "b" * 60)
    works = [
        StatusWork(items=[*accepted[:2], poison[0], *accepted[2:]], done=loop.create_future()),
        *[StatusWork(items=[cb(s, "delivered", 5)], done=loop.create_future()) for s in sids[:3]],
        StatusWork(items=[poison[1]], done=loop.create_future()),
        StatusWork(items=[poison[2], bad_outcome,
                          SendOutcome(ids[5], "skipped", NOW, "whatsapp",
                                      skip_reason="invalid_number")],
                   done=loop.create_future()),
    ]
    for work in works:  # all queued before the actor starts: one flush
        services.queues.status.put_nowait(work)
    stopping = asyncio.Event()
    with structlog.testing.capture_logs([structlog.contextvars.merge_contextvars]) as logs:
        task = asyncio.create_task(status_recorder.run(services, stopping))
        await asyncio.wait_for(asyncio.gather(*(w.done for w in works if w.done)), 10)
        assert not task.done()  # the actor did not crash
        stopping.set()
        await task

    rows = await message_rows(services, campaign)
    status = {m: rows[m]["status"] for m in ids}
    assert status == {ids[0]: "delivered", ids[1]: "delivered", ids[2]: "delivered",
                      ids[3]: "queued", ids[4]: "pending", ids[5]: "skipped"}
    assert rows[ids[0]]["error_code"] is None  # the poison callbacks changed nothing
    counters = await assert_counters_equal(services, campaign)
    assert counters.stored == {"sent": 4, "delivered": 3, "read": 0, "failed": 0, "skipped": 1}

    kept = await services.pool.fetch(
        "SELECT kind, message_id, sid, error, payload FROM status_events_parked ORDER BY id")
    assert [(r["kind"], r["message_id"]) for r in kept] == [
        ("status_callback", None), ("status_callback", None), ("status_callback", None),
        ("send_outcome", ids[4])]
    assert kept[0]["sid"] == "SM" + "a" * 60 and "StringDataRightTruncation" in kept[0]["error"]
    assert kept[1]["payload"]["error_code"] == 2**31 and "int32" in kept[1]["error"]
    text = kept[2]["payload"]["error_message"]
    assert "\x00" not in text and "\\0" in text
    assert "9876543210" not in text and "3210" in text  # the phone is masked
    assert kept[3]["sid"] == "SM" + "b" * 60
    events = [e for e in logs if e["event"] == "status_event_parked"]
    assert len(events) == 4 and all(e["log_level"] == "error" for e in events)
    # The parked outcome's message id comes from the log context of applying that one event.
    assert [e.get("message_id") for e in events] == [None, None, None, ids[4]]
    assert [e["event"] for e in logs].count("status_flush_failed_applying_one_by_one") == 1
    assert not [e for e in logs if "exc_info" in e]


async def test_database_trouble_is_not_poison(services: Services, db_url: str) -> None:
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    await pool.close()
    broken = dataclasses.replace(services, pool=pool)
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(asyncpg.InterfaceError):
        await status_recorder.flush(broken, [StatusWork(items=_poison(new_sid()), done=done)])
    assert isinstance(done.exception(), asyncpg.InterfaceError)
    assert await services.pool.fetchval("SELECT count(*) FROM status_events_parked") == 0


def test_poison_is_the_events_fault_only() -> None:
    from asyncpg import exceptions as pg

    from onboardd.db import parked

    assert parked.is_poison(pg.StringDataRightTruncationError("too long"))
    assert parked.is_poison(pg.CharacterNotInRepertoireError("NUL"))
    assert parked.is_poison(pg.UniqueViolationError("dup"))
    assert parked.is_poison(OverflowError("int32"))
    assert not parked.is_poison(pg.ConnectionDoesNotExistError("gone"))
    assert not parked.is_poison(pg.AdminShutdownError("shutdown"))
    assert not parked.is_poison(pg.DeadlockDetectedError("deadlock"))
    assert not parked.is_poison(asyncpg.InterfaceError("pool is closed"))
    assert not parked.is_poison(TimeoutError())
    assert not parked.is_poison(OSError("connection refused"))
