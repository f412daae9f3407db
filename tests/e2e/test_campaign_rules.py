"""Sending rules of a real `onboardd serve` process, observed at its Twilio: opt-outs are per
sender, the 24-hour resend window, a resend reuses the customer's offer code, a 429 pauses the
whole channel, and requests in flight stay within [twilio] max_in_flight.

The daemon talks to tests/e2e/fake_twilio.py as to real Twilio; state is seeded in its
database and campaigns are created and sent through its HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from onboardd.auth import TokenCodec
from onboardd.domain.codes import generate_offer_code
from onboardd.pii import PiiCipher
from tests.campaign_support import add_customers, add_offer, add_salon, phone, wait_for
from tests.conftest import JWT_SECRET, daemon_env
from tests.e2e.daemon import Daemon
from tests.e2e.fake_twilio import SMS_SENDER, WHATSAPP_SENDER, FakeTwilio, Refusal, fake_twilio
from tests.e2e.fake_twilio import twilio_env as fake_env

FAST = {"ONBOARDD_CAMPAIGNS_DISPATCH_POLL_S": "0.05", "ONBOARDD_CAMPAIGNS_DUE_POLL_S": "0.2"}


class Api:
    """The daemon's HTTP API as one salon's admin."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, salon: str) -> None:
        self.session, self.base_url, self.salon = session, base_url, salon
        token = TokenCodec("HS256", JWT_SECRET, JWT_SECRET).encode("admin-1", "admin",
                                                                  [salon], 3600)
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        url = f"{self.base_url}/api/salons/{self.salon}{path}"
        async with self.session.request(method, url, headers=self.headers, **kwargs) as resp:
            text = await resp.text()
            assert resp.status == expect, (method, path, resp.status, text)
            return await resp.json() if text else None

    async def send_campaign(self, offer: str, *, channel: str = "whatsapp",
                            audience: dict[str, Any] | None = None) -> str:
        body: dict[str, Any] = {"name": "Launch", "channel": channel, "welcomeOfferId": offer}
        if audience is not None:
            body["audience"] = audience
        made = await self.call("POST", "/invitation-campaigns", 201, json=body)
        await self.call("POST", f"/invitation-campaigns/{made['id']}/send", 202)
        return str(made["id"])


@contextlib.asynccontextmanager
async def serving(db_url: str, tmp_path: Path, fake: FakeTwilio, **extra: str
                  ) -> AsyncIterator[tuple[Daemon, aiohttp.ClientSession]]:
    """A daemon on the test database talking to the fake Twilio."""
    env = daemon_env(db_url, tmp_path / "state", **(FAST | fake_env(fake) | extra))
    daemon = Daemon(env, tmp_path)
    try:
        await asyncio.to_thread(daemon.wait_ready)
        async with aiohttp.ClientSession() as session:
            yield daemon, session
    finally:
        if daemon.proc.poll() is None:
            code = await asyncio.to_thread(daemon.stop)
            assert code == 0, daemon.log()


async def settled(pool: asyncpg.Pool, campaign: str) -> bool:
    left = await pool.fetchval(
        "SELECT count(*) FROM invitation_messages WHERE campaign_id = $1 "
        "AND status IN ('pending', 'sending')", campaign)
    return bool(left == 0)


async def messages(pool: asyncpg.Pool, cipher: PiiCipher, campaign: str
                   ) -> dict[str, asyncpg.Record]:
    rows = await pool.fetch(
        "SELECT m.status, m.skip_reason, m.attempts, m.next_attempt_at, c.normalized_phone_enc,"
        " c.offer_code FROM invitation_messages m JOIN imported_customers c "
        "ON c.id = m.imported_customer_id WHERE m.campaign_id = $1", campaign)
    return {cipher.decrypt(r["normalized_phone_enc"], "phone"): r for r in rows}


async def test_opt_outs_resend_window_and_offer_code_reuse(db_url: str, tmp_path: Path,
                                                           cipher: PiiCipher) -> None:
    """One WhatsApp campaign over customers in every situation the claim query decides."""
    plain, stop_sms, stop_wa, stop_any = phone(1), phone(2), phone(3), phone(4)
    invited_23h, invited_25h = phone(5), phone(6)
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        salon = await add_salon(pool, "Rules Salon")
        offer = await add_offer(pool, salon)
        ids = dict(zip([plain, stop_sms, stop_wa, stop_any, invited_23h, invited_25h],
                       await add_customers(pool, cipher, salon, [
                           plain, stop_sms, stop_wa, stop_any, invited_23h, invited_25h]),
                       strict=True))
        # Opt-outs are per sender: a STOP to the SMS sender does not stop WhatsApp.
        await pool.executemany(
            "INSERT INTO opt_outs (phone_hash, sender, source) VALUES ($1, $2, 'inbound_stop')",
            [(cipher.phone_hash(stop_sms), SMS_SENDER),
             (cipher.phone_hash(stop_wa), "whatsapp:" + WHATSAPP_SENDER),
             (cipher.phone_hash(stop_any), "*")])
        # Invited by an earlier campaign of the salon 23 h and 25 h ago (the earlier message
        # rows are gone, e.g. erased: last_invited_at alone must hold the window).
        earlier = await pool.fetchval(
            "INSERT INTO invitation_campaigns (salon_id, name, message_template, status, "
            "created_by) VALUES ($1, 'earlier', 't', 'completed', 'a') RETURNING id", salon)
        kept_code = generate_offer_code()
        await pool.execute(
            "UPDATE imported_customers SET status = 'invited', last_campaign_id = $2, "
            "invited_at = now() - interval '23 hours', "
            "last_invited_at = now() - interval '23 hours' WHERE id = $1", ids[invited_23h],
            earlier)
        await pool.execute(
            "UPDATE imported_customers SET status = 'invited', last_campaign_id = $2, "
            "invited_at = now() - interval '25 hours', offer_code = $3, download_token = $4, "
            "last_invited_at = now() - interval '25 hours' WHERE id = $1", ids[invited_25h],
            earlier, kept_code, "tok-" + "a" * 28)

        async with fake_twilio() as fake, serving(db_url, tmp_path, fake) as (daemon, session):
            api = Api(session, daemon.base_url, salon)
            campaign = await api.send_campaign(
                offer, audience={"status": ["pending", "invited"]})
            await wait_for(lambda: settled(pool, campaign))
            rows = await messages(pool, cipher, campaign)

        sent = {r["To"].removeprefix("whatsapp:") for r in fake.requests}
        assert sent == {plain, stop_sms, invited_25h}, sorted(sent)
        for number in (stop_wa, stop_any):
            assert (rows[number]["status"], rows[number]["skip_reason"]) == (
                "skipped", "opted_out"), number
        assert (rows[invited_23h]["status"], rows[invited_23h]["skip_reason"]) == (
            "skipped", "recently_invited")
        for number in (plain, stop_sms, invited_25h):
            assert rows[number]["status"] == "queued", number
        # The resend carries the code the customer already holds; nobody got a fresh one.
        (resend,) = fake.sent_to(invited_25h)
        assert kept_code in resend["Body"]
        assert rows[invited_25h]["offer_code"] == kept_code
        (first,) = fake.sent_to(plain)
        assert rows[plain]["offer_code"] in first["Body"]
    finally:
        await pool.close()


async def test_a_429_pauses_the_whole_channel(db_url: str, tmp_path: Path,
                                              cipher: PiiCipher) -> None:
    """After one SMS request is refused with 429 and Retry-After: 600, no other SMS request is
    made (every SMS message waits), while WhatsApp, another channel, goes on sending. One
    request in flight at a time, so no other SMS request can already be on its way."""
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        sms_salon, wa_salon = await add_salon(pool, "SMS Salon"), await add_salon(pool, "WA")
        sms_offer, wa_offer = await add_offer(pool, sms_salon), await add_offer(pool, wa_salon)
        sms_numbers = [phone(100 + i) for i in range(30)]
        wa_numbers = [phone(200 + i) for i in range(10)]
        await add_customers(pool, cipher, sms_salon, sms_numbers)
        await add_customers(pool, cipher, wa_salon, wa_numbers)

        def first_sms_refused(form: dict[str, str]) -> Refusal | None:
            is_sms = not form.get("To", "").startswith("whatsapp:")
            if is_sms and not fake.refused:
                return Refusal(retry_after_s=600)
            return None

        async with fake_twilio() as fake, serving(
                db_url, tmp_path, fake, ONBOARDD_CAMPAIGNS_CLAIM_BATCH="2",
                ONBOARDD_TWILIO_MAX_IN_FLIGHT="1") as (daemon, session):
            fake.refuse = first_sms_refused
            sms_campaign = await Api(session, daemon.base_url, sms_salon).send_campaign(
                sms_offer, channel="sms")

            async def refused() -> bool:
                return bool(fake.refused)

            await wait_for(refused)
            # Only now the other channel starts: it must finish while SMS stays paused.
            wa_campaign = await Api(session, daemon.base_url, wa_salon).send_campaign(wa_offer)
            await wait_for(lambda: settled(pool, wa_campaign))
            sms_rows = await messages(pool, cipher, sms_campaign)
            log = daemon.log()

        assert len(fake.on_channel("whatsapp")) == 10
        assert len(fake.on_channel("sms")) == 1, [f["To"] for f in fake.on_channel("sms")]
        # Every SMS message waits: handed back, or still held by the paused channel.
        assert {r["status"] for r in sms_rows.values()} <= {"pending", "sending"}
        # A 429 is not an attempt and not a failure.
        assert {r["attempts"] for r in sms_rows.values()} == {0}
        assert '"channel_rate_limited"' in log and '"pause_s": 600' in log
    finally:
        await pool.close()


async def test_requests_in_flight_never_exceed_max_in_flight(db_url: str, tmp_path: Path,
                                                             cipher: PiiCipher) -> None:
    """A slow Twilio (each request held 0.3 s) and a high rate: the fake counts the requests
    open at once; the daemon never has more than [twilio] max_in_flight of them."""
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        salon = await add_salon(pool, "Busy Salon")
        offer = await add_offer(pool, salon)
        numbers = [phone(300 + i) for i in range(24)]
        await add_customers(pool, cipher, salon, numbers)
        async with fake_twilio() as fake, serving(
                db_url, tmp_path, fake, ONBOARDD_TWILIO_MAX_IN_FLIGHT="3",
                ONBOARDD_TWILIO_WHATSAPP_RATE_PER_S="500") as (daemon, session):
            fake.delay_s = 0.3
            campaign = await Api(session, daemon.base_url, salon).send_campaign(offer)
            await wait_for(lambda: settled(pool, campaign), timeout_s=30)
        assert len(fake.requests) == 24
        # The bound is reached (the test can see concurrency) and never exceeded.
        assert fake.max_in_flight == 3
    finally:
        await pool.close()
