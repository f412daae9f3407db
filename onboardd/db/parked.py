"""Status events the recorder could not apply: which failures are the events' fault, and
keeping such an event in status_events_parked (migration 0008)."""

from __future__ import annotations

import asyncpg

from onboardd.db.queries import query
from onboardd.domain.status_events import ParkedEvent

# SQLSTATE classes that say the database (not the statement's values) is in trouble: connection
# exceptions, transaction rollback (after with_retry), insufficient resources, object not in
# prerequisite state (locks), operator intervention (shutdown, cancel), system errors.
_DATABASE_TROUBLE = frozenset({"08", "40", "53", "55", "57", "58"})


def is_poison(exc: BaseException) -> bool:
    """True when a flush failed because of its events, not the database: a value PostgreSQL
    refuses (22xxx data, 23xxx constraint, 54xxx limit, ...) or one the driver cannot encode
    (asyncpg's client-side DataError is a ValueError). Lost connections, timeouts, shutdowns,
    lock and resource trouble are the database's: False (the flush fails and is retried)."""
    if isinstance(exc, asyncpg.PostgresError):
        return (exc.sqlstate or "")[:2] not in _DATABASE_TROUBLE
    return isinstance(exc, (ValueError, TypeError, OverflowError))


async def park(pool: asyncpg.Pool, event: ParkedEvent) -> int:
    """Keep an event the recorder could not apply in status_events_parked; returns its id."""
    parked_id: int = await pool.fetchval(query("delivery_park_event"), event.kind,
                                         event.message_id, event.sid, event.error, event.payload)
    return parked_id
