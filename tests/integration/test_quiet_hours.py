"""Quiet hours against the real claim and the Twilio simulator: the SQL window agrees with the
domain's, and a campaign whose salon's window opens and closes while it sends messages every
customer exactly once, never while the window is shut and never faster than the rate."""

from __future__ import annotations

import asyncio
import bisect
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg

from onboardd.auth import TokenCodec
from onboardd.domain.sending_hours import (
    DAY_S,
    FALLBACK_TIMEZONE,
    SendingHours,
    format_time,
    is_open,
    next_closing,
    next_opening,
    zone,
)
from tests.campaign_support import phone, wait_for

ZONES = ["Asia/Kolkata", "Europe/London", "America/New_York", "Australia/Lord_Howe",
         "Asia/Kathmandu", "America/St_Johns", "Asia/Dubai", "UTC", "Not/A_Zone"]


async def test_sql_and_domain_agree_on_open_or_shut(db_url: str) -> None:
    """onboardd_sending_open (the claim's) against domain.is_open: random windows, zones and
    instants, the instants at and around each window's edges, and an unknown zone."""
    rng = random.Random(17)
    cases: list[tuple[str, int, int, datetime]] = []
    for _ in range(3000):
        start = rng.randrange(DAY_S)
        end = rng.choice([e for e in (rng.randrange(1, DAY_S + 1), DAY_S) if e != start]
                         or [(start + 1) % DAY_S or DAY_S])
        name = rng.choice(ZONES)
        at = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(3 * 365 * DAY_S))
        cases.append((name, start, end, at))
        edge = next_opening(SendingHours(start, end), zone(name), at)
        closing = next_closing(SendingHours(start, end), zone(name), at)
        for moment in (edge, closing):
            if moment is not None:
                cases.extend((name, start, end, moment + timedelta(seconds=d))
                             for d in (-1, 0, 1))
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT onboardd_sending_open(z, s, e, $5, t) AS open FROM unnest($1::text[], "
            "$2::int[], $3::int[], $4::timestamptz[]) WITH ORDINALITY AS u(z, s, e, t, i) "
            "ORDER BY i",
            [c[0] for c in cases], [c[1] for c in cases], [c[2] for c in cases],
            [c[3] for c in cases], FALLBACK_TIMEZONE)
    finally:
        await conn.close()
    wrong = [(case, row["open"]) for case, row in zip(cases, rows, strict=True)
             if row["open"] != is_open(SendingHours(case[1], case[2]), zone(case[0]), case[3])]
    assert wrong == [], wrong[:5]


def _arrivals(rig: Any) -> list[float]:
    return sorted(r.arrived_at for r in rig.sim.store.all())


async def _local_seconds(rig: Any, tz: str) -> float:
    value: float = await rig.pool.fetchval(
        "SELECT extract(epoch FROM (now() AT TIME ZONE $1)::time)", tz)
    return value


async def test_a_window_that_opens_and_shuts_mid_campaign_sends_each_customer_once(
        make_rig: Callable[..., Any], salon: str, tokens: TokenCodec) -> None:
    rate = 10
    rig = await make_rig(sim={"rate_per_s": float(rate)}, twilio_sms_rate_per_s=str(rate))
    headers = {"Authorization": "Bearer " + tokens.encode("admin-1", "admin", [salon], 3600)}
    base = f"{rig.services.public_base_url}/api/salons/{salon}"
    tz_name = "Asia/Kolkata"
    # The window opens 4 s from now and shuts 5 s later, on the salon's clock (SQL's now()).
    local = int(await _local_seconds(rig, tz_name)) + 1
    start_s, end_s = (local + 4) % DAY_S, (local + 9) % DAY_S or DAY_S
    hours = SendingHours(start_s, end_s)
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.patch(f"{base}/settings", json={"sendingWindow": {
                "start": format_time(start_s), "end": format_time(end_s)}}) as resp:
            assert resp.status == 200, await resp.text()
            settings = await resp.json()
        assert settings["sendingNow"] is False
        assert settings["sendingWindow"]["source"] == "salon"
        opens = datetime.fromisoformat(settings["nextOpeningAt"])
        shuts = next_closing(hours, ZoneInfo(tz_name), opens)
        assert shuts is not None and shuts - opens == timedelta(seconds=5)

        phones = [phone(i) for i in range(120)]
        campaign = await rig.campaign(salon, phones, channel="sms")

        # Closed: nothing goes out, and the stats say what is held and until when.
        await asyncio.sleep(max(0.0, (opens - datetime.now(UTC)).total_seconds() - 1.5))
        async with http.get(f"{base}/invitation-campaigns/{campaign}/stats") as resp:
            stats = await resp.json()
        assert stats["waitingForWindow"] == 120
        assert stats["sendingWindow"]["openNow"] is False
        assert datetime.fromisoformat(stats["sendingWindow"]["nextOpeningAt"]) == opens
        assert rig.sim.store.all() == []

        # Open for 5 s, then shut: what went out went out inside the window (a request written
        # before the edge may arrive a moment after it).
        await asyncio.sleep((shuts - datetime.now(UTC)).total_seconds() + 2.0)
        during = _arrivals(rig)
        assert during, "nothing was sent while the window was open"
        assert during[0] >= opens.timestamp() - 0.05
        assert during[-1] <= shuts.timestamp() + 0.5
        await asyncio.sleep(2.0)
        assert _arrivals(rig) == during, "sent while the window was shut"
        left = await rig.pool.fetchval(
            "SELECT count(*) FROM invitation_messages WHERE campaign_id = $1 AND status = "
            "'pending'", campaign)
        assert left == 120 - len(during) > 0
        async with http.get(f"{base}/invitation-campaigns/{campaign}/stats") as resp:
            assert (await resp.json())["waitingForWindow"] == left

        # Open all day: the rest goes out.
        async with http.patch(f"{base}/settings", json={"sendingWindow": {
                "start": "00:00", "end": "24:00"}}) as resp:
            assert (await resp.json())["sendingNow"] is True
        await wait_for(lambda: rig.settled(campaign), timeout_s=60)

    sent = [r.to for r in rig.sim.store.all()]
    assert sorted(sent) == sorted(phones)  # every customer exactly once
    rows = await rig.by_phone(campaign)
    assert {(r["status"], r["attempts"]) for r in rows.values()} == {("queued", 1)}
    assert rig.sim.stats.rejected == {}  # "Twilio" never had to refuse a request as too fast
    stamps = _arrivals(rig)
    busiest = max(bisect.bisect_left(stamps, t + 1.0) - i for i, t in enumerate(stamps))
    assert busiest <= rate  # across both edges, no one-second window over the rate
