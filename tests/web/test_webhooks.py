"""Twilio webhooks over real HTTP: signatures (also behind a proxy), status callbacks recorded
durably and idempotently, unknown SIDs, and STOP/START/HELP including a STOP mid-campaign."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from twilio.request_validator import RequestValidator

from onboardd.actors import status_folder, status_recorder
from onboardd.config import Config
from onboardd.db import delivery as db
from onboardd.domain.status_events import StatusWork
from onboardd.runtime import Services
from onboardd.web.app import create_app
from onboardd.web.webhooks import twilio_auth_token
from tests.campaign_support import wait_for
from tests.integration.test_status_recorder import (
    accept_all,
    new_salon,
    new_sid,
    seed_campaign,
)
from tests.status_inbox_support import inbox_drained

STATUS = "/api/webhooks/twilio/status"
INBOUND = "/api/webhooks/twilio/inbound"
SENDER = "whatsapp:+14155238886"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2


@pytest.fixture
async def recorder(services: Services) -> AsyncIterator[None]:
    """The status-recorder and status-folder actors running for the test (a callback answered
    200 is durable in the status inbox; the folder applies it: see inbox_drained)."""
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(status_recorder.run(services, stopping)),
             asyncio.create_task(status_folder.run(services, stopping))]
    yield
    stopping.set()
    await asyncio.gather(*tasks)


def signed(services: Services, url: str, params: dict[str, str]) -> dict[str, str]:
    """Headers carrying Twilio's signature of params posted to url."""
    validator = RequestValidator(twilio_auth_token(services))
    return {"X-Twilio-Signature": validator.compute_signature(url, params)}


async def post_signed(client: TestClient[Any, Any], services: Services, path: str,
                      params: dict[str, str]) -> tuple[int, str]:
    """POST a form signed over the configured public URL; returns (status, body)."""
    headers = signed(services, services.public_base_url + path, params)
    resp = await client.post(path, data=params, headers=headers)
    return resp.status, await resp.text()


def status_form(sid: str, status: str, **extra: str) -> dict[str, str]:
    """A Twilio status callback form."""
    return {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
            "AccountSid": ACCOUNT_SID, "From": SENDER, "To": "whatsapp:+919876543210",
            "ApiVersion": "2010-04-01", **extra}


async def test_missing_or_wrong_signature_is_403(client: TestClient[Any, Any],
                                                 services: Services) -> None:
    form = status_form(new_sid(), "delivered")
    resp = await client.post(STATUS, data=form)
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "bad_signature"
    resp = await client.post(STATUS, data=form, headers={"X-Twilio-Signature": "bm90IGl0"})
    assert resp.status == 403
    # Signed over another URL, or with another token.
    other_url = signed(services, "http://elsewhere.example" + STATUS, form)
    assert (await client.post(STATUS, data=form, headers=other_url)).status == 403
    bad_token = {"X-Twilio-Signature": RequestValidator("wrong").compute_signature(
        services.public_base_url + STATUS, form)}
    assert (await client.post(STATUS, data=form, headers=bad_token)).status == 403
    # Tampered body.
    headers = signed(services, services.public_base_url + STATUS, form)
    tampered = {**form, "MessageStatus": "read"}
    assert (await client.post(STATUS, data=tampered, headers=headers)).status == 403
    assert (await client.post(INBOUND, data={"From": "+1", "To": "+2", "Body": "STOP"})
            ).status == 403


async def _app_client(services: Services) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(services)))
    await client.start_server()
    return client


async def test_signature_behind_a_tls_proxy(services: Services, recorder: None,
                                            make_config: Callable[..., Config]) -> None:
    form = status_form(new_sid(), "sent")
    public = "https://hooks.example.com"
    # 1. The configured public URL is what Twilio signs; the request reaches us as plain http.
    behind = dataclasses.replace(services, public_base_url=public)
    client = await _app_client(behind)
    try:
        ok = await client.post(STATUS, data=form, headers=signed(behind, public + STATUS, form))
        assert ok.status == 200
    finally:
        await client.close()
    # 2. Forwarded headers are honoured only with [http] trust_forwarded.
    headers = {**signed(services, public + "/api/webhooks/twilio/status?x=1", form),
               "X-Forwarded-Proto": "https", "X-Forwarded-Host": "hooks.example.com"}
    for trust, expected in (("false", 403), ("true", 200)):
        cfg = make_config(http_trust_forwarded=trust)
        svc = dataclasses.replace(services, cfg=cfg)
        client = await _app_client(svc)
        try:
            resp = await client.post(STATUS + "?x=1", data=form, headers=headers)
            assert resp.status == expected, trust
        finally:
            await client.close()


async def test_status_callbacks_recorded_before_answering(client: TestClient[Any, Any],
                                                          services: Services, salon: str,
                                                          recorder: None) -> None:
    campaign, ids = await seed_campaign(services, salon, 2)
    sids = await accept_all(services, ids)
    for status in ("sent", "delivered", "delivered", "sent", "read"):
        code, body = await post_signed(client, services, STATUS,
                                       status_form(sids[0], status, NewField="ignored"))
        assert code == 200 and "<Response/>" in body
    code, _ = await post_signed(client, services, STATUS, status_form(
        sids[1], "undelivered", ErrorCode="30005", ErrorMessage="Unknown destination handset"))
    assert code == 200
    await inbox_drained(services)
    rows = {r["id"]: r for r in await services.pool.fetch(
        "SELECT * FROM invitation_messages WHERE campaign_id = $1", campaign)}
    assert rows[ids[0]]["status"] == "read"
    assert rows[ids[1]]["status"] == "undelivered"
    assert rows[ids[1]]["error_message"] == "Twilio error: 30005 (Unknown destination handset)"
    counters = await db.recount(services.pool, campaign)
    assert counters.equal
    assert counters.stored == {"sent": 2, "delivered": 1, "read": 1, "failed": 1, "skipped": 0}


async def test_unknown_sid_answers_200_and_is_kept(client: TestClient[Any, Any],
                                                   services: Services, recorder: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    sid = new_sid()
    code, _ = await post_signed(client, services, STATUS, status_form(sid, "delivered"))
    assert code == 200
    # Held in the inbox first (its send result may be committing), not an orphan yet ...
    await wait_for(lambda: _held(services, sid), timeout_s=5)
    assert await services.pool.fetchval("SELECT count(*) FROM status_callback_orphans") == 0
    # ... and kept as an orphan once its hold is over.
    monkeypatch.setattr(status_folder, "HOLD_UNKNOWN_S", 0.0)
    services.inbox_wake.set()
    await inbox_drained(services)
    kept = await services.pool.fetch("SELECT sid, status FROM status_callback_orphans")
    assert [(r["sid"], r["status"]) for r in kept] == [(sid, "delivered")]
    code, _ = await post_signed(client, services, STATUS, {"MessageStatus": "sent"})
    assert code == 400


async def _held(services: Services, sid: str) -> bool:
    return bool(await services.pool.fetchval(
        "SELECT held_since IS NOT NULL FROM status_inbox WHERE sid = $1", sid))


async def test_status_callback_503_when_recorder_is_not_running(
        client: TestClient[Any, Any], services: Services,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from onboardd.web import webhooks

    monkeypatch.setattr(webhooks, "DURABLE_WAIT_S", 0.05)
    code, _ = await post_signed(client, services, STATUS, status_form(new_sid(), "sent"))
    assert code == 503


async def test_status_callback_503_when_the_recorder_queue_stays_full(
        client: TestClient[Any, Any], services: Services,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A full queue (the recorder far behind) is waited on within the same deadline; the
    callback that found no room is not queued, so nothing is recorded behind the 503."""
    from onboardd.web import webhooks

    full: asyncio.Queue[StatusWork] = asyncio.Queue(maxsize=1)
    full.put_nowait(StatusWork(items=[]))
    monkeypatch.setattr(services.queues, "status", full)
    monkeypatch.setattr(webhooks, "DURABLE_WAIT_S", 0.05)
    code, body = await post_signed(client, services, STATUS, status_form(new_sid(), "sent"))
    assert code == 503, body
    assert full.qsize() == 1 and full.get_nowait().items == []


async def test_status_callback_waits_for_room_in_a_full_queue_then_answers_when_durable(
        client: TestClient[Any, Any], services: Services,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A callback that finds the queue full waits for room, then for its commit: 200, and the
    callback is in the status inbox."""
    full: asyncio.Queue[StatusWork] = asyncio.Queue(maxsize=1)
    full.put_nowait(StatusWork(items=[]))
    monkeypatch.setattr(services.queues, "status", full)
    sid = new_sid()
    posted = asyncio.create_task(post_signed(client, services, STATUS, status_form(sid, "sent")))
    await asyncio.sleep(0.2)
    assert not posted.done()  # waiting for room
    stopping = asyncio.Event()
    recorder = asyncio.create_task(status_recorder.run(services, stopping))
    try:
        code, body = await asyncio.wait_for(posted, 5)
    finally:
        stopping.set()
        await recorder
    assert code == 200, body
    assert await services.pool.fetchval("SELECT status FROM status_inbox WHERE sid = $1",
                                        sid) == "sent"


async def _customer_statuses(services: Services, phone_hash: bytes) -> list[str]:
    rows = await services.pool.fetch(
        "SELECT status FROM imported_customers WHERE phone_hash = $1 ORDER BY salon_id",
        phone_hash)
    return [r["status"] for r in rows]


async def test_stop_mid_campaign_then_start(client: TestClient[Any, Any], services: Services,
                                            salon: str, recorder: None) -> None:
    phone = "+919876543210"
    others = ["+919876543211", "+919876543212"]
    campaign, ids = await seed_campaign(services, salon, 3, phones=[phone, *others])
    # The first other customer was already invited; the rest are still pending.
    await accept_all(services, ids[1:2])
    # The same number in another salon, invited earlier by a completed campaign.
    salon2 = await new_salon(services)
    done_campaign, done_ids = await seed_campaign(services, salon2, 1, phones=[phone])
    await accept_all(services, done_ids)
    await services.pool.execute(
        "UPDATE invitation_campaigns SET status = 'completed' WHERE id = $1", done_campaign)
    phone_hash = services.cipher.phone_hash(phone)

    form = {"MessageSid": "SM" + "1" * 32, "From": "whatsapp:" + phone, "To": SENDER,
            "Body": "  stop \n", "AccountSid": ACCOUNT_SID}
    code, body = await post_signed(client, services, INBOUND, form)
    assert code == 200 and "<Response/>" in body
    opt = await services.pool.fetch("SELECT phone_hash, sender, source FROM opt_outs")
    assert [(r["phone_hash"], r["sender"], r["source"]) for r in opt] == [
        (phone_hash, SENDER, "inbound_stop")]
    assert await _customer_statuses(services, phone_hash) == ["opted_out", "opted_out"]
    rows = {r["id"]: r for r in await services.pool.fetch(
        "SELECT * FROM invitation_messages WHERE campaign_id = $1", campaign)}
    assert rows[ids[0]]["status"] == "skipped" and rows[ids[0]]["skip_reason"] == "opted_out"
    assert rows[ids[1]]["status"] == "queued"  # someone else, already sent
    assert rows[ids[2]]["status"] == "pending"  # someone else, still to send
    counters = await db.recount(services.pool, campaign)
    assert counters.equal and counters.stored["skipped"] == 1

    # A redelivered STOP webhook changes nothing; HELP is only recorded.
    await post_signed(client, services, INBOUND, form)
    help_form = {**form, "MessageSid": "SM" + "2" * 32, "Body": "HELP"}
    assert (await post_signed(client, services, INBOUND, help_form))[0] == 200
    kinds = await services.pool.fetch("SELECT keyword FROM inbound_messages ORDER BY id")
    assert [r["keyword"] for r in kinds] == ["stop", "help"]

    start = {**form, "MessageSid": "SM" + "3" * 32, "Body": "Start"}
    assert (await post_signed(client, services, INBOUND, start))[0] == 200
    assert await services.pool.fetchval("SELECT count(*) FROM opt_outs") == 0
    statuses = dict(await services.pool.fetch(
        "SELECT salon_id, status FROM imported_customers WHERE phone_hash = $1", phone_hash))
    assert statuses == {salon: "pending", salon2: "invited"}  # never invited / invited before
    # The skipped message stays skipped: the campaign does not resend after START.
    assert await services.pool.fetchval(
        "SELECT status FROM invitation_messages WHERE id = $1", ids[0]) == "skipped"


async def test_stop_that_skips_a_campaigns_last_unsent_message_completes_it(
        client: TestClient[Any, Any], services: Services, salon: str, recorder: None) -> None:
    phone, other = "+919876543210", "+919876543211"
    campaign, ids = await seed_campaign(services, salon, 2, phones=[phone, other])
    await services.pool.execute(
        "UPDATE invitation_messages SET status = 'delivered' WHERE id = $1", ids[1])
    form = {"MessageSid": "SM" + "4" * 32, "From": "whatsapp:" + phone, "To": SENDER,
            "Body": "STOP", "AccountSid": ACCOUNT_SID}
    assert (await post_signed(client, services, INBOUND, form))[0] == 200
    row = await services.pool.fetchrow(
        "SELECT status, completed_at FROM invitation_campaigns WHERE id = $1", campaign)
    assert row["status"] == "completed" and row["completed_at"] is not None


async def test_stop_leaves_a_campaign_with_other_unsent_messages_sending(
        client: TestClient[Any, Any], services: Services, salon: str, recorder: None) -> None:
    phone, other = "+919876543210", "+919876543211"
    campaign, _ids = await seed_campaign(services, salon, 2, phones=[phone, other])
    form = {"MessageSid": "SM" + "5" * 32, "From": "whatsapp:" + phone, "To": SENDER,
            "Body": "STOP", "AccountSid": ACCOUNT_SID}
    assert (await post_signed(client, services, INBOUND, form))[0] == 200
    assert await services.pool.fetchval(
        "SELECT status FROM invitation_campaigns WHERE id = $1", campaign) == "sending"
