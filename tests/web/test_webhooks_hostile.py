"""Hostile Twilio webhooks over real HTTP (issue 10): malformed signed callbacks never reach the
status recorder, simulator mode cannot be forged with a public token, and malformed bodies get
a 400 in the JSON error shape without a traceback."""

from __future__ import annotations

import asyncio
import functools
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from twilio.request_validator import RequestValidator

from onboardd.actors import status_folder, status_recorder
from onboardd.runtime import Services
from onboardd.supervisor import Supervisor
from onboardd.twilio import account as twilio_account
from tests.integration.test_status_recorder import accept_all, message_rows, seed_campaign
from tests.status_inbox_support import inbox_drained
from tests.web.test_webhooks import INBOUND, SENDER, STATUS, post_signed, status_form

PUBLIC_TOKEN = "simulator-auth-token"  # the constant simulator mode used to sign with


@pytest.fixture
async def supervised(services: Services) -> AsyncIterator[Supervisor]:
    """The status recorder and folder under the daemon's supervisor (crash loop: restart_max
    crashes)."""
    supervisor = Supervisor(services.cfg.supervisor, services.stopping)
    supervisor.add("status_recorder", functools.partial(status_recorder.run, services),
                   drain_last=True)
    supervisor.add("status_folder", functools.partial(status_folder.run, services),
                   drain_last=True)
    task = asyncio.create_task(supervisor.run())
    yield supervisor
    services.stopping.set()
    await task


def _malformed(good_sid: str) -> list[tuple[str, dict[str, str]]]:
    """Signed callbacks the recorder could not store, each with the field a 400 must name."""
    return [
        ("MessageSid", status_form("SM" + "a" * 60, "delivered")),
        ("MessageSid", status_form("not-a-sid", "delivered")),
        ("ErrorCode", status_form(good_sid, "failed", ErrorCode=str(2**31))),
        ("ErrorCode", status_form(good_sid, "failed", ErrorCode="-1")),
        ("ErrorMessage", {**status_form(good_sid, "failed", ErrorCode="30003"),
                          "ErrorMessage": "x" * 5000}),
        ("'ErrorMessage'", status_form(good_sid, "failed", ErrorCode="30003",
                                       ErrorMessage="no\x00pe")),
        ("'To'", {**status_form(good_sid, "sent"), "To": "whatsapp:+91\x00"}),
        ("MessageStatus", status_form(good_sid, "exploded")),
        ("AccountSid", {**status_form(good_sid, "sent"), "AccountSid": "AC" + "9" * 40}),
    ]


async def test_malformed_signed_callbacks_are_400_and_the_good_ones_land(
        client: TestClient[Any, Any], services: Services, salon: str,
        supervised: Supervisor) -> None:
    campaign, ids = await seed_campaign(services, salon, 6)
    sids = await accept_all(services, ids)
    bad = _malformed(sids[0]) * 2  # more than restart_max (5) crashes would have been a loop
    good = [status_form(sid, "delivered") for sid in sids]
    posts = [post_signed(client, services, STATUS, form) for _field, form in bad]
    posts += [post_signed(client, services, STATUS, form) for form in good]
    answers = await asyncio.gather(*posts)
    for (field, _form), (code, body) in zip(bad, answers[: len(bad)], strict=True):
        assert code == 400, (field, body)
        assert '"code":"bad_request"' in body and field in body, body
    assert [code for code, _body in answers[len(bad):]] == [200] * len(good)
    await inbox_drained(services)
    rows = await message_rows(services, campaign)
    assert {r["status"] for r in rows.values()} == {"delivered"}
    assert await services.pool.fetchval("SELECT count(*) FROM status_callback_orphans") == 0
    assert supervisor_running(supervised) and not services.stopping.is_set()
    # Still recording afterwards.
    assert (await post_signed(client, services, STATUS, status_form(sids[0], "read")))[0] == 200


def supervisor_running(supervisor: Supervisor) -> bool:
    """The recorder runs (no crash, no restart) and the process was not told to stop."""
    return supervisor.states() == {"status_recorder": "running", "status_folder": "running"
                                   } and supervisor.all_running()


async def test_forged_stop_signed_with_the_public_token_opts_nobody_out(
        client: TestClient[Any, Any], services: Services, salon: str, tmp_path: Path) -> None:
    assert services.cfg.simulated_twilio
    phone = "+919876543210"
    await seed_campaign(services, salon, 1, phones=[phone])
    form = {"MessageSid": "SM" + "4" * 32, "From": "whatsapp:" + phone, "To": SENDER,
            "Body": "STOP", "AccountSid": services.cfg.simulator.account_sid}
    url = services.public_base_url + INBOUND
    forged = {"X-Twilio-Signature": RequestValidator(PUBLIC_TOKEN).compute_signature(url, form)}
    resp = await client.post(INBOUND, data=form, headers=forged)
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "bad_signature"
    assert await services.pool.fetchval("SELECT count(*) FROM opt_outs") == 0
    assert await services.pool.fetchval("SELECT count(*) FROM inbound_messages") == 0
    assert await services.pool.fetchval(
        "SELECT status FROM imported_customers WHERE salon_id = $1", salon) == "pending"
    # The simulator's real token is random, kept (0600) under the state directory.
    kept = Path(services.cfg.paths.state_dir) / twilio_account.SIMULATOR_TOKEN_FILE
    assert kept.read_text().strip() == twilio_account.auth_token(services.cfg) != PUBLIC_TOKEN
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    # Signed with it, the same STOP is honoured.
    assert (await post_signed(client, services, INBOUND, form))[0] == 200
    assert await services.pool.fetchval(
        "SELECT status FROM imported_customers WHERE salon_id = $1", salon) == "opted_out"


def _no_traceback(logs: list[dict[str, Any]]) -> None:
    assert not [e for e in logs if "exc_info" in e or e.get("log_level") == "critical"], logs
    assert not [e for e in logs if e.get("event") == "request_failed"], logs


async def test_non_utf8_webhook_body_is_400_without_a_traceback(
        client: TestClient[Any, Any], services: Services) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Twilio-Signature": "bm90IGNoZWNrZWQ="}
    with structlog.testing.capture_logs() as logs:
        for path in (STATUS, INBOUND):
            for body in (b"MessageSid=SM\xff\xfe&MessageStatus=sent", b"Body=%FF%FE&From=x"):
                resp = await client.post(path, data=body, headers=headers)
                assert resp.status == 400, await resp.text()
                error = (await resp.json())["error"]
                assert error["code"] == "bad_request" and "UTF-8" in error["message"]
    _no_traceback(logs)
    assert [e["event"] for e in logs if e["event"].startswith("webhook")] == [
        "webhook_malformed"] * 4


async def test_multipart_and_other_bodies_are_400_in_the_json_shape(
        client: TestClient[Any, Any], services: Services) -> None:
    sig = {"X-Twilio-Signature": "bm90IGNoZWNrZWQ="}
    multipart = FormData({"MessageSid": "SM" + "1" * 32, "MessageStatus": "sent"})
    multipart.add_field("file", b"x", filename="x.bin")
    truncated = (b"--b\r\nContent-Disposition: form-data; name=\"MessageSid\"\r\n\r\nSM")
    cases: list[tuple[bytes | FormData, dict[str, str]]] = [
        (multipart, {}),
        (b"MessageSid=x", {"Content-Type": "multipart/form-data"}),  # no boundary
        (truncated, {"Content-Type": "multipart/form-data; boundary=b"}),
        (b'{"MessageSid": "x"}', {"Content-Type": "application/json"}),
        (b"MessageSid=x", {"Content-Type": "text/plain"}),
        (b"MessageSid=x", {"Content-Type": "application/x-www-form-urlencoded; charset=latin-1"}),
        (b"MessageSid=x&&=&bare", {"Content-Type": "application/x-www-form-urlencoded"}),
    ]
    with structlog.testing.capture_logs() as logs:
        for path in (STATUS, INBOUND):
            for data, headers in cases:
                resp = await client.post(path, data=data, headers={**sig, **headers})
                assert resp.status == 400, (headers, await resp.text())
                assert (await resp.json())["error"]["code"] == "bad_request"
    _no_traceback(logs)


async def test_oversized_body_is_413_and_unsigned_is_403_before_reading(
        client: TestClient[Any, Any], services: Services) -> None:
    big = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "sent", "Pad": "x" * 70_000}
    resp = await client.post(STATUS, data=big, headers={"X-Twilio-Signature": "x"})
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "payload_too_large"
    # Without a signature header the body does not matter.
    resp = await client.post(STATUS, data=b"\xff", headers={"Content-Type": "text/plain"})
    assert resp.status == 403


async def test_signed_inbound_with_bad_fields_is_400_and_records_nothing(
        client: TestClient[Any, Any], services: Services) -> None:
    base = {"MessageSid": "SM" + "5" * 32, "From": "whatsapp:+919876543210", "To": SENDER,
            "Body": "STOP"}
    for field, form in [
        ("MessageSid", {**base, "MessageSid": "SM" + "5" * 50}),
        ("To", {**base, "To": "whatsapp:+1" + "2" * 80}),
        ("'Body'", {**base, "Body": "STOP\x00"}),
        ("From", {**base, "From": "whatsapp:"}),
        ("From", {k: v for k, v in base.items() if k != "From"}),
    ]:
        code, body = await post_signed(client, services, INBOUND, form)
        assert code == 400 and field in body, (field, body)
    assert await services.pool.fetchval("SELECT count(*) FROM inbound_messages") == 0
    assert await services.pool.fetchval("SELECT count(*) FROM opt_outs") == 0
