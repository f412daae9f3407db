"""The Twilio simulator driven through the real twilio client built by make_client."""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import SimpleNamespace
from typing import Any

import aiohttp
import msgspec
import pytest
from twilio.request_validator import RequestValidator

from onboardd.simulator import (
    STATE_KEY,
    STORE_KEY,
    SimState,
    SimulatorSettings,
    create_app,
    ratelimit,
)
from onboardd.simulator.app import serve_app
from onboardd.simulator.segments import num_segments
from onboardd.twilio.client import (
    SendResult,
    SendWithdrawn,
    TwilioListError,
    TwilioTimeout,
    TwilioUnreachable,
    close_client,
    list_messages,
    make_client,
    send_message,
)
from tests.campaign_support import wait_for
from tests.integration.conftest import Receiver

FROM = "+15005550006"
WA_FROM = "whatsapp:+14155238886"
FAST = {"sent_after_ms": 30.0, "delivered_after_ms": 80.0, "read_after_ms": 130.0}


@dataclass
class Sim:
    """A running simulator with a twilio client pointed at it."""

    url: str
    state: SimState
    client: Any
    http: aiohttp.ClientSession

    async def send(self, to: str, body: str | None = "hello", **kw: Any) -> SendResult:
        """send_message with test defaults."""
        args: dict[str, Any] = {
            "from_": WA_FROM if to.startswith("whatsapp:") else FROM,
            "to": to,
            "body": body,
            "content_sid": None,
            "content_variables": None,
            "status_callback": None,
        }
        args.update(kw)
        return await send_message(self.client, **args)

    async def control(self, method: str, path: str, payload: Any = None) -> Any:
        """Call a /_sim endpoint and decode its JSON."""
        async with self.http.request(method, self.url + path, json=payload) as resp:
            return resp.status, await resp.json()


@asynccontextmanager
async def started(timeout_s: float = 2.0, **overrides: Any) -> AsyncIterator[Sim]:
    """A simulator on 127.0.0.1:0 plus a client; both closed on exit."""
    app = create_app(msgspec.convert(overrides, SimulatorSettings))
    settings = app[STATE_KEY].settings  # with the token the simulator invented
    async with serve_app(app, "127.0.0.1", 0) as url, aiohttp.ClientSession() as http:
        client = make_client(settings.account_sid, settings.auth_token, url, timeout_s)
        try:
            yield Sim(url, app[STATE_KEY], client, http)
        finally:
            await close_client(client)


async def _until(check: Callable[[], object], timeout: float = 3.0) -> None:
    """Poll until ``check()`` (plain or async) holds; fail after ``timeout`` (a bound)."""
    await wait_for(check, timeout_s=timeout, every_s=0.01)


def _all_posted(sim: Sim, sid: str | None) -> Callable[[], bool]:
    """True once the simulator posted a callback for every status it planned for the message
    and has no callback left to post: the receiver then holds all it will ever get."""
    record = sim.state.store.get(sid or "")
    assert record is not None

    def check() -> bool:
        planned = {step.status for step in record.timeline}
        return sim.state.dispatcher.pending == 0 and planned <= set(record.callbacks_posted)

    return check


async def _is_delivered(message: Awaitable[Any]) -> bool:
    """Whether a fetched or listed message shows 'delivered'."""
    return bool((await message).status == "delivered")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- creating messages -------------------------------------------------------------------


async def test_create_sms_returns_twilio_shaped_resource() -> None:
    async with started() as sim:
        result = await sim.send("+15551230001", "Hi there")
        assert result.accepted
        assert result.http_status == 201
        assert result.status == "queued"
        assert result.num_segments == 1
        assert result.error_code is None
        assert re.fullmatch(r"SM[0-9a-f]{32}", result.sid or "")

        path = f"/2010-04-01/Accounts/{sim.state.settings.account_sid}/Messages/{result.sid}.json"
        token = f"{sim.state.settings.account_sid}:{sim.state.settings.auth_token}"
        auth = {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}
        async with sim.http.get(sim.url + path, headers=auth) as resp:
            raw = await resp.json()
        assert raw["to"] == "+15551230001"
        assert raw["from"] == FROM
        assert raw["body"] == "Hi there"
        assert raw["direction"] == "outbound-api"
        assert raw["api_version"] == "2010-04-01"
        assert raw["num_media"] == "0"
        assert raw["num_segments"] == "1"
        assert raw["price"] is None
        assert raw["uri"] == path
        assert raw["subresource_uris"]["media"].endswith(f"{result.sid}/Media.json")
        assert parsedate_to_datetime(raw["date_created"]).tzinfo is not None
        assert raw["date_created"].endswith("+0000")


async def test_whatsapp_content_template_is_stored() -> None:
    async with started() as sim:
        result = await sim.send(
            "whatsapp:+15551230002",
            None,
            content_sid="HX0123456789abcdef0123456789abcdef",
            content_variables={"1": "Asha", "2": "20% off"},
        )
        assert result.accepted
        record = sim.state.store.get(result.sid or "")
        assert record is not None
        assert record.channel == "whatsapp"
        assert record.to == "whatsapp:+15551230002"
        assert record.content_sid == "HX0123456789abcdef0123456789abcdef"
        assert msgspec.json.decode(record.content_variables or "") == {"1": "Asha", "2": "20% off"}


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("é" * 10, 1),
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("ä" * 70 + "ś", 2),
        ("ś" * 70, 1),
        ("ś" * 134, 2),
    ],
)
async def test_segments_are_counted_like_twilio(body: str, segments: int) -> None:
    assert num_segments(body) == segments


async def test_segment_count_reaches_the_client() -> None:
    async with started() as sim:
        assert (await sim.send("+15551230003", "x" * 161)).num_segments == 2
        assert (await sim.send("+15551230003", "ü" * 100 + "😀")).num_segments == 2


# --- validation and magic numbers --------------------------------------------------------


async def test_wrong_credentials_get_20003() -> None:
    async with started() as sim:
        bad = make_client(sim.state.settings.account_sid, "wrong-token", sim.url, 2.0)
        try:
            result = await send_message(
                bad,
                from_=FROM,
                to="+15551230004",
                body="x",
                content_sid=None,
                content_variables=None,
                status_callback=None,
            )
            assert result.http_status == 401
            assert result.error_code == 20003
            assert not result.accepted
            with pytest.raises(TwilioListError) as err:
                await list_messages(bad, to=None, from_=None, date_sent_after=None, limit=5)
            assert err.value.http_status == 401
            assert err.value.code == 20003
        finally:
            await close_client(bad)
        assert len(sim.state.store) == 0


async def test_validation_errors_match_twilio() -> None:
    async with started(allowed_from=[FROM, WA_FROM]) as sim:
        assert (await sim.send("")).error_code == 21604
        assert (await sim.send("+15551230005", None)).error_code == 21602
        assert (await sim.send("+15551230005", from_="+15550009999")).error_code == 21606
        assert (await sim.send("whatsapp:+15551230005", from_=FROM)).error_code == 21910
        assert (await sim.send("12345")).error_code == 21211
        ok = await sim.send("whatsapp:+15551230005")
        assert ok.accepted
        assert sim.state.stats.rejected == {21604: 1, 21602: 1, 21606: 1, 21910: 1, 21211: 1}


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
    ],
)
async def test_magic_numbers(to: str, code: int) -> None:
    async with started() as sim:
        result = await sim.send(to)
        assert result.error_code == code
        assert result.http_status == 400
        assert result.sid is None
        assert result.error_message
        assert len(sim.state.store) == 0


# --- injected failures -------------------------------------------------------------------


async def test_per_number_429_carries_retry_after() -> None:
    async with started(per_number={"+15551230010": "429"}) as sim:
        result = await sim.send("+15551230010")
        assert (result.http_status, result.error_code, result.retry_after_s) == (429, 20429, 1.0)
        assert (await sim.send("+15551230011")).accepted


@pytest.mark.parametrize(
    ("behaviour", "status", "code"), [("500", 500, 20500), ("503", 503, 20503)]
)
async def test_per_number_5xx(behaviour: str, status: int, code: int) -> None:
    async with started(per_number={"+15551230012": behaviour}) as sim:
        result = await sim.send("+15551230012")
        assert (result.http_status, result.error_code, result.sid) == (status, code, None)


async def test_hanging_twilio_raises_timeout_and_message_can_be_reconciled() -> None:
    per_number = {"+15551230013": "timeout", "+15551230017": "slow"}
    async with started(timeout_s=1.0, slow_ms=400.0, per_number=per_number) as sim:
        # The client waits for an answer that takes 40 % of its timeout ...
        assert (await sim.send("+15551230017", "slow but there")).accepted
        # ... and gives up on a hang at its own timeout, not after the simulator's 600 s
        # (the outer timeout is a bound that a hang would hit, not a measurement).
        async with asyncio.timeout(30):
            with pytest.raises(TwilioTimeout):
                await sim.send("+15551230013", "are you there")
        # timeout_accepts: Twilio created it, only the response was lost.
        found = await list_messages(
            sim.client,
            to="+15551230013",
            from_=None,
            date_sent_after=datetime.now(UTC) - timedelta(minutes=1),
            limit=10,
        )
        assert [m.body for m in found] == ["are you there"]


async def test_hang_without_accepting_leaves_nothing_to_reconcile() -> None:
    async with started(
        timeout_s=0.2, timeout_accepts=False, per_number={"+15551230014": "timeout"}
    ) as sim:
        with pytest.raises(TwilioTimeout):
            await sim.send("+15551230014")
        assert len(sim.state.store) == 0


async def test_slow_response_is_answered_after_delay() -> None:
    async with started(slow_ms=500.0, per_number={"+15551230015": "slow"}) as sim:
        slow = asyncio.create_task(sim.send("+15551230015"))
        await _until(lambda: sim.state.stats.requests == 1)  # the slow request has arrived
        assert (await sim.send("+15551230018")).accepted
        assert (await slow).accepted
        # The simulator stored the slow message after one whose request arrived later.
        assert [r.to for r in sim.state.store.all()] == ["+15551230018", "+15551230015"]


async def test_unreachable_port_raises_unreachable() -> None:
    client = make_client("ACx", "token", f"http://127.0.0.1:{_free_port()}", 1.0)
    try:
        with pytest.raises(TwilioUnreachable):
            await send_message(
                client,
                from_=FROM,
                to="+15551230016",
                body="x",
                content_sid=None,
                content_variables=None,
                status_callback=None,
            )
    finally:
        await close_client(client)


async def test_on_wire_runs_right_before_the_request_is_written() -> None:
    """The sender's cap stamps a request in ``on_wire``: nothing has reached Twilio before it
    returns, however long it takes, and the request arrives after it."""
    stamps: list[float] = []
    async with started() as sim:

        async def on_wire() -> None:
            await asyncio.sleep(0.2)
            assert sim.state.stats.requests == 0
            stamps.append(time.time())

        assert (await sim.send("+15551230019", on_wire=on_wire)).accepted
        [record] = sim.state.store.all()
        assert len(stamps) == 1
        assert stamps[0] <= record.arrived_at


async def test_a_request_withdrawn_on_the_wire_never_reaches_twilio() -> None:
    async with started() as sim:

        async def withdraw() -> None:
            raise SendWithdrawn("the sender moved")

        with pytest.raises(SendWithdrawn):
            await sim.send("+15551230020", on_wire=withdraw)
        assert sim.state.stats.requests == 0
        assert len(sim.state.store) == 0
        # The client is fine afterwards: the next request goes out.
        assert (await sim.send("+15551230020")).accepted


async def test_rate_limit_rejects_beyond_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    # The budget's clock is the test's to move: the figures are exact, however slow the run.
    now = [1000.0]
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(monotonic=lambda: now[0]))
    async with started(rate_per_s=20.0) as sim:
        results = await asyncio.gather(*(sim.send(f"+1555124{n:04d}") for n in range(60)))
        accepted = [r for r in results if r.accepted]
        limited = [r for r in results if r.error_code == 20429]
        assert (len(accepted), len(limited)) == (20, 40)  # one second of burst, no more
        assert all(r.http_status == 429 and r.retry_after_s == 1.0 for r in limited)
        assert sim.state.stats.rejected[20429] == len(limited)
        now[0] += 0.5  # half a second refills half the budget
        again = await asyncio.gather(*(sim.send(f"+1555126{n:04d}") for n in range(20)))
        assert sum(r.accepted for r in again) == 10
        assert len(sim.state.store) == 30


async def test_random_error_profile_is_seeded() -> None:
    async def codes() -> list[int | None]:
        async with started(seed=7, error_rate_429=0.2, error_rate_5xx=0.2) as sim:
            return [(await sim.send(f"+1555125{n:04d}")).error_code for n in range(40)]

    first, second = await codes(), await codes()
    assert first == second
    assert {20429, None} <= set(first)
    assert set(first) & {20500, 20503}


# --- listing -----------------------------------------------------------------------------


async def test_list_filters_and_paging() -> None:
    async with started(**FAST) as sim:
        before = datetime.now(UTC) - timedelta(seconds=2)
        for n in range(3):
            assert (await sim.send("+15551230020", f"a{n}")).accepted
        for n in range(2):
            assert (await sim.send("+15551230021", f"b{n}", from_="+15005550007")).accepted
        to_a = await list_messages(
            sim.client, to="+15551230020", from_=None, date_sent_after=before, limit=50
        )
        assert [m.body for m in to_a] == ["a2", "a1", "a0"]
        assert all(m.to == "+15551230020" and m.from_ == FROM for m in to_a)
        from_b = await list_messages(
            sim.client, to=None, from_="+15005550007", date_sent_after=None, limit=50
        )
        assert [m.body for m in from_b] == ["b1", "b0"]
        future = datetime.now(UTC) + timedelta(minutes=5)
        assert (
            await list_messages(sim.client, to=None, from_=None, date_sent_after=future, limit=50)
            == []
        )
        assert (
            len(await list_messages(sim.client, to=None, from_=None, date_sent_after=None, limit=4))
            == 4
        )
        paged = await sim.client.messages.list_async(to="+15551230020", page_size=2)
        assert [m.body for m in paged] == ["a2", "a1", "a0"]

        async def newest() -> Any:
            listed = await list_messages(
                sim.client, to="+15551230020", from_=None, date_sent_after=None, limit=1
            )
            return listed[0]

        await _until(lambda: _is_delivered(newest()))
        settled = await newest()
        assert settled.status == "delivered"
        assert settled.date_sent is not None


async def test_status_advances_without_any_callback() -> None:
    async with started(**FAST) as sim:
        result = await sim.send("+15551230022")
        assert result.status == "queued"
        await _until(lambda: _is_delivered(sim.client.messages(result.sid).fetch_async()))
        fetched = await sim.client.messages(result.sid).fetch_async()
        assert fetched.status == "delivered"
        assert fetched.date_sent is not None


# --- status callbacks --------------------------------------------------------------------


def _assert_signed(receiver: Receiver, token: str) -> None:
    validator = RequestValidator(token)
    for url, params, signature in receiver.calls:
        assert signature
        assert validator.validate(url, params, signature), (url, params)


async def test_sms_callbacks_are_signed_and_ordered(receiver: Receiver) -> None:
    async with started(**FAST) as sim:
        result = await sim.send("+15551230030", status_callback=receiver.url)
        await receiver.wait_for(2)
        await _until(_all_posted(sim, result.sid))  # nothing more (no "read" for an SMS)
        assert receiver.statuses() == ["sent", "delivered"]
        _assert_signed(receiver, sim.state.settings.auth_token)
        params = receiver.calls[-1][1]
        assert params["MessageSid"] == params["SmsSid"] == result.sid
        assert params["SmsStatus"] == "delivered"
        assert params["AccountSid"] == sim.state.settings.account_sid
        assert (params["From"], params["To"]) == (FROM, "+15551230030")
        assert params["ApiVersion"] == "2010-04-01"
        assert "ErrorCode" not in params
        assert "ChannelPrefix" not in params


async def test_forged_signature_does_not_validate(receiver: Receiver) -> None:
    async with started(**FAST) as sim:
        await sim.send("+15551230031", status_callback=receiver.url)
        await receiver.wait_for(1)
        url, params, signature = receiver.calls[0]
        assert not RequestValidator("another-token").validate(url, params, signature)
        tampered = {**params, "MessageStatus": "read"}
        validator = RequestValidator(sim.state.settings.auth_token)
        assert not validator.validate(url, tampered, signature)


async def test_whatsapp_gets_read_callback(receiver: Receiver) -> None:
    async with started(**FAST) as sim:
        await sim.send("whatsapp:+15551230032", status_callback=receiver.url)
        await receiver.wait_for(3)
        assert receiver.statuses() == ["sent", "delivered", "read"]
        params = receiver.calls[0][1]
        assert params["ChannelPrefix"] == "whatsapp"
        assert params["ChannelToAddress"] == "+15551230032"
        assert params["To"] == "whatsapp:+15551230032"
        _assert_signed(receiver, sim.state.settings.auth_token)


async def test_whatsapp_63003_arrives_as_failed_callback(receiver: Receiver) -> None:
    async with started(per_number={"+15551230033": "63003"}, **FAST) as sim:
        result = await sim.send("whatsapp:+15551230033", status_callback=receiver.url)
        assert result.accepted
        await receiver.wait_for(1)
        await _until(_all_posted(sim, result.sid))
        assert receiver.statuses() == ["failed"]
        params = receiver.calls[0][1]
        assert params["ErrorCode"] == "63003"
        assert params["ErrorMessage"]
        listed = await list_messages(
            sim.client, to="whatsapp:+15551230033", from_=None, date_sent_after=None, limit=5
        )
        assert (listed[0].status, listed[0].error_code) == ("failed", 63003)


async def test_whatsapp_error_immediate_mode() -> None:
    async with started(
        whatsapp_error_mode="immediate", per_number={"+15551230034": "63024"}
    ) as sim:
        result = await sim.send("whatsapp:+15551230034")
        assert (result.http_status, result.error_code) == (400, 63024)
        # The same number is reachable by SMS: WhatsApp errors concern WhatsApp only.
        sms = await sim.send("+15551230034")
        assert (sms.http_status, sms.error_code) == (201, None)


async def test_undelivered_and_failed_behaviours(receiver: Receiver) -> None:
    per_number = {"+15551230035": "undelivered", "+15551230036": "failed"}
    async with started(per_number=per_number, **FAST) as sim:
        undelivered = await sim.send("+15551230035", status_callback=receiver.url)
        failed = await sim.send("+15551230036", status_callback=receiver.url)
        await receiver.wait_for(3)
        assert receiver.statuses(undelivered.sid) == ["sent", "undelivered"]
        assert receiver.statuses(failed.sid) == ["failed"]
        codes = {p["MessageStatus"]: p.get("ErrorCode") for _u, p, _s in receiver.calls}
        assert codes == {"sent": None, "undelivered": "30003", "failed": "30008"}


async def test_out_of_order_callbacks(receiver: Receiver) -> None:
    async with started(callback_out_of_order_rate=1.0, **FAST) as sim:
        await sim.send("+15551230037", status_callback=receiver.url)
        await receiver.wait_for(2)
        assert receiver.statuses() == ["delivered", "sent"]
        listed = await list_messages(
            sim.client, to="+15551230037", from_=None, date_sent_after=None, limit=1
        )
        assert listed[0].status == "delivered"


async def test_duplicate_callbacks(receiver: Receiver) -> None:
    async with started(callback_duplicate_rate=1.0, **FAST) as sim:
        result = await sim.send("+15551230038", status_callback=receiver.url)
        await receiver.wait_for(3)
        await _until(_all_posted(sim, result.sid))
        statuses = receiver.statuses()
        assert len(statuses) == 3
        assert sorted(set(statuses)) == ["delivered", "sent"]
        assert max(statuses.count("sent"), statuses.count("delivered")) == 2


async def test_failed_callback_posts_are_retried(receiver: Receiver) -> None:
    receiver.fail_first = 2
    async with started(callback_retry_delay_ms=20.0, **FAST) as sim:
        await sim.send("+15551230039", status_callback=receiver.url)
        await receiver.wait_for(2)
        assert sorted(receiver.statuses()) == ["delivered", "sent"]
        await _until(lambda: sim.state.stats.callbacks_posted == 2)
        assert sim.state.stats.callbacks_failed_attempts == 2


async def test_callbacks_to_a_dead_daemon_are_dropped() -> None:
    dead = f"http://127.0.0.1:{_free_port()}/status"
    async with started(callback_retry_delay_ms=10.0, **FAST) as sim:
        await sim.send("+15551230040", status_callback=dead)
        await _until(lambda: sim.state.stats.callbacks_dropped == 2)
        assert sim.state.stats.callbacks_failed_attempts == 6
        assert sim.state.stats.callbacks_posted == 0


async def test_callbacks_paused_are_lost_but_status_advances(receiver: Receiver) -> None:
    async with started(**FAST) as sim:
        status, settings = await sim.control("POST", "/_sim/config", {"callbacks_paused": True})
        assert status == 200
        assert settings["callbacks_paused"] is True
        result = await sim.send("+15551230041", status_callback=receiver.url)
        await _until(lambda: sim.state.stats.callbacks_lost_paused == 2)
        assert sim.state.dispatcher.pending == 0  # both planned callbacks were due and lost
        assert receiver.calls == []
        fetched = await sim.client.messages(result.sid).fetch_async()
        assert fetched.status == "delivered"
        await sim.control("POST", "/_sim/config", {"callbacks_paused": False})
        await sim.send("+15551230042", status_callback=receiver.url)
        await receiver.wait_for(2)
        assert receiver.statuses() == ["sent", "delivered"]


async def test_callbacks_disabled_sends_nothing(receiver: Receiver) -> None:
    async with started(callbacks_enabled=False, **FAST) as sim:
        result = await sim.send("+15551230043", status_callback=receiver.url)
        assert sim.state.dispatcher.pending == 0  # callbacks are planned at accept: none were
        # Past the time the last callback would have been due, still nothing came.
        await _until(lambda: _is_delivered(sim.client.messages(result.sid).fetch_async()))
        assert receiver.calls == []
        assert sim.state.dispatcher.pending == 0


# --- the /_sim record and controls ---------------------------------------------------------


async def test_sim_record_stats_config_and_reset() -> None:
    async with started(**FAST) as sim:
        await sim.send("+15551230050", "one")
        await sim.send("whatsapp:+15551230051", "two")
        await sim.send("+15005550001")
        status, rows = await sim.control("GET", "/_sim/messages")
        assert status == 200
        assert [r["body"] for r in rows] == ["one", "two"]
        _s, wa = await sim.control("GET", "/_sim/messages?channel=whatsapp")
        assert [r["to"] for r in wa] == ["whatsapp:+15551230051"]
        _s, by_to = await sim.control("GET", "/_sim/messages?to=%2B15551230051")
        assert [r["body"] for r in by_to] == ["two"]
        assert [step["status"] for step in wa[0]["timeline"]] == ["sent", "delivered", "read"]

        _s, stats = await sim.control("GET", "/_sim/stats")
        assert (stats["requests"], stats["accepted"], stats["stored"]) == (3, 2, 2)
        assert stats["rejected"] == {"21211": 1}
        assert stats["max_accepted_per_s"] >= 1

        status, cfg = await sim.control(
            "POST", "/_sim/config", {"per_number": {"+15551230052": "500", "+15551230053": "429"}}
        )
        assert status == 200
        _s, cfg = await sim.control("POST", "/_sim/config", {"per_number": {"+15551230053": None}})
        assert cfg["per_number"] == {"+15551230052": "500"}
        assert (await sim.send("+15551230052")).error_code == 20500
        status, err = await sim.control("POST", "/_sim/config", {"no_such_knob": 1})
        assert status == 400
        assert "no_such_knob" in err["error"]
        status, err = await sim.control("POST", "/_sim/config", {"per_number": {"+1": "bogus"}})
        assert status == 400

        _s, done = await sim.control("POST", "/_sim/reset")
        assert done == {"reset": True}
        assert sim.state.settings.per_number == {}
        assert len(sim.state.store) == 0
        _s, rows = await sim.control("GET", "/_sim/messages")
        assert rows == []
        _s, stats = await sim.control("GET", "/_sim/stats")
        assert (stats["requests"], stats["accepted"]) == (0, 0)


async def test_store_is_exposed_on_the_app() -> None:
    app = create_app(SimulatorSettings())
    assert app[STORE_KEY] is app[STATE_KEY].store


# --- client plumbing ---------------------------------------------------------------------


async def test_client_rewrites_twilio_urls_only() -> None:
    client = make_client("ACx", "t", "http://127.0.0.1:9/prefix/", 1.0)
    try:
        rewrite = client.http_client.rewrite
        assert rewrite("https://api.twilio.com/2010-04-01/A.json?x=1") == (
            "http://127.0.0.1:9/prefix/2010-04-01/A.json?x=1"
        )
        assert rewrite("https://messaging.us1.twilio.com/v1/S") == "http://127.0.0.1:9/prefix/v1/S"
        assert rewrite("https://example.com/x") == "https://example.com/x"
    finally:
        await close_client(client)
    real = make_client("ACx", "t", "https://api.twilio.com", 1.0)
    try:
        assert real.http_client.rewrite("https://api.twilio.com/x") == "https://api.twilio.com/x"
    finally:
        await close_client(real)


def test_make_client_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        make_client("ACx", "t", "https://api.twilio.com", 1.0)


async def test_exit_stops_every_simulator_task() -> None:
    # The outer timeout is a bound, not a measurement: an exit that waited for the hanging
    # request would take its 600 s (the exit time is measured by tests/bench/bench_simulator.py).
    async with asyncio.timeout(30):
        async with started(per_number={"+15551230060": "timeout"}, timeout_s=5.0) as sim:
            pending = asyncio.create_task(sim.send("+15551230060"))
            await _until(lambda: sim.state.stats.requests == 1)  # hanging in the simulator
            assert any(t.get_name().startswith("sim-callback") for t in asyncio.all_tasks())
    assert not any(t.get_name().startswith("sim-callback") for t in asyncio.all_tasks())
    result = await asyncio.gather(pending, return_exceptions=True)
    assert isinstance(result[0], TwilioTimeout | SendResult)


async def test_many_concurrent_sends_through_the_real_client() -> None:
    """1000 sends from 50 concurrent workers are all accepted and stored once (the rate is
    measured by tests/bench/bench_simulator.py)."""
    async with started(rate_per_s=0.0) as sim:
        queue = list(range(1000))

        async def worker() -> int:
            ok = 0
            while queue:
                n = queue.pop()
                ok += (await sim.send(f"+1555130{n:04d}", "load")).accepted
            return ok

        accepted = sum(await asyncio.gather(*(worker() for _ in range(50))))
        assert accepted == 1000
        assert len(sim.state.store) == 1000
        assert sorted(m.to for m in sim.state.store.all()) == sorted(
            f"+1555130{n:04d}" for n in range(1000))
