"""The demo's steps in order: import, offer, launch campaign, first registrations, reminder,
second registrations. Each step really happens through the daemon (or, for users and bookings,
as the host app would), then backdate.py moves it to its place in the story."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any, Final

import asyncpg
import msgspec

from onboardd.auth import TokenCodec
from onboardd.demo import backdate, host, people, story
from onboardd.demo.api import DaemonApi, poll
from onboardd.demo.backdate import Window

FILE_NAME: Final = "customers-export.csv"
OFFER: Final[dict[str, Any]] = {
    "name": "Welcome: 20% off your first visit",
    "discountType": "percentage",
    "discountValue": 20,
    "maxDiscountInPaisa": 50_000,
    "minimumPurchaseInPaisa": 50_000,
    "validityDays": 30,
}
REMINDER_TEMPLATE: Final = (
    "Hi {{customer_name}}, {{salon_name}} here. Your welcome offer of {{offer_amount}} off is "
    "still waiting: book in the app with code {{offer_code}} within {{expiry_days}}. "
    "{{download_link}}"
)
CUSTOMER_TOKEN_TTL_S: Final = 600
MATCH_WAIT_S: Final = 60.0
DELIVERED: Final = ("delivered", "read")


class CampaignOutcome(msgspec.Struct, frozen=True):
    """A completed campaign as the stats and message APIs show it."""

    id: str
    name: str
    channel: str
    stats: dict[str, Any]
    messages: list[dict[str, Any]]

    def count(self, key: str, value: Any) -> int:
        """Messages whose field `key` equals `value`."""
        return sum(1 for m in self.messages if m.get(key) == value)


class Wave(msgspec.Struct, frozen=True):
    """Registrations after one campaign, and the bookings that used the offer."""

    registered: int
    redeemed: int
    booked_paisa: int
    discount_paisa: int


class Outcome(msgspec.Struct, frozen=True):
    """Everything the demo did, for the summary."""

    rows: int
    import_status: dict[str, Any]
    offer: dict[str, Any]
    campaigns: list[CampaignOutcome]
    invited: int
    waves: list[Wave]
    calendar: story.Calendar


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


class Demo:
    """One run of the story against one salon."""

    def __init__(self, api: DaemonApi, pool: asyncpg.Pool, codec: TokenCodec, salon: host.Salon,
                 seed: int, read_after_s: float) -> None:
        self.api = api
        self.pool = pool
        self.codec = codec
        self.salon = salon
        self.rng = random.Random(seed)
        self.seed = seed
        self.read_after_s = read_after_s

    async def _window(self, began: dt.datetime, story_at: dt.datetime) -> Window:
        return Window(began=began, ended=await host.clock(self.pool), story=story_at)

    async def run(self, customers: int, days: int) -> Outcome:
        """Every step, in story order; the outcome for the summary."""
        cal = story.calendar(await host.clock(self.pool), days, self.salon.timezone)
        rows = people.generate_customers(customers, self.seed, cal.start.date())
        began = await host.clock(self.pool)
        imported = await self.api.import_file(FILE_NAME, people.to_csv(rows))
        batch = imported["batchId"]
        await backdate.import_batch(self.pool, self.salon.id, batch,
                                    await self._window(began, cal.start))
        began = await host.clock(self.pool)
        offer = await self.api.create_offer(OFFER)
        await backdate.offer(self.pool, offer["id"], await self._window(began, cal.offer))
        launch = await self._campaign({
            "name": "Welcome offer launch", "channel": "both", "welcomeOfferId": offer["id"],
            "audience": {"status": ["pending"], "importBatchIds": [batch]}}, cal.launch)
        everyone = await self.api.customers()
        invited = [c for c in everyone if c["importBatchId"] == batch and c["invitedAt"]]
        first, second = story.registration_target(len(invited), self.rng)
        waves = [await self._wave(launch, first, offer, cal.reminder - story.QUIET_END, cal,
                                  everyone)]
        reminder = await self._campaign({
            "name": "Reminder: your welcome offer", "channel": "sms",
            "welcomeOfferId": offer["id"], "messageTemplate": REMINDER_TEMPLATE,
            "audience": {"status": ["invited", "expired"], "importBatchIds": [batch]}},
            cal.reminder)
        waves.append(await self._wave(reminder, second, offer, cal.end, cal,
                                      await self.api.customers()))
        return Outcome(rows=len(rows), import_status=imported, offer=offer,
                       campaigns=[launch, reminder], invited=len(invited), waves=waves,
                       calendar=cal)

    async def _campaign(self, body: dict[str, Any], story_at: dt.datetime) -> CampaignOutcome:
        """Send a campaign to completion, let its read receipts land, move it to story_at."""
        began = await host.clock(self.pool)
        stats = await self.api.run_campaign(body, timeout_s=180.0)
        cid = stats["campaignId"]
        await self._settle(cid)
        await backdate.campaign(self.pool, self.salon.id, cid,
                                await self._window(began, story_at))
        return CampaignOutcome(cid, body["name"], body["channel"], await self.api.stats(cid),
                               await self.api.messages(cid))

    async def _settle(self, campaign_id: str) -> None:
        """Wait for the simulator's last status callbacks (read receipts come after delivery),
        so nothing is written to the campaign after it has been moved into the past."""
        messages = await self.api.messages(campaign_id)
        stamps = [_when(m["queuedAt"]) for m in messages if m.get("queuedAt")]
        if stamps:
            due = max(stamps) + dt.timedelta(seconds=self.read_after_s + 1.0)
            wait = (due - await host.clock(self.pool)).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
        last = -1
        while (read := (await self.api.stats(campaign_id))["read"]) != last:
            last = read
            await asyncio.sleep(0.5)

    async def _wave(self, campaign: CampaignOutcome, count: int, offer: dict[str, Any],
                    until: dt.datetime, cal: story.Calendar,
                    customers: list[dict[str, Any]]) -> Wave:
        """`count` customers the campaign reached register; about half book with the offer."""
        everyone = {c["id"]: c for c in customers}
        reached = {m["customerId"]: _when(m["deliveredAt"]) for m in campaign.messages
                   if m["status"] in DELIVERED and m.get("deliveredAt")
                   and everyone.get(m["customerId"], {}).get("status") != "registered"}
        chosen = story.pick(list(reached), count, self.rng)
        times = story.registrations({c: reached[c] for c in chosen}, until, cal.zone, self.rng)
        phones = {cid: _app_phone(everyone[cid]["normalizedPhone"], i)
                  for i, cid in enumerate(chosen)}
        before = (await self.api.stats(campaign.id))["registrationsAttributed"]
        users = await host.register_users(
            self.pool, [(phones[c], everyone[c]["customerName"]) for c in chosen])
        user_of = {cid: users[phones[cid]] for cid in chosen}
        await self._matched(campaign.id, before + len(chosen))
        plan = story.bookings(times, story.booked_count(len(chosen)),
                              int(offer["validityDays"]), cal.end, cal.zone, self.rng)
        booking_ids = await host.book(self.pool, self.salon.id,
                                      [(user_of[b.customer_id], b.amount_in_paisa) for b in plan])
        discount = 0
        for b in plan:
            user = user_of[b.customer_id]
            token = self.codec.encode(user, "customer", [], CUSTOMER_TOKEN_TTL_S)
            result = await self.api.redeem(token, offer["id"], booking_ids[user],
                                           b.amount_in_paisa)
            discount += int(result["discount"])
        await backdate.registrations(self.pool, self.salon.id,
                                     {user_of[c]: times[c] for c in chosen})
        await backdate.bookings(self.pool, self.salon.id,
                                {booking_ids[user_of[b.customer_id]]: b.at for b in plan})
        return Wave(registered=len(chosen), redeemed=len(plan),
                    booked_paisa=sum(b.amount_in_paisa for b in plan), discount_paisa=discount)

    async def _matched(self, campaign_id: str, expected: int) -> None:
        """Wait until the offer-matcher has linked the new users (and granted their offer):
        the campaign's attributed registrations count them (a read that logs no PII)."""

        async def linked() -> bool | None:
            stats = await self.api.stats(campaign_id)
            return True if stats["registrationsAttributed"] >= expected else None

        await poll(linked, MATCH_WAIT_S, "the offer-matcher to link the new users")


def _app_phone(e164: str, index: int) -> str:
    """The number as the host app stored it at sign-up: with or without the country code."""
    return e164 if index % 2 == 0 else e164.removeprefix("+91")
