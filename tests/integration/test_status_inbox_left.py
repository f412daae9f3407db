"""What a fold of the status inbox reports it left behind (``Fold.left``: the inbox-rows gauge),
counted in the fold's own statement: held rows only after a fold under its limit, the whole
inbox after a full one."""

from __future__ import annotations

from onboardd.db import status_inbox as inbox_db
from onboardd.runtime import Services
from tests.integration.test_status_inbox import append
from tests.integration.test_status_recorder import accept_all, cb, new_sid, seed_campaign
from tests.status_inbox_support import inbox_rows


async def test_a_fold_says_how_many_rows_it_left_behind_held_or_not(
        services: Services, salon: str) -> None:
    _campaign, ids = await seed_campaign(services, salon, 7)
    sids = await accept_all(services, ids)
    unknown = [new_sid() for _ in range(3)]
    await append(services, [cb(sid, "sent") for sid in unknown] + [cb(sids[0], "sent")])
    # The unknown SIDs' callbacks are held again: they stay behind.
    first = await inbox_db.fold(services.pool, 1000, 3600.0, 30.0)
    assert (first.taken, first.left, first.held) == (4, 3, 3)
    # A fold of fewer rows than its limit: only the held ones stay.
    await append(services, [cb(sids[1], "sent")])
    second = await inbox_db.fold(services.pool, 1000, 3600.0, 30.0)
    assert (second.taken, second.left) == (1, 3)
    # A full fold: the held ones and the rows past its limit stay.
    await append(services, [cb(sid, "sent") for sid in sids[2:]])
    full = await inbox_db.fold(services.pool, 2, 3600.0, 30.0)
    assert (full.taken, full.left) == (2, 6)
    assert await inbox_rows(services) == 6
