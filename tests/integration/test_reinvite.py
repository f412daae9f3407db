"""Inviting a funnel stage again: the audience from /analytics/stages goes through the real
dispatcher and simulator, and the send-time rules (24-hour rule, opt-outs) still apply."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp

from onboardd.auth import TokenCodec
from onboardd.db import delivery as delivery_db
from onboardd.domain.status_events import SendOutcome, StatusCallback
from onboardd.pii import PiiCipher
from tests.campaign_support import phone, wait_for
from tests.conftest import bearer

SENDER = "whatsapp:+14155238886"


async def test_delivered_not_registered_are_invited_again_within_the_rules(
        make_rig: Callable[..., Any], salon: str, cipher: PiiCipher,
        tokens: TokenCodec) -> None:
    rig = await make_rig()
    first = await rig.campaign(salon, [phone(i) for i in range(1, 6)])
    await wait_for(lambda: rig.settled(first), timeout_s=20)
    rows = await rig.by_phone(first)
    now = datetime.now(UTC)
    callbacks: list[SendOutcome | StatusCallback] = [
        StatusCallback(rows[phone(i)]["twilio_message_sid"], "delivered", now)
        for i in range(1, 6)]
    await delivery_db.record_batch(rig.pool, callbacks, 3600.0)
    # phone(1) registered: not in the stage. phone(2) said STOP since. phone(3) was invited an
    # hour ago (the 24-hour rule holds it back); phone(4) and phone(5) three days ago.
    user = await rig.pool.fetchval("INSERT INTO users (phone) VALUES ($1) RETURNING id",
                                   phone(1))
    await rig.pool.execute(
        "UPDATE imported_customers SET linked_user_id = $2, registered_at = now(), "
        "status = 'registered' WHERE phone_hash = $1", cipher.phone_hash(phone(1)), user)
    await rig.pool.execute(
        "INSERT INTO opt_outs (phone_hash, sender, source) VALUES ($1, $2, 'inbound')",
        cipher.phone_hash(phone(2)), SENDER)
    for i, age in ((2, "3 days"), (3, "1 hour"), (4, "3 days"), (5, "3 days")):
        await rig.pool.execute(
            f"""UPDATE imported_customers SET invited_at = now() - interval '{age}',
                   last_invited_at = now() - interval '{age}' WHERE phone_hash = $1""",
            cipher.phone_hash(phone(i)))
        await rig.pool.execute(
            f"""UPDATE invitation_messages SET queued_at = now() - interval '{age}'
                WHERE campaign_id = $1 AND imported_customer_id =
                      (SELECT id FROM imported_customers WHERE phone_hash = $2)""",
            first, cipher.phone_hash(phone(i)))
    base = rig.services.public_base_url + f"/api/salons/{salon}"
    headers = bearer(tokens, "admin-1", "admin", [salon])
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{base}/analytics/stages/delivered?campaignId={first}") as resp:
            assert resp.status == 200, await resp.text()
            stage = await resp.json()
        assert stage["total"] == 4
        offer = await rig.pool.fetchval("SELECT id FROM welcome_offers WHERE salon_id = $1",
                                        salon)
        async with http.post(f"{base}/invitation-campaigns", json={
                "name": "Reminder", "welcomeOfferId": offer,
                "audience": stage["audience"]}) as resp:
            assert resp.status == 201, await resp.text()
            reminder = (await resp.json())["id"]
        async with http.post(f"{base}/invitation-campaigns/{reminder}/send") as resp:
            assert resp.status == 202, await resp.text()
    await wait_for(lambda: rig.settled(reminder), timeout_s=20)
    again = await rig.by_phone(reminder)
    assert set(again) == {phone(2), phone(3), phone(4), phone(5)}
    assert (again[phone(2)]["status"], again[phone(2)]["skip_reason"]) == ("skipped",
                                                                          "opted_out")
    assert (again[phone(3)]["status"], again[phone(3)]["skip_reason"]) == ("skipped",
                                                                          "recently_invited")
    assert again[phone(4)]["status"] == again[phone(5)]["status"] == "queued"
    assert [len(rig.sim_to(phone(i))) for i in range(1, 6)] == [1, 1, 1, 2, 2]
