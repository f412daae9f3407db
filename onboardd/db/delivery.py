"""Delivery truth in SQL: group-commit flushes of send outcomes and status callbacks, campaign
completion, opt-outs, and the SIDs and orphan callbacks reconciliation asks about. (What a flush
applies is folded first by the pure onboardd.domain.delivery; the campaign statistics the API
reads are in db.delivery_stats.)

Campaign counters (``messages_sent/delivered/read/failed/skipped``) change only in the same
statement as the message rows they count, with deltas computed from each row's old and new
status; their definitions are the ``onboardd_counts_*`` SQL functions (migration 0004), which
``recount`` sums, so ``recount`` always equals the stored counters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

import asyncpg
import msgspec

from onboardd.db.queries import query
from onboardd.db.retry import retried
from onboardd.domain.delivery import fold_callbacks, fold_outcomes, outcome_error, storable_status
from onboardd.domain.status_events import SendOutcome, StatusCallback
from onboardd.logging import get_logger

log = get_logger("db.delivery")

T = TypeVar("T")



class FlushResult(msgspec.Struct):
    """What one flush changed."""

    outcomes_applied: int = 0
    outcomes_ignored: list[str] = msgspec.field(default_factory=list)
    callbacks_matched: int = 0
    orphaned_sids: list[str] = msgspec.field(default_factory=list)
    # WhatsApp SIDs whose failed callback re-queued their message on SMS in this flush.
    fell_back_sids: list[str] = msgspec.field(default_factory=list)
    completed_campaigns: list[str] = msgspec.field(default_factory=list)
    # Callbacks applied to a known message (orphans taken in this flush too), by Twilio status.
    callback_statuses: dict[str, int] = msgspec.field(default_factory=dict)
    # Callbacks appended to the status inbox (record_batch's `inbox`), not applied yet.
    inboxed: int = 0

    def absorb(self, other: FlushResult) -> None:
        """Add another flush's changes to this one (the one-event-at-a-time fallback)."""
        self.outcomes_applied += other.outcomes_applied
        self.outcomes_ignored.extend(other.outcomes_ignored)
        self.callbacks_matched += other.callbacks_matched
        self.orphaned_sids.extend(other.orphaned_sids)
        self.fell_back_sids.extend(other.fell_back_sids)
        self.completed_campaigns.extend(other.completed_campaigns)
        self.inboxed += other.inboxed
        for status, count in other.callback_statuses.items():
            self.callback_statuses[status] = self.callback_statuses.get(status, 0) + count


class Counters(msgspec.Struct, frozen=True):
    """A campaign's stored counters and the recount from its message rows."""

    stored: dict[str, int]
    recount: dict[str, int]

    @property
    def equal(self) -> bool:
        """True when every stored counter equals its recount."""
        return self.stored == self.recount


class FlushConnection:
    """The status recorder's connection, kept from one flush to the next while there is work:
    a flush of callbacks alone is then one round trip (no BEGIN and COMMIT, no reset of a
    pooled connection), and its statements run on generic plans, set once for the session
    (delivery_flush_session). Released to the pool when the recorder idles, stops, or a flush
    fails (the pool resets it, or closes a broken one); the next flush takes one again."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.Connection | None = None

    async def get(self) -> asyncpg.Connection:
        """The connection, taken from the pool if none is held."""
        if self._conn is None:
            conn: asyncpg.Connection = await self._pool.acquire()
            try:
                await conn.execute(query("delivery_flush_session"))
            except BaseException:
                await self._pool.release(conn)
                raise
            self._conn = conn
        return self._conn

    async def release(self) -> None:
        """Give the connection back to the pool."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool.release(conn)


async def with_retry(db: asyncpg.Pool | FlushConnection,
                     work: Callable[[asyncpg.Connection], Awaitable[T]], tries: int = 4,
                     transaction: bool = True) -> T:
    """Run work (in one transaction, unless told its statements need none); retry it on a
    deadlock or serialization failure (onboardd.db.retry)."""

    async def run() -> T:
        if isinstance(db, FlushConnection):
            return await _run(await db.get(), work, transaction)
        async with db.acquire() as conn:
            return await _run(conn, work, transaction)

    return await retried(run, what="delivery_flush", tries=tries, pause_s=0.01)


async def _run(conn: asyncpg.Connection, work: Callable[[asyncpg.Connection], Awaitable[T]],
               transaction: bool) -> T:
    if not transaction:
        return await work(conn)
    async with conn.transaction():
        return await work(conn)


async def _apply_outcomes(conn: asyncpg.Connection, outcomes: list[SendOutcome],
                          result: FlushResult) -> tuple[list[str], set[str]]:
    """Apply send outcomes; returns the SIDs accepted and the campaigns touched."""
    rows, attempts = fold_outcomes(outcomes)
    if not rows:
        return [], set()
    records = await conn.fetch(
        query("delivery_apply_outcomes"),
        [o.message_id for o in rows],
        [o.outcome for o in rows],
        [o.at for o in rows],
        [o.channel for o in rows],
        [o.sid for o in rows],
        [o.sender for o in rows],
        [o.error_code for o in rows],
        [outcome_error(o) for o in rows],
        [o.skip_reason for o in rows],
        [o.next_attempt_at for o in rows],
        [o.opted_out for o in rows],
        [attempts[o.message_id] for o in rows],
        [o.claim_token for o in rows],
    )
    applied = {r["id"] for r in records}
    result.outcomes_applied += len(applied)
    result.outcomes_ignored.extend(o.message_id for o in rows if o.message_id not in applied)
    sids = [r["sid"] for r in records if r["outcome"] == "accepted" and r["sid"]]
    return sids, {r["campaign_id"] for r in records}


async def apply_callbacks(conn: asyncpg.Connection, events: list[StatusCallback],
                          result: FlushResult, delivery_wait_s: float, *,
                          unknown: list[StatusCallback] | None = None) -> set[str]:
    """Apply status callbacks; keep those of unknown SIDs as orphans (or, given ``unknown``,
    add them to it for the caller to keep: the status folder holds them). A WhatsApp-unreachable
    failure of a `both` campaign's WhatsApp message re-queues it on SMS (see the query);
    callbacks for the WhatsApp SID of such a message are no-ops. Returns the campaigns where a
    message settled (reached a final status or left pending/sending), but not those where
    this flush left a message unfinished: only those can have become complete. (A campaign
    cannot complete before that message changes again, and whatever flush changes it asks
    again; mid-campaign, that spares almost every flush the completion query.)"""
    folded = fold_callbacks(events)
    if not folded:
        return set()
    rows = list(folded.values())
    records = await conn.fetch(
        query("delivery_apply_callbacks"),
        [f.sid for f in rows],
        [f.status for f in rows],
        [f.sent_at for f in rows],
        [f.delivered_at for f in rows],
        [f.read_at for f in rows],
        [f.error_code for f in rows],
        [f.error_message for f in rows],
        [f.whatsapp_unreachable for f in rows],
        delivery_wait_s,
    )
    found = {r["sid"] for r in records}
    result.callbacks_matched += len(found)
    for event in events:
        if event.sid in found and storable_status(event.status):
            status = event.status.strip().lower()
            result.callback_statuses[status] = result.callback_statuses.get(status, 0) + 1
    result.fell_back_sids.extend(sorted(r["sid"] for r in records if r["fell_back"]))
    orphans = [e for e in events if e.sid not in found and storable_status(e.status)]
    if unknown is not None:
        unknown.extend(orphans)
    else:
        await keep_orphans(conn, orphans, result)
    kept_open = {r["campaign_id"] for r in records if r["keeps_open"]}
    return {r["campaign_id"] for r in records if r["settles"]} - kept_open


def callback_columns(callbacks: Sequence[StatusCallback]
                     ) -> tuple[list[str], list[str], list[datetime], list[int | None],
                                list[str | None]]:
    """Callbacks as the column arrays ($1..$5: sid, status, at, error code, error message) the
    set-based inserts unnest."""
    return ([c.sid for c in callbacks], [c.status for c in callbacks],
            [c.at for c in callbacks], [c.error_code for c in callbacks],
            [c.error_message for c in callbacks])


async def keep_orphans(conn: asyncpg.Connection, orphans: list[StatusCallback],
                       result: FlushResult) -> None:
    """Keep callbacks of SIDs no message carries in status_callback_orphans: the send result
    that brings the SID takes them (delivery_take_orphans), or reconciliation does."""
    if not orphans:
        return
    await conn.execute(query("delivery_keep_orphans"), *callback_columns(orphans))
    result.orphaned_sids.extend(sorted({e.sid for e in orphans}))


def callback_from_row(row: asyncpg.Record) -> StatusCallback:
    """A stored orphan callback, as the recorder applies it."""
    return StatusCallback(sid=row["sid"], status=row["status"], at=row["at"],
                          error_code=row["error_code"], error_message=row["error_message"])


async def record_batch(db: asyncpg.Pool | FlushConnection,
                       items: list[SendOutcome | StatusCallback],
                       delivery_wait_s: float, *, inbox: Sequence[StatusCallback] = ()
                       ) -> FlushResult:
    """One group commit: outcomes, then callbacks (and orphans whose SID just appeared),
    then completion of the campaigns where a message settled. (Campaigns that complete only
    because the delivery wait ran out are completed by complete_campaigns, which the periodic
    reconciliation pass calls.)

    The ``inbox`` callbacks (the webhooks', in the status recorder's flushes) are not applied
    but appended to the status inbox (migration 0019), in the same flush, for the status folder
    to apply (onboardd.db.status_inbox).

    With outcomes it is one transaction. Callbacks alone need none: appending them to the inbox
    is one statement, and so is applying them (the messages, their counters and funnel facts);
    each statement that may follow stands on its own: keeping the callbacks of unknown SIDs as
    orphans, and completing campaigns (which then sees every commit before it). Applying a
    callback twice changes nothing, so when a later statement fails, the webhooks' 503 and
    Twilio's retry (or the next reconciliation) land it. That spares a flush its BEGIN and
    COMMIT round trips."""
    outcomes = [item for item in items if isinstance(item, SendOutcome)]
    callbacks = [item for item in items if isinstance(item, StatusCallback)]

    async def work(conn: asyncpg.Connection) -> FlushResult:
        result = FlushResult()
        sids, campaigns = await _apply_outcomes(conn, outcomes, result)
        events = list(callbacks)
        if sids:
            early = await conn.fetch(query("delivery_take_orphans"), sids)
            # Orphans happened before anything in this flush: apply them first.
            events = [callback_from_row(r) for r in early] + events
        campaigns |= await apply_callbacks(conn, events, result, delivery_wait_s)
        if inbox:
            await _append_to_inbox(conn, inbox)
            result.inboxed = len(inbox)
        if campaigns:
            result.completed_campaigns = await complete_campaigns(conn, delivery_wait_s,
                                                                  sorted(campaigns))
        return result

    return await with_retry(db, work, transaction=bool(outcomes))


async def _append_to_inbox(conn: asyncpg.Connection, callbacks: Sequence[StatusCallback]
                           ) -> None:
    """Append callbacks, in this order, to the status inbox (0019_status_inbox.sql)."""
    await conn.execute(query("status_inbox_put"), *callback_columns(callbacks))


async def complete_campaigns(conn: asyncpg.Connection | asyncpg.Pool, delivery_wait_s: float,
                             campaign_ids: list[str] | None = None) -> list[str]:
    """The one place a campaign completes: every sending campaign (of ``campaign_ids``, else
    any) whose messages are final, an accepted one counting as final once the delivery wait
    ran out; a paused one stays paused. Called inside the recorder's transaction for the
    campaigns where a message settled, and by the periodic job and `onboardd reconcile` for
    every campaign. Returns the ids completed."""
    rows = await conn.fetch(query("delivery_complete_campaigns"), campaign_ids, delivery_wait_s)
    return [r["id"] for r in rows]


async def recount(conn: asyncpg.Connection | asyncpg.Pool, campaign_id: str) -> Counters:
    """The stored counters of a campaign next to a recount from its messages."""
    row = await conn.fetchrow(query("delivery_recount"), campaign_id)
    if row is None:
        raise LookupError(f"no campaign {campaign_id}")
    names = ("sent", "delivered", "read", "failed", "skipped")
    return Counters(stored={n: row[f"messages_{n}"] for n in names},
                    recount={n: row[f"recount_{n}"] for n in names})


# Opt-outs and inbound messages ---------------------------------------------------------------


class OptOutResult(msgspec.Struct, frozen=True):
    """What an opt-out changed: customer records, skipped messages, their campaigns."""

    customers: int
    messages_skipped: int
    campaigns: list[str]


async def opt_out(pool: asyncpg.Pool, phone_hash: bytes, sender: str, source: str,
                  delivery_wait_s: float) -> OptOutResult:
    """Record an opt-out; mark the number's records opted out; skip their pending messages.
    A campaign whose last unsent message that was completes in the same transaction."""

    async def work(conn: asyncpg.Connection) -> OptOutResult:
        row = await conn.fetchrow(query("delivery_opt_out"), phone_hash, sender, source)
        assert row is not None
        campaigns = list(row["campaigns"])
        if campaigns:
            await complete_campaigns(conn, delivery_wait_s, campaigns)
        return OptOutResult(row["customers"], row["messages"], campaigns)

    return await with_retry(pool, work)


async def opt_in(pool: asyncpg.Pool, phone_hash: bytes, sender: str) -> int:
    """Forget an opt-out; returns how many customer records went back to pending/invited."""

    async def work(conn: asyncpg.Connection) -> int:
        row = await conn.fetchrow(query("delivery_opt_in"), phone_hash, sender)
        assert row is not None
        return int(row["customers"])

    return await with_retry(pool, work)


async def record_inbound(pool: asyncpg.Pool, message_sid: str | None, phone_hash: bytes,
                         sender: str, keyword: str) -> bool:
    """Record an inbound message; False when this MessageSid was already recorded."""
    row = await pool.fetchrow(query("delivery_record_inbound"), message_sid, phone_hash, sender,
                              keyword)
    return row is not None


# Reconciliation ---------------------------------------------------------------------------------


async def known_sids(pool: asyncpg.Pool, sids: list[str]) -> set[str]:
    """Which of these SIDs some invitation message already carries."""
    rows = await pool.fetch(query("delivery_known_sids"), sids)
    return {r["sid"] for r in rows}


async def orphans_with_known_sid(pool: asyncpg.Pool) -> list[StatusCallback]:
    """Take orphan callbacks whose SID is now known (to feed through the recorder)."""
    rows = await pool.fetch(query("delivery_orphans_with_known_sid"))
    return [callback_from_row(r) for r in rows]


class DroppedOrphan(msgspec.Struct, frozen=True):
    """A status callback for a SID no invitation ever carried, dropped after the wait."""

    sid: str
    status: str


async def drop_stale_orphans(pool: asyncpg.Pool, older_than_s: float) -> list[DroppedOrphan]:
    """Delete orphan callbacks older than the delivery wait; returns what was dropped."""
    rows = await pool.fetch(query("delivery_drop_stale_orphans"), older_than_s)
    return [DroppedOrphan(r["sid"], r["status"]) for r in rows]
