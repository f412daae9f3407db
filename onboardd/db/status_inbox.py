"""The status inbox (migration 0019): Twilio status callbacks that are durable but not applied yet.

The status recorder appends callbacks (onboardd.db.delivery.record_batch with ``inbox=True``);
``fold`` applies the oldest ones to the messages, exactly as a recorder flush applied them
before (onboardd.db.delivery.apply_callbacks: the merge rules, orphans for unknown SIDs, the
SMS fallback, counters and funnel facts, campaign completion), and deletes them, in one
transaction under a cluster-wide advisory lock: one folder at a time, callbacks in id order,
each applied once. A fold that fails or dies rolls back whole and leaves its rows for the next.

A callback whose SID no message carries yet is held, not made an orphan at once: its send
result may be committing in the status recorder's transaction right now (a fold cannot see it,
and that transaction took the orphans before this fold kept one). The fold puts it back with
``held_since`` set; later folds take it again once a message carries its SID, and apply it then,
in inbox order with that SID's later callbacks (a later one a fold takes while an earlier one
is still held is held with it). Only a callback held for ``hold_s`` goes down
the orphan path (status_callback_orphans: a later send result or reconciliation applies it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg
import msgspec

from onboardd.db.delivery import (
    FlushConnection,
    FlushResult,
    apply_callbacks,
    callback_from_row,
    complete_campaigns,
    keep_orphans,
    with_retry,
)
from onboardd.db.parked import is_poison
from onboardd.db.queries import query
from onboardd.db.retry import in_transaction
from onboardd.domain.delivery import storable_status
from onboardd.domain.status_events import ParkedEvent, StatusCallback

# The columns status_inbox_hold takes, in its order.
_HOLD_COLUMNS = ("id", "sid", "status", "at", "error_code", "error_message", "held_since")
# What fold_one stores of a row it could not apply (the status recorder's parked form).
ParkedEventFn = Callable[[StatusCallback, BaseException], ParkedEvent]


class Fold(msgspec.Struct):
    """What one fold did: rows taken (applied, held again or kept as orphans, and deleted), rows
    it left behind (held ones included), the rows held for an unknown SID after it, the receipt
    time of its oldest row, and what applying them changed."""

    taken: int = 0
    left: int = 0
    held: int = 0
    oldest_at: datetime | None = None
    result: FlushResult = msgspec.field(default_factory=FlushResult)


class FoldFailed(Exception):
    """Applying one inbox row failed because of its values (see ``fold_one``)."""

    def __init__(self, row_id: int, error: BaseException) -> None:
        super().__init__(f"status_inbox row {row_id}: {type(error).__name__}: {error}")
        self.row_id = row_id
        self.error = error


async def fold(db: asyncpg.Pool | FlushConnection, limit: int, delivery_wait_s: float,
               hold_s: float) -> Fold:
    """Apply and delete the oldest ``limit`` inbox rows in one transaction (retried whole on a
    deadlock), on a connection of the pool or the folder's own; an empty inbox folds nothing.
    Callbacks of unknown SIDs are held for ``hold_s`` (see the module). A failed fold leaves a
    FlushConnection's connection to the caller to release."""

    async def work(conn: asyncpg.Connection) -> Fold:
        await conn.execute(query("status_inbox_fold_lock"))
        rows = await conn.fetch(query("status_inbox_take"), limit, hold_s)
        done = Fold()
        if rows:
            done.taken = len(rows)
            done.left = int(rows[0]["left_behind"])
            done.oldest_at = min(r["at"] for r in rows)
            await _apply(conn, rows, done, delivery_wait_s, hold_s)
        done.held = int(await conn.fetchval(query("status_inbox_held")))
        return done

    return await with_retry(db, work)


async def _apply(conn: asyncpg.Connection, rows: list[asyncpg.Record], done: Fold,
                 delivery_wait_s: float, hold_s: float) -> None:
    """Apply taken rows (in id order); hold those of unknown SIDs, and those behind a held
    callback of their SID, or keep them as orphans once held (a held row taken back with its
    SID still unknown: its hold ran out)."""
    hold = [r for r in rows if r["behind_held"] and storable_status(r["status"])]
    rows = [r for r in rows if not r["behind_held"]]
    unknown: list[StatusCallback] = []
    events = [callback_from_row(r) for r in rows]
    campaigns = await apply_callbacks(conn, events, done.result, delivery_wait_s,
                                      unknown=unknown)
    if unknown:
        sids = {e.sid for e in unknown}
        hold += [r for r in rows if r["sid"] in sids and r["held_since"] is None and hold_s > 0
                 and storable_status(r["status"])]
        await keep_orphans(conn, [e for e, r in zip(events, rows, strict=True)
                                  if e.sid in sids and (r["held_since"] is not None
                                                        or hold_s <= 0)
                                  and storable_status(e.status)], done.result)
    if hold:
        await conn.execute(query("status_inbox_hold"), *(
            [r[column] for r in hold] for column in _HOLD_COLUMNS))
        done.left += len(hold)
    if campaigns:
        done.result.completed_campaigns = await complete_campaigns(conn, delivery_wait_s,
                                                                   sorted(campaigns))


async def fold_one(pool: asyncpg.Pool, delivery_wait_s: float, hold_s: float,
                   park: ParkedEventFn) -> Fold:
    """Fold the oldest row alone; when applying it fails because of its values, park it
    (``park`` gives its parked form) and delete it in the same transaction, and raise
    FoldFailed after the commit. The fallback of a fold that failed for its rows."""
    failed: list[FoldFailed] = []

    async def work(conn: asyncpg.Connection) -> Fold:
        failed.clear()
        await conn.execute(query("status_inbox_fold_lock"))
        rows = await conn.fetch(query("status_inbox_take"), 1, hold_s)
        if not rows:
            return Fold()
        row = rows[0]  # the only one
        done = Fold(taken=1, left=int(row["left_behind"]), oldest_at=row["at"])
        try:
            async with conn.transaction():  # a savepoint
                await _apply(conn, rows, done, delivery_wait_s, hold_s)
        except Exception as exc:
            if not is_poison(exc):
                raise
            parked = park(callback_from_row(row), exc)
            await conn.fetchval(query("delivery_park_event"), parked.kind, parked.message_id,
                                parked.sid, parked.error, parked.payload)
            done.result = FlushResult()
            failed.append(FoldFailed(int(row["id"]), exc))
        return done

    folded = await in_transaction(pool, work, what="status_fold")
    if failed:
        raise failed[0]
    return folded


async def depth(pool: asyncpg.Pool) -> tuple[int, datetime | None]:
    """Rows in the inbox and the receipt time of the oldest."""
    row = await pool.fetchrow(query("status_inbox_depth"))
    assert row is not None
    return int(row["depth"]), row["oldest"]


async def forget_customer(conn: asyncpg.Connection, customer_id: str, salon_id: str) -> int:
    """An erase, first thing in its transaction: take the fold lock (before the erase locks
    the customer's messages, so it never waits for a fold that waits for it: no fold runs until
    the erase commits), and delete the inbox rows of the messages of the salon's customer.
    Returns the rows deleted (rolled back with the erase if it is)."""
    await conn.execute(query("status_inbox_fold_lock"))
    status = await conn.execute(query("status_inbox_forget_customer"), customer_id, salon_id)
    return int(status.split()[-1])

