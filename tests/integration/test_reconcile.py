"""Reconciliation against the Twilio simulator: callbacks lost while the daemon was down (the
simulator's callbacks_paused) and sends cut off mid-request are corrected from the Messages
list, through the status recorder, with counters equal to recounts."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from onboardd.actors import status_recorder
from onboardd.cli.reconcile import run_reconcile
from onboardd.config import Config
from onboardd.db import delivery as db
from onboardd.domain.status_events import SendOutcome
from onboardd.jobs import campaigns as campaign_jobs
from onboardd.jobs import delivery as delivery_jobs
from onboardd.runtime import Services
from onboardd.simulator.app import run_simulator
from onboardd.simulator.settings import SimulatorSettings
from onboardd.twilio import account as twilio_account
from onboardd.twilio import reconcile
from onboardd.twilio.client import close_client, make_client, send_message
from tests.integration.test_status_recorder import cb, new_sid, seed_campaign

SMS_FROM = "+15005550006"
PHONES = ["+919876500001", "+919876500002", "+919876500003", "+919876500004"]


@pytest.fixture
async def simulator(config: Config) -> AsyncIterator[str]:
    """A simulator whose callbacks are lost (as while the daemon is down), fast statuses; it
    accepts the test state directory's simulator token, as `onboardd simulator` would."""
    settings = SimulatorSettings(callbacks_paused=True, sent_after_ms=10, delivered_after_ms=30,
                                 read_after_ms=50, rate_per_s=0,
                                 auth_token=twilio_account.auth_token(config))
    async with run_simulator(settings, "127.0.0.1", 0) as base_url:
        yield base_url


@pytest.fixture
async def recording(services: Services, simulator: str) -> AsyncIterator[Services]:
    """Services pointed at the simulator, with the status recorder running."""
    services.twilio_base_url = simulator
    stopping = asyncio.Event()
    task = asyncio.create_task(status_recorder.run(services, stopping))
    yield services
    stopping.set()
    await task


async def _send(services: Services, to: str) -> str:
    cfg = services.cfg
    client = make_client(*twilio_account.credentials(cfg),
                         services.twilio_base_url, 5.0)
    try:
        result = await send_message(client, from_=SMS_FROM, to=to, body="Hello", content_sid=None,
                                    content_variables=None,
                                    status_callback="http://127.0.0.1:9/lost")
    finally:
        await close_client(client)
    assert result.sid is not None
    return result.sid


async def _wait_final(simulator: str, count: int) -> None:
    """Until the simulator reports `count` delivered messages."""
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            async with http.get(simulator + "/_sim/messages") as resp:
                rows = await resp.json()
            if sum(r["status"] == "delivered" for r in rows) >= count:
                return
            await asyncio.sleep(0.02)
    raise AssertionError("simulator never delivered")


async def _seed(services: Services, salon: str) -> tuple[str, list[str], list[str]]:
    """Messages 0-1 accepted (callbacks lost); 2 cut off after reaching Twilio; 3 cut off before."""
    campaign, ids = await seed_campaign(services, salon, 4, channel="sms", phones=PHONES)
    sids = [await _send(services, PHONES[0]), await _send(services, PHONES[1])]
    now = datetime.now(UTC)
    await db.record_batch(services.pool, [
        SendOutcome(ids[0], "accepted", now, "sms", sid=sids[0], sender=SMS_FROM),
        SendOutcome(ids[1], "accepted", now, "sms", sid=sids[1], sender=SMS_FROM),
    ], 3600.0)
    await services.pool.execute(
        """UPDATE invitation_messages SET status = 'sending', sender = $2,
               claimed_until = now() - interval '1 minute',
               attempt_started_at = now() - interval '30 seconds'
           WHERE id = ANY($1::text[])""", ids[2:], SMS_FROM)
    sids.append(await _send(services, PHONES[2]))
    await _wait_final(services.twilio_base_url, 3)
    return campaign, ids, sids


async def test_lost_callbacks_and_cut_off_sends_are_reconciled(recording: Services,
                                                               salon: str) -> None:
    services = recording
    campaign, ids, sids = await _seed(services, salon)
    report = await reconcile.reconcile_messages(services, campaign_id=campaign,
                                                delivery_wait_s=0.0)
    assert (report.examined, report.statuses_found, report.sends_found,
            report.sends_not_found, report.lookups_failed) == (4, 2, 1, 1, 0)
    rows = {r["id"]: r for r in await services.pool.fetch(
        "SELECT * FROM invitation_messages WHERE campaign_id = $1", campaign)}
    assert [rows[i]["status"] for i in ids] == ["delivered", "delivered", "delivered", "pending"]
    assert rows[ids[2]]["twilio_message_sid"] == sids[2]
    assert rows[ids[0]]["delivered_at"] is not None and rows[ids[0]]["sent_at"] is not None
    assert rows[ids[3]]["claimed_until"] is None
    counters = await db.recount(services.pool, campaign)
    assert counters.equal and counters.stored["delivered"] == 3
    # A second pass finds nothing new to do for the reconciled messages.
    again = await reconcile.reconcile_messages(services, campaign_id=campaign,
                                               delivery_wait_s=0.0)
    assert again.examined == 0


async def test_explicit_message_ids_for_the_dispatcher(recording: Services, salon: str) -> None:
    services = recording
    campaign, ids, _sids = await _seed(services, salon)
    report = await reconcile.reconcile_messages(services, message_ids=[ids[2]])
    assert report.sends_found == 1
    status = await services.pool.fetchval(
        "SELECT status FROM invitation_messages WHERE id = $1", ids[2])
    assert status == "delivered"
    assert (await db.recount(services.pool, campaign)).equal


async def test_job_applies_late_orphans_drops_stale_and_completes(
        recording: Services, salon: str, make_config: Callable[..., Config]) -> None:
    services = dataclasses.replace(recording, cfg=make_config(campaigns_delivery_wait_s="0"))
    campaign, ids = await seed_campaign(services, salon, 1, channel="sms")
    sid, stray = new_sid(), new_sid()
    await db.record_batch(services.pool, [cb(sid, "delivered"), cb(stray, "sent")], 3600.0)
    # The SID appears by another path (not through an accepted outcome of the recorder).
    await services.pool.execute(
        """UPDATE invitation_messages SET status = 'queued', twilio_message_sid = $2,
               queued_at = now() WHERE id = $1""", ids[0], sid)
    await services.pool.execute(
        "UPDATE invitation_campaigns SET messages_sent = 1 WHERE id = $1", campaign)
    await services.pool.execute(
        "UPDATE status_callback_orphans SET received_at = now() - interval '1 hour'"
        " WHERE sid = $1", stray)
    await delivery_jobs.DeliveryPass()(services)
    row = await services.pool.fetchrow(
        "SELECT m.status, c.status AS campaign_status FROM invitation_messages m "
        "JOIN invitation_campaigns c ON c.id = m.campaign_id WHERE m.id = $1", ids[0])
    assert row is not None
    assert (row["status"], row["campaign_status"]) == ("delivered", "completed")
    assert await services.pool.fetchval("SELECT count(*) FROM status_callback_orphans") == 0
    assert (await db.recount(services.pool, campaign)).equal


async def test_cut_off_sends_belong_to_the_one_lease_sweep(
        recording: Services, salon: str, make_config: Callable[..., Config]) -> None:
    services = dataclasses.replace(recording, cfg=make_config(campaigns_delivery_wait_s="0"))
    campaign, ids, sids = await _seed(services, salon)
    # The periodic delivery job looks up statuses only: the cut-off sends are not its business.
    await delivery_jobs.DeliveryPass()(services)
    status = "SELECT status FROM invitation_messages WHERE id = $1"
    assert [await services.pool.fetchval(status, i) for i in ids] == [
        "delivered", "delivered", "sending", "sending"]
    await campaign_jobs.sweep_leases(services)
    rows = {r["id"]: r for r in await services.pool.fetch(
        "SELECT * FROM invitation_messages WHERE campaign_id = $1", campaign)}
    assert [rows[i]["status"] for i in ids] == ["delivered", "delivered", "delivered", "pending"]
    assert rows[ids[2]]["twilio_message_sid"] == sids[2]
    assert (await db.recount(services.pool, campaign)).equal


async def test_sweep_that_cannot_ask_twilio_leaves_the_lease_and_sends_nothing(
        recording: Services, salon: str) -> None:
    services = recording
    campaign, ids = await seed_campaign(services, salon, 1, channel="sms", phones=PHONES[:1])
    await services.pool.execute(
        """UPDATE invitation_messages SET status = 'sending', sender = $2,
               claimed_until = now() - interval '1 minute',
               attempt_started_at = now() - interval '2 minutes' WHERE id = $1""",
        ids[0], SMS_FROM)
    reachable = services.twilio_base_url
    services.twilio_base_url = "http://127.0.0.1:9"  # nothing listens: Twilio cannot be asked
    report = await reconcile.reconcile_messages(services, statuses=False, campaign_id=campaign)
    assert (report.examined, report.lookups_failed, report.sends_not_found) == (1, 1, 0)
    row = await services.pool.fetchrow(
        "SELECT status, claimed_until > now() AS leased FROM invitation_messages WHERE id = $1",
        ids[0])
    assert row is not None and (row["status"], row["leased"]) == ("sending", True)
    # Leased to the failed pass: the next one asks again only after that lease runs out.
    services.twilio_base_url = reachable
    again = await reconcile.reconcile_messages(services, statuses=False, campaign_id=campaign)
    assert again.examined == 0


async def test_cli_reconcile(services: Services, salon: str, simulator: str,
                             make_config: Callable[..., Config],
                             capsys: pytest.CaptureFixture[str]) -> None:
    services.twilio_base_url = simulator
    campaign, ids = await seed_campaign(services, salon, 1, channel="sms", phones=PHONES[:1])
    sid = await _send(services, PHONES[0])
    await db.record_batch(services.pool, [SendOutcome(
        ids[0], "accepted", datetime.now(UTC) - timedelta(seconds=5), "sms", sid=sid)], 3600.0)
    await _wait_final(simulator, 1)
    port = simulator.rsplit(":", 1)[1]
    cfg = make_config(simulator_port=port, campaigns_delivery_wait_s="1")
    assert await run_reconcile(cfg, campaign, None) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert '"statuses_found":1' in out
    status = await services.pool.fetchval(
        "SELECT status FROM invitation_messages WHERE id = $1", ids[0])
    assert status == "delivered"
    assert await services.pool.fetchval(
        "SELECT status FROM invitation_campaigns WHERE id = $1", campaign) == "completed"


async def test_cli_in_simulator_mode_without_a_simulator_says_so(
        make_config: Callable[..., Config], capsys: pytest.CaptureFixture[str]) -> None:
    # The simulator inside `serve` listens on a random port: the CLI needs the standalone one.
    cfg = make_config(simulator_host="127.0.0.1", simulator_port="9")
    assert cfg.simulated_twilio
    assert await run_reconcile(cfg, None, None) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "onboardd simulator" in err[0] and "http://127.0.0.1:9" in err[0]


async def test_feed_wait_is_bounded_when_no_recorder_runs(
        services: Services, make_config: Callable[..., Config]) -> None:
    quick = dataclasses.replace(services, cfg=make_config(supervisor_shutdown_grace_s="0.1"),
                                queues=type(services.queues)())
    item = SendOutcome("no-such-message", "accepted", datetime.now(UTC), "sms", sid="SMx")
    assert await reconcile.feed(quick, [item]) is False
    assert quick.queues.status.qsize() == 1  # still queued for the recorder


async def test_status_lookups_go_round_instead_of_asking_the_same_first_ones(
        recording: Services, salon: str, make_config: Callable[..., Config]) -> None:
    services = dataclasses.replace(recording, cfg=make_config(campaigns_delivery_wait_s="0"))
    _campaign, ids, _sids = await _seed(services, salon)
    # The first overdue message (in id order) is one Twilio has no news of: it stays 'queued'
    # after every lookup, as an SMS whose carrier never reports delivery stays 'sent'.
    stuck, other = sorted(ids[:2])
    await services.pool.execute(
        "UPDATE invitation_messages SET twilio_message_sid = $2 WHERE id = $1", stuck, new_sid())
    job = delivery_jobs.DeliveryPass(limit=1)
    status = "SELECT status FROM invitation_messages WHERE id = $1"
    await job(services)
    assert job.after == stuck
    assert await services.pool.fetchval(status, other) == "queued"
    await job(services)  # goes on after the stuck one
    assert await services.pool.fetchval(status, other) == "delivered"
    await job(services)  # nothing after it: the next pass starts again from the first
    assert job.after is None
    assert await services.pool.fetchval(status, stuck) == "queued"
