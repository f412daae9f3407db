"""Analytics reads (sql/queries/analytics.sql): counts over the funnel, the series of
windowed events, the campaign comparison, the conversion curve and who is at a stage.

Each read serves the whole salon and one campaign alike (the series has a form of each; the
SQL file says why), and runs inside `reads()`: a transaction with nested loops off and generic
plans. The queries reach every table through an index keyed by
salon (migration 0010), so hash and merge joins between those salon-sized sets keep a report's
cost in line with the salon's size, whatever the plan's estimates; a nested loop chosen on a
small estimate (a join estimate off by the correlation of salon, campaign, customer and user)
can instead repeat a salon-wide aggregate once per row. Generic plans from the first execution
on: no planning per call, and no dependence on which salons a connection happened to serve
first (PostgreSQL keeps re-planning a statement whose custom plans look cheaper, which on a
large platform, where the biggest salons skew the statistics, it does for ordinary salons).

A report's reads run in two groups at once (`read_pair`) on two connections that share one
snapshot: the second imports the first's exported snapshot, as pg_dump's parallel workers do.
The whole report is then one consistent view, and a large salon's report takes about the time
of its longer half instead of the sum.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import date, datetime
from typing import Any, Final, TypeAlias, TypeVar

import asyncpg
import msgspec

from onboardd.db.queries import query
from onboardd.domain.analytics import Bucket, bucket_dates

Conn: TypeAlias = "asyncpg.Connection | asyncpg.Pool"


@contextlib.asynccontextmanager
async def reads(pool: asyncpg.Pool, isolation: str = "read_committed"
                ) -> AsyncIterator[asyncpg.Connection]:
    """A connection in a read-only transaction planned for the analytics reads (the export's
    cursor asks for repeatable_read: one snapshot across its pages)."""
    async with pool.acquire() as conn, conn.transaction(isolation=isolation, readonly=True):
        await conn.execute(query("analytics_planning"))
        yield conn


A = TypeVar("A")
B = TypeVar("B")
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")


async def read_pair(pool: asyncpg.Pool,
                    left: Callable[[asyncpg.Connection], Coroutine[Any, Any, A]],
                    right: Callable[[asyncpg.Connection], Coroutine[Any, Any, B]]
                    ) -> tuple[A, B]:
    """Run two groups of analytics reads on one snapshot (repeatable read): at once on two
    connections when the pool has an idle one to spare, else one after the other on one.
    The second connection is taken only when one is idle, and right away (nothing awaited in
    between), so reports never hold one connection while waiting for another."""
    async with reads(pool, "repeatable_read") as first:
        if pool.get_idle_size() == 0:
            return await left(first), await right(first)
        async with pool.acquire() as second:
            snapshot: str = await first.fetchval(query("analytics_export_snapshot"))
            if not _SNAPSHOT_ID.match(snapshot):  # spliced into SET TRANSACTION SNAPSHOT
                raise ValueError(f"unexpected snapshot id {snapshot!r}")
            async with second.transaction(isolation="repeatable_read", readonly=True):
                # Before any other statement of the transaction, as PostgreSQL requires.
                await second.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                await second.execute(query("analytics_planning"))
                return await _both(left(first), right(second))


async def _both(left: Coroutine[Any, Any, A], right: Coroutine[Any, Any, B]) -> tuple[A, B]:
    """Both results, `left` in a task of its own; whichever fails first, its own exception is
    raised (not a group), and never before the task is finished (cancelled if right failed or
    the caller was cancelled)."""
    task = asyncio.ensure_future(left)
    try:
        second = await right
    except BaseException:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    return await task, second


class Scope(msgspec.Struct, frozen=True):
    """Whose numbers: a salon, optionally only one campaign's targets, over [start, end)."""

    salon_id: str
    campaign_id: str | None
    start: datetime
    end: datetime

    def args(self) -> tuple[Any, ...]:
        """The leading parameters of the reads: salon, campaign (or None), start, end."""
        return self.salon_id, self.campaign_id, self.start, self.end


class CustomerCounts(msgspec.Struct, frozen=True):
    """Funnel stages reached (as of now) and the customer KPIs."""

    imported: int
    invited: int
    delivered: int
    registered: int
    first_booking: int
    imported_this_week: int
    imported_this_month: int
    imported_by_end: int
    registered_in_window: int
    redeemers_registered_in_window: int
    avg_days_to_register: float | None
    avg_days_to_first_booking: float | None


# The series query's event kinds and the SeriesRow field each one counts.
_SERIES_KINDS: Final = {"imported": "imported", "invited": "invited", "delivered": "delivered",
                        "registered": "registered", "first_booking": "first_bookings",
                        "redeemed": "redeemed"}


class SeriesRow(msgspec.Struct, frozen=True):
    """One bucket of the series."""

    bucket: date
    imported: int
    invited: int
    delivered: int
    registered: int
    first_bookings: int
    redeemed: int
    discount: int


class CampaignRow(msgspec.Struct, frozen=True):
    """One campaign of the comparison."""

    id: str
    name: str
    channel: str
    status: str
    started_at: datetime
    target: int
    sent: int
    delivered: int
    read: int
    failed: int
    skipped: int
    registered: int
    first_bookings: int
    redeemed: int
    discount: int
    booking_value: int


class CurveRow(msgspec.Struct, frozen=True):
    """Delivered customers of a campaign who registered on one day after their message (day
    None: not registered, or registered before the message)."""

    campaign_id: str
    day: int | None
    n: int


class StageCustomer(msgspec.Struct, frozen=True):
    """A customer at one funnel stage, phone still encrypted."""

    id: str
    customer_name: str
    normalized_phone_enc: str
    status: str
    imported_at: datetime
    invited_at: datetime | None
    last_message_at: datetime | None
    registered_at: datetime | None
    first_booking_at: datetime | None


class StagePage(msgspec.Struct, frozen=True):
    items: list[StageCustomer]
    total: int


async def salon_timezone(conn: Conn, salon_id: str) -> str | None:
    """The salon's timezone (None: no such salon)."""
    zone: str | None = await conn.fetchval(query("analytics_salon_timezone"), salon_id)
    return zone


async def customer_counts(conn: Conn, scope: Scope, week_start: datetime,
                          month_start: datetime) -> CustomerCounts:
    record = await conn.fetchrow(query("analytics_customer_counts"), *scope.args(), week_start,
                                 month_start)
    return msgspec.convert(dict(record), CustomerCounts)


async def series(conn: Conn, scope: Scope, timezone: str, bucket: Bucket, first: date,
                 last: date) -> list[SeriesRow]:
    """One row per bucket from `first` to `last`, empty buckets included."""
    if scope.campaign_id is None:
        rows = await conn.fetch(query("analytics_series_salon"), scope.salon_id, scope.start,
                                scope.end, timezone, bucket)
    else:
        rows = await conn.fetch(query("analytics_series_campaign"), *scope.args(), timezone,
                                bucket)
    counts = {day: {**dict.fromkeys(_SERIES_KINDS.values(), 0), "discount": 0}
              for day in bucket_dates(first, last, bucket)}
    for r in rows:
        per_kind = counts.get(r["bucket"])
        if per_kind is not None:
            per_kind[_SERIES_KINDS[r["kind"]]] += int(r["n"])
            per_kind["discount"] += int(r["money"])
    return [SeriesRow(bucket=day, **per_kind) for day, per_kind in counts.items()]


async def campaigns(conn: Conn, scope: Scope) -> list[CampaignRow]:
    rows = await conn.fetch(query("analytics_campaigns"), *scope.args())
    return [msgspec.convert(dict(r), CampaignRow) for r in rows]


async def curve(conn: Conn, scope: Scope) -> list[CurveRow]:
    rows = await conn.fetch(query("analytics_curve"), *scope.args())
    return [msgspec.convert(dict(r), CurveRow) for r in rows]


async def stage_page(conn: Conn, salon_id: str, campaign_id: str | None, stage: int,
                     limit: int, offset: int) -> StagePage:
    """One page of the customers at a stage and how many there are in all."""
    rows = await conn.fetch(query("analytics_stage_page"), salon_id, campaign_id, stage,
                            limit, offset)
    if rows:
        total: int = rows[0]["total"]
    else:
        total = await conn.fetchval(query("analytics_stage_count"), salon_id, campaign_id, stage)
    return StagePage([msgspec.convert(dict(r), StageCustomer) for r in rows], total)
