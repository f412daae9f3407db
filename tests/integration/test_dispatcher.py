"""The dispatcher against the Twilio simulator, with the status recorder applying outcomes."""

from __future__ import annotations

import asyncio
import bisect
import random
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from onboardd.db import campaigns as db
from onboardd.db import delivery as delivery_db
from onboardd.domain.campaigns.outcomes import decide, make_limiter
from onboardd.jobs import campaigns as campaign_jobs
from onboardd.pii import PiiCipher
from onboardd.runtime import CampaignWake, nudge
from onboardd.services import campaigns as campaign_service
from onboardd.twilio import account as twilio_account
from onboardd.twilio.client import make_client, send_message
from tests.campaign_support import add_salon, phone, wait_for
from tests.integration.rig import Rig

CONTENT_SID = "HX" + "a" * 32


async def test_messages_send_with_body_and_customers_become_invited(
        make_rig: Callable[..., Any], salon: str) -> None:
    rig = await make_rig()
    phones = [phone(i) for i in range(25)]
    campaign = await rig.campaign(salon, phones)
    await wait_for(lambda: rig.settled(campaign))
    rows = await rig.by_phone(campaign)
    assert {r["status"] for r in rows.values()} == {"queued"}
    assert {r["customer_status"] for r in rows.values()} == {"invited"}
    for number in phones:
        (sent,) = rig.sim_to(number)
        row = rows[number]
        assert sent.sid == row["twilio_message_sid"]
        assert sent.from_ == "whatsapp:+14155238886" and sent.to == "whatsapp:" + number
        assert row["offer_code"] in sent.body and "Get ₹100 OFF" in sent.body
        assert "https://app.salonhub.com/s/glamour?t=" in sent.body
        assert sent.status_callback == rig.services.public_base_url + "/api/webhooks/twilio/status"
    counters = await rig.pool.fetchrow(
        "SELECT messages_sent, target_customer_count FROM invitation_campaigns WHERE id = $1",
        campaign)
    assert (counters["messages_sent"], counters["target_customer_count"]) == (25, 25)


async def test_whatsapp_content_sid_sends_variables(make_rig: Callable[..., Any],
                                                    salon: str) -> None:
    rig = await make_rig()
    campaign = await rig.campaign(salon, [phone(1)], content_sid=CONTENT_SID)
    await wait_for(lambda: rig.settled(campaign))
    (sent,) = rig.sim_to(phone(1))
    assert sent.content_sid == CONTENT_SID and sent.body == ""
    assert '"1":"Customer0"' in (sent.content_variables or "")


async def test_rate_limit_keeps_twilio_from_refusing(make_rig: Callable[..., Any],
                                                    salon: str) -> None:
    # "Twilio" enforces the same 20 per second as the daemon's limit (a bucket with one second
    # of burst, as Twilio's): a dispatcher that outran it would get 429s. The busiest one-second
    # window itself is measured by tests/bench/bench_dispatch.py (max_1s_window).
    rig = await make_rig(sim={"rate_per_s": 20.0}, twilio_sms_rate_per_s="20")
    phones = [phone(i) for i in range(45)]
    campaign = await rig.campaign(salon, phones, channel="sms")
    await wait_for(lambda: rig.settled(campaign))
    assert rig.sim.stats.rejected == {}
    assert sorted(r.to for r in rig.sim.store.all()) == sorted(phones)  # each exactly once
    rows = await rig.by_phone(campaign)
    assert {(r["status"], r["attempts"]) for r in rows.values()} == {("queued", 1)}


class _Clock:
    """What the limiter uses of its event loop, with a clock only the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def is_closed(self) -> bool:
        return False


@pytest.mark.parametrize("rate", [1.0, 2.0, 3.0, 15.0, 20.0, 80.0, 100.0])
async def test_limiter_lets_at_most_the_rate_start_in_any_second(rate: float) -> None:
    # A greedy sender on a virtual clock: exact counts however loaded the machine is.
    limiter = make_limiter(rate)
    clock = _Clock()
    limiter._event_loop = clock  # type: ignore[assignment]  # the loop it would look up
    starts: list[float] = []
    for tick in range(5000):  # five seconds, trying every millisecond
        clock.now = tick / 1000
        while limiter.has_capacity():
            await limiter.acquire()  # never waits: there is capacity
            starts.append(clock.now)
    busiest = max(bisect.bisect_left(starts, t + 1.0) - i for i, t in enumerate(starts))
    assert busiest <= rate  # in every window [t, t + 1 s)
    assert len(starts) >= 5 * rate / 2  # and the limit is not a standstill


async def test_corner_cases_each_recorded(make_rig: Callable[..., Any], salon: str,
                                          cipher: PiiCipher) -> None:
    rig = await make_rig(sim={"per_number": {phone(3): "500"}}, twilio_max_attempts="2")
    invalid, stop_number = "+15005550001", "+15005550004"
    listed_opt_out = phone(4)
    await rig.pool.execute(
        "INSERT INTO opt_outs (phone_hash, sender, source) VALUES ($1, $2, 'inbound')",
        cipher.phone_hash(listed_opt_out), "whatsapp:+14155238886")
    # Invited by another campaign of this salon an hour ago.
    recent = phone(5)
    other = await rig.campaign(salon, [recent], start=False)
    await rig.pool.execute(
        "INSERT INTO invitation_messages (campaign_id, imported_customer_id, channel, salon_id, "
        "status, twilio_message_sid, queued_at) SELECT $1, id, 'whatsapp', salon_id, 'queued', "
        "'SM' || md5(id), now() - interval '1 hour' FROM imported_customers WHERE salon_id = $2",
        other, salon)
    await rig.pool.execute("UPDATE imported_customers SET status = 'pending'")
    campaign = await rig.campaign(salon, [phone(1), invalid, stop_number, listed_opt_out,
                                          phone(3)])
    await wait_for(lambda: rig.settled(campaign), timeout_s=20)
    rows = await rig.by_phone(campaign)
    assert rows[phone(1)]["status"] == "queued"
    assert (rows[invalid]["status"], rows[invalid]["skip_reason"],
            rows[invalid]["error_code"]) == ("skipped", "invalid_number", 21211)
    assert (rows[stop_number]["status"], rows[stop_number]["skip_reason"]) == (
        "skipped", "opted_out")
    assert rows[stop_number]["customer_status"] == "opted_out"
    assert (rows[listed_opt_out]["status"], rows[listed_opt_out]["skip_reason"]) == (
        "skipped", "opted_out")
    assert rig.sim_to(listed_opt_out) == []
    assert (rows[recent]["status"], rows[recent]["skip_reason"]) == (
        "skipped", "recently_invited")
    assert rig.sim_to(recent) == []
    # Transient 5xx: retried, then failed after max_attempts; the campaign goes on.
    assert (rows[phone(3)]["status"], rows[phone(3)]["attempts"]) == ("failed", 2)
    assert "20500" in (rows[phone(3)]["error_message"] or "")


async def test_transient_failure_retries_then_succeeds(make_rig: Callable[..., Any],
                                                       salon: str) -> None:
    rig = await make_rig(sim={"per_number": {phone(7): "503"}})
    campaign = await rig.campaign(salon, [phone(7)])

    async def refused_once() -> bool:
        return bool(rig.sim.stats.rejected.get(20503))

    await wait_for(refused_once)
    rig.sim.patch({"per_number": {phone(7): None}})
    await wait_for(lambda: rig.settled(campaign))
    row = (await rig.by_phone(campaign))[phone(7)]
    assert (row["status"], row["attempts"]) == ("queued", 2)
    assert len(rig.sim_to(phone(7))) == 1


async def test_whatsapp_unreachable_falls_back_to_sms_only_for_both(
        make_rig: Callable[..., Any], salon: str) -> None:
    rig = await make_rig(sim={"whatsapp_unreachable_rate": 1.0})
    both = await rig.campaign(salon, [phone(1), phone(2)], channel="both")
    await wait_for(lambda: rig.settled(both))
    rows = await rig.by_phone(both)
    for number in (phone(1), phone(2)):
        assert (rows[number]["status"], rows[number]["channel"],
                rows[number]["fallback_from"]) == ("queued", "sms", "whatsapp")
        (sms,) = rig.sim_to(number)
        assert sms.channel == "sms" and sms.from_ == "+15005550006"
    other_salon = await add_salon(rig.pool)
    only_whatsapp = await rig.campaign(other_salon, [phone(50)], channel="whatsapp")
    await wait_for(lambda: rig.settled(only_whatsapp))
    row = (await rig.by_phone(only_whatsapp))[phone(50)]
    assert (row["status"], row["channel"]) == ("failed", "whatsapp")


async def test_whatsapp_unreachable_reported_by_callback_falls_back_to_sms(
        make_rig: Callable[..., Any], salon: str) -> None:
    unreachable, reachable = phone(1), phone(2)
    rig = await make_rig(sim={"whatsapp_error_mode": "callback", "callbacks_enabled": True,
                              "per_number": {unreachable: "63003"}, "sent_after_ms": 10.0,
                              "delivered_after_ms": 20.0, "read_after_ms": 30.0})
    campaign = await rig.campaign(salon, [unreachable, reachable], channel="both")

    async def finished() -> bool:
        rows = await rig.by_phone(campaign)
        return bool(rows[unreachable]["status"] == "delivered"
                    and rows[reachable]["status"] == "read")

    await wait_for(finished)
    rows = await rig.by_phone(campaign)
    async with (aiohttp.ClientSession() as http,
                http.get(rig.sim_url + "/_sim/messages", params={"to": unreachable}) as resp):
        record = await resp.json()
    (whatsapp,) = [m for m in record if m["channel"] == "whatsapp"]
    (sms,) = [m for m in record if m["channel"] == "sms"]  # exactly one SMS
    assert len(record) == 2
    assert (whatsapp["status"], whatsapp["error_code"]) == ("failed", 63003)
    assert (sms["to"], sms["from"], sms["status"]) == (unreachable, "+15005550006", "delivered")
    row = rows[unreachable]
    assert (row["channel"], row["fallback_from"], row["status"]) == ("sms", "whatsapp",
                                                                     "delivered")
    assert (row["twilio_message_sid"], row["fallback_sid"]) == (sms["sid"], whatsapp["sid"])
    assert row["offer_code"] in sms["body"]
    assert [m.channel for m in rig.sim_to(reachable)] == ["whatsapp"]
    assert (rows[reachable]["channel"], rows[reachable]["fallback_from"]) == ("whatsapp", None)
    counters = await delivery_db.recount(rig.pool, campaign)
    assert counters.stored == counters.recount
    assert (counters.stored["sent"], counters.stored["delivered"],
            counters.stored["failed"]) == (2, 2, 0)


async def test_429_pauses_the_channel_then_resumes_without_failing(
        make_rig: Callable[..., Any], salon: str) -> None:
    rig = await make_rig(sim={"per_number": {phone(8): "429"}})
    campaign = await rig.campaign(salon, [phone(8)])

    async def throttled() -> bool:
        return bool(rig.sim.stats.rejected.get(20429))

    await wait_for(throttled)
    rig.sim.patch({"per_number": {phone(8): None}})
    await wait_for(lambda: rig.settled(campaign))
    row = (await rig.by_phone(campaign))[phone(8)]
    # Accepted after the Retry-After pause; a 429 is not an attempt and not a failure.
    assert (row["status"], row["attempts"], row["error_code"]) == ("queued", 1, None)


def test_rate_limit_pause_defaults_to_config_without_retry_after() -> None:
    decision = decide(http_status=429, code=20429, attempts=1, max_attempts=3,
                      channel="sms", campaign_channel="sms", retry_after_s=None,
                      rate_limit_pause_s=60.0, rng=random.Random(1))
    assert (decision.action, decision.delay_s) == ("rate_limited", 60.0)


async def test_timeout_is_reconciled_not_resent(make_rig: Callable[..., Any],
                                                salon: str) -> None:
    rig = await make_rig(sim={"per_number": {phone(9): "timeout"}, "hang_s": 30.0},
                         twilio_request_timeout_s="0.5")
    campaign = await rig.campaign(salon, [phone(9)] + [phone(i) for i in range(20, 30)])
    await wait_for(lambda: rig.settled(campaign))
    rows = await rig.by_phone(campaign)
    (only,) = rig.sim_to(phone(9))  # the hung request was accepted once, never resent
    assert rows[phone(9)]["twilio_message_sid"] == only.sid
    assert rows[phone(9)]["status"] == "queued"
    # A hanging Twilio did not stall the others.
    assert all(rows[phone(i)]["status"] == "queued" for i in range(20, 30))


async def test_timeout_not_accepted_is_retried_then_failed(make_rig: Callable[..., Any],
                                                           salon: str) -> None:
    rig = await make_rig(sim={"per_number": {phone(9): "timeout"}, "hang_s": 30.0,
                              "timeout_accepts": False},
                         twilio_request_timeout_s="0.3", twilio_max_attempts="2")
    campaign = await rig.campaign(salon, [phone(9)])
    await wait_for(lambda: rig.settled(campaign), timeout_s=20)
    row = (await rig.by_phone(campaign))[phone(9)]
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert rig.sim_to(phone(9)) == []


async def test_pause_stops_new_sends_and_resume_sends_exactly_the_rest(
        make_rig: Callable[..., Any], salon: str) -> None:
    rig = await make_rig(twilio_whatsapp_rate_per_s="15")
    phones = [phone(i) for i in range(40)]
    campaign = await rig.campaign(salon, phones)

    async def some_sent() -> bool:
        return len(rig.sim.store) >= 5

    await wait_for(some_sent)
    assert await db.pause(rig.pool, campaign, salon) is not None
    nudge(rig.services.queues.campaigns, CampaignWake("campaign_changed", campaign))
    await wait_for(lambda: _no_sending(rig, campaign))
    sent_at_pause = len(rig.sim.store)
    # The behaviour is that nothing happens: a window (ten dispatch polls) in which a leak
    # would show, so it stays a sleep.
    await asyncio.sleep(0.5)
    assert len(rig.sim.store) == sent_at_pause < 40
    pending = await rig.pool.fetchval(
        "SELECT count(*) FROM invitation_messages WHERE campaign_id = $1 AND status = 'pending'",
        campaign)
    assert pending == 40 - sent_at_pause
    assert await db.resume(rig.pool, campaign, salon) is not None
    nudge(rig.services.queues.campaigns, CampaignWake("campaign_changed", campaign))
    await wait_for(lambda: rig.settled(campaign))
    assert sorted(r.to.removeprefix("whatsapp:") for r in rig.sim.store.all()) == sorted(phones)


async def _no_sending(rig: Rig, campaign: str) -> bool:
    n = await rig.pool.fetchval("SELECT count(*) FROM invitation_messages WHERE campaign_id = $1 "
                                "AND status = 'sending'", campaign)
    return bool(n == 0)


async def test_salons_share_the_sender_fairly(make_rig: Callable[..., Any], salon: str) -> None:
    rig = await make_rig(twilio_whatsapp_rate_per_s="20", campaigns_claim_batch="10")
    other = await add_salon(rig.pool)
    big = await rig.campaign(salon, [phone(i) for i in range(60)])
    small = await rig.campaign(other, [phone(i) for i in range(100, 110)])
    await wait_for(lambda: rig.settled(small))
    await wait_for(lambda: rig.settled(big))
    # In the order "Twilio" accepted them: the small salon did not wait for the big one's
    # 60 messages, its last one came before the big one's 40th.
    smalls = {phone(i) for i in range(100, 110)}
    order = [r.to.removeprefix("whatsapp:") in smalls for r in rig.sim.store.all()]
    assert (len(order), sum(order)) == (70, 10)
    last_small = max(i for i, is_small in enumerate(order) if is_small)
    assert last_small - 9 < 40  # big messages accepted before the small salon's last one


async def test_expired_lease_is_reconciled_before_any_resend(
        make_rig: Callable[..., Any], salon: str) -> None:
    rig = await make_rig(campaigns_dispatch_poll_s="30")
    campaign = await rig.campaign(salon, [phone(1), phone(2)], start=False)
    await campaign_service.start(rig.pool, campaign, salon)
    # A crashed dispatcher left both 'sending'; Twilio had accepted the first one.
    await rig.pool.execute(
        "UPDATE invitation_messages SET status = 'sending', sender = 'whatsapp:+14155238886', "
        "attempt_started_at = now() - interval '1 minute', "
        "claimed_until = now() - interval '1 second' WHERE campaign_id = $1", campaign)
    rows = await rig.by_phone(campaign)
    client = make_client(*twilio_account.credentials(rig.services.cfg), rig.sim_url, 5.0)
    try:
        body = f"Hi! Your code: {rows[phone(1)]['offer_code']}"
        first = await send_message(client, from_="whatsapp:+14155238886",
                                   to="whatsapp:" + phone(1), body=body, content_sid=None,
                                   content_variables=None, status_callback=None)
    finally:
        await client.http_client.close()
    await campaign_jobs.sweep_leases(rig.services)
    nudge(rig.services.queues.campaigns, CampaignWake("campaign_changed"))
    await wait_for(lambda: rig.settled(campaign))
    rows = await rig.by_phone(campaign)
    assert rows[phone(1)]["twilio_message_sid"] == first.sid
    assert len(rig.sim_to(phone(1))) == 1 and len(rig.sim_to(phone(2))) == 1


async def test_campaign_completes_when_every_message_is_final(
        make_rig: Callable[..., Any], salon: str) -> None:
    rig = await make_rig(sim={"callbacks_enabled": True, "sent_after_ms": 10.0,
                              "delivered_after_ms": 20.0, "read_after_ms": 30.0})
    campaign = await rig.campaign(salon, [phone(1), phone(2), "+15005550001"])

    async def completed() -> bool:
        row = await rig.pool.fetchrow(
            "SELECT status, completed_at FROM invitation_campaigns WHERE id = $1", campaign)
        return bool(row["status"] == "completed" and row["completed_at"] is not None)

    await wait_for(completed)
    row = await rig.pool.fetchrow(
        "SELECT started_at, completed_at FROM invitation_campaigns WHERE id = $1", campaign)
    assert row["started_at"] is not None and row["started_at"] <= row["completed_at"]


async def test_stop_with_slow_sends_in_flight_loses_no_outcome(make_rig: Callable[..., Any],
                                                               salon: str) -> None:
    # Twilio answers after 800 ms: longer than any "queue stayed quiet" guess of the recorder.
    rig = await make_rig(sim={"latency_ms": 800.0}, twilio_whatsapp_rate_per_s="20",
                         twilio_request_timeout_s="5")
    campaign = await rig.campaign(salon, [phone(i) for i in range(40)])

    async def answered() -> bool:
        return len(rig.sim.store.all()) > 0

    await wait_for(answered)  # the first answer came: about 16 more requests are in flight
    await rig.stop()
    sending = await rig.pool.fetchval(
        "SELECT count(*) FROM invitation_messages WHERE campaign_id = $1 "
        "AND status = 'sending'", campaign)
    assert sending == 0
    stored = {r["twilio_message_sid"] for r in (await rig.by_phone(campaign)).values()
              if r["twilio_message_sid"] is not None}
    accepted = {r.sid for r in rig.sim.store.all()}
    assert 1 < len(accepted) < 40  # stopped mid-campaign, with answers still to come
    assert stored == accepted
    counters = await delivery_db.recount(rig.pool, campaign)
    assert counters.equal
    assert counters.stored["sent"] == len(accepted)


async def test_sends_only_while_this_instance_owns_the_sender(
        make_rig: Callable[..., Any], salon: str, db_url: str) -> None:
    """Another instance holding the WhatsApp sender (its ownership lock) keeps this dispatcher
    from sending; once that instance is gone, this one takes the sender and sends everything,
    each customer once."""
    import asyncpg

    from onboardd.cluster import membership as m

    rig = await make_rig()
    key = m.sender_key("whatsapp", "whatsapp:+14155238886")
    assert key in rig.services.membership.senders
    # The other "instance": a session holding the sender's lock (taken before this one could).
    other = await asyncpg.connect(db_url)
    try:
        held = False
        while not held:  # the rig's membership may have taken it first: wait for its release
            held = await other.fetchval("SELECT pg_try_advisory_lock($1, $2)", m.SENDER_CLASS,
                                        m.sender_lock_key(key))
            if not held:
                await rig.services.membership._give(key)  # hand it over, as a rebalance would
        await wait_for(lambda: not rig.services.membership.owns(key))
        campaign = await rig.campaign(salon, [phone(i) for i in range(10)])
        await asyncio.sleep(1.5)
        assert len(rig.sim.store) == 0
        assert await rig.pool.fetchval(
            "SELECT count(*) FROM invitation_messages"
            " WHERE campaign_id = $1 AND status = 'pending'", campaign) == 10
    finally:
        await other.close()  # the other instance dies: its session and lock end
    await wait_for(lambda: rig.settled(campaign), timeout_s=15)
    assert sorted(r.to for r in rig.sim.store.all()) == sorted(
        "whatsapp:" + phone(i) for i in range(10))
