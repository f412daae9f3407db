"""GET /analytics and /analytics/stages/{stage}: one scripted salon, every figure asserted.

The salon's history is driven through the API (campaigns created and started), the delivery
recorder (the dispatcher's outcomes and Twilio's callbacks, at chosen moments) and host-app
inserts (users, bookings, redemptions), with times chosen around the salon's midnight: the
timezone is Asia/Kolkata (UTC+05:30), so 05:00 IST is the previous day in UTC.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from onboardd.auth import TokenCodec
from onboardd.db import delivery as delivery_db
from onboardd.domain.status_events import SendOutcome, StatusCallback
from onboardd.runtime import Services
from tests.campaign_support import add_customers, add_offer, add_salon, phone
from tests.conftest import bearer
from tests.integration.test_status_recorder import new_sid

IST = ZoneInfo("Asia/Kolkata")
TODAY = datetime.now(IST).date()
D0 = TODAY - timedelta(days=20)
FROM, TO = D0, D0 + timedelta(days=9)
RANGE = f"from={FROM.isoformat()}&to={TO.isoformat()}"
N = 11


def ist(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment on day D0 + day at hh:mm in the salon's timezone."""
    return datetime.combine(D0 + timedelta(days=day), time(hour, minute), IST)


class Story:
    """What the scenario created: customer ids c0..c10, the campaign, the offer."""

    def __init__(self, customers: list[str], campaign: str, offer: str) -> None:
        self.c = customers
        self.campaign = campaign
        self.offer = offer


async def _user(services: Services, customer: str, at: datetime, n: int) -> str:
    """The host app registers the customer's user; the link the offer matcher makes."""
    user: str = await services.pool.fetchval(
        "INSERT INTO users (phone, name) VALUES ($1, 'App user') RETURNING id", phone(900 + n))
    await services.pool.execute(
        "UPDATE imported_customers SET linked_user_id = $2, registered_at = $3, "
        "status = 'registered' WHERE id = $1", customer, user, at)
    return user


async def _booking(services: Services, salon: str, user: str, at: datetime, paisa: int) -> None:
    await services.pool.execute(
        "INSERT INTO bookings (salon_id, user_id, amount_in_paisa, created_at) "
        "VALUES ($1, $2, $3, $4)", salon, user, paisa, at)


async def _redemption(services: Services, offer: str, user: str, customer: str,
                      redeemed_at: datetime | None, paisa: int) -> None:
    await services.pool.execute(
        """INSERT INTO welcome_offer_redemptions (welcome_offer_id, user_id,
               imported_customer_id, booking_id, discount_applied_in_paisa, expires_at,
               redeemed_at, status)
           VALUES ($1, $2, $3, CASE WHEN $5::timestamptz IS NULL THEN NULL
                                    ELSE gen_random_uuid()::text END,
                   $4, now() + interval '30 days', $5, $6)""",
        offer, user, customer, paisa, redeemed_at,
        "active" if redeemed_at is None else "redeemed")


async def _story(client: TestClient[Any, Any], services: Services, salon: str,
                 headers: dict[str, str]) -> Story:
    c = await add_customers(services.pool, services.cipher, salon, [phone(i) for i in range(N)])
    created = [ist(0, 10)] * 8 + [ist(1, 0, 30), ist(-1, 23, 30)]
    await services.pool.execute(
        "UPDATE imported_customers SET created_at = t.at FROM unnest($1::text[], "
        "$2::timestamptz[]) AS t(id, at) WHERE imported_customers.id = t.id", c[:10], created)
    offer = await add_offer(services.pool, salon)
    resp = await client.post(f"/api/salons/{salon}/invitation-campaigns", headers=headers,
                             json={"name": "Diwali", "welcomeOfferId": offer})
    assert resp.status == 201, await resp.text()
    campaign = (await resp.json())["id"]
    resp = await client.post(f"/api/salons/{salon}/invitation-campaigns/{campaign}/send",
                             headers=headers)
    assert resp.status == 202, await resp.text()
    await services.pool.execute(
        "UPDATE invitation_campaigns SET started_at = $2 WHERE id = $1", campaign, ist(1, 9))
    message = {r["imported_customer_id"]: r["id"] for r in await services.pool.fetch(
        "SELECT id, imported_customer_id FROM invitation_messages WHERE campaign_id = $1",
        campaign)}
    sids = [new_sid() for _ in range(7)]
    accepted = [ist(1, 10)] * 6 + [ist(1, 5)]  # c6 at 05:00 IST: the day before in UTC
    events: list[SendOutcome | StatusCallback] = [
        SendOutcome(message[c[i]], "accepted", accepted[i], "whatsapp", sid=sids[i],
                    sender="whatsapp:+14155238886") for i in range(7)]
    events += [
        SendOutcome(message[c[7]], "failed", ist(1, 10), "whatsapp", error_code=21211,
                    error_message="invalid number"),
        SendOutcome(message[c[8]], "skipped", ist(1, 10), "whatsapp",
                    skip_reason="invalid_number"),
        # c9 is accepted after the range: invited now, but not a windowed invite.
        SendOutcome(message[c[9]], "accepted", ist(12, 10), "whatsapp", sid=new_sid(),
                    sender="whatsapp:+14155238886"),
    ]
    await delivery_db.record_batch(services.pool, events, 3600.0)
    callbacks = [StatusCallback(sids[i], "delivered", ist(1, 10, 5)) for i in range(4)]
    callbacks += [StatusCallback(sids[4], "delivered", ist(2, 23, 30)),
                  StatusCallback(sids[0], "read", ist(1, 11)),
                  StatusCallback(sids[1], "read", ist(1, 11)),
                  StatusCallback(sids[5], "undelivered", ist(1, 10, 5), error_code=30003)]
    await delivery_db.record_batch(services.pool, list(callbacks), 3600.0)

    u0 = await _user(services, c[0], ist(1, 12), 0)
    u1 = await _user(services, c[1], ist(3, 5), 1)  # 05:00 IST: still D0+2 in UTC
    await _user(services, c[2], ist(12, 10), 2)  # after the window
    u5 = await _user(services, c[5], ist(2, 10), 5)  # registered although undelivered
    # c10 registers today, before its message went out: not registered "after the message".
    await _user(services, c[10], datetime.now(UTC), 10)
    await _booking(services, salon, u0, ist(1, 11), 50_000)  # before registering: not counted
    await _booking(services, salon, u0, ist(2, 10), 80_000)
    await _booking(services, salon, u0, ist(4, 10), 30_000)
    await _booking(services, salon, u1, ist(10, 10), 40_000)
    await _booking(services, salon, u5, ist(2, 12), 10_000)
    await _redemption(services, offer, u0, c[0], ist(2, 10), 10_000)
    await _redemption(services, offer, u1, c[1], None, 10_000)
    await _redemption(services, offer, u5, c[5], ist(11, 10), 5_000)
    return Story(c, campaign, offer)


def _expected_recent(created: list[datetime], start: date) -> int:
    midnight = datetime.combine(start, time(0), IST)
    return sum(1 for at in created if at >= midnight)


async def test_every_figure_of_the_scripted_salon(client: TestClient[Any, Any],
                                                  services: Services, salon: str,
                                                  admin_headers: dict[str, str]) -> None:
    story = await _story(client, services, salon, admin_headers)
    resp = await client.get(f"/api/salons/{salon}/analytics?{RANGE}", headers=admin_headers)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["range"] == {"from": FROM.isoformat(), "to": TO.isoformat(),
                             "timezone": "Asia/Kolkata"}

    created = [await services.pool.fetchval(
        "SELECT created_at FROM imported_customers WHERE id = $1", cid) for cid in story.c]
    week = _expected_recent(created, TODAY - timedelta(days=TODAY.weekday()))
    month = _expected_recent(created, TODAY.replace(day=1))
    assert body["kpis"] == {
        "totalImported": 11, "importedThisWeek": week, "importedThisMonth": month,
        "totalInvitesSent": 7, "invitesDelivered": 5, "deliveryRate": 0.7143,
        "registeredFromImport": 3, "conversionRate": 0.3,
        "offersRedeemed": 1, "redemptionRate": 0.6667, "totalDiscountGiven": 10_000,
        # (2 h + 43 h + 11 d + 1 d) / 4 = 3.47 d; (22 h + 7 d 5 h + 2 h) / 3 = 2.74 d
        "avgDaysToRegister": 3.5, "avgDaysToFirstBooking": 2.7,
    }
    assert body["funnel"] == [
        {"stage": "imported", "count": 11, "rateFromPrevious": 1.0, "rateFromImported": 1.0},
        {"stage": "invited", "count": 8, "rateFromPrevious": 0.7273,
         "rateFromImported": 0.7273},
        {"stage": "delivered", "count": 5, "rateFromPrevious": 0.625,
         "rateFromImported": 0.4545},
        {"stage": "registered", "count": 3, "rateFromPrevious": 0.6,
         "rateFromImported": 0.2727},
        {"stage": "firstBooking", "count": 2, "rateFromPrevious": 0.6667,
         "rateFromImported": 0.1818},
    ]

    series = body["series"]
    assert series["bucket"] == "day"
    points = series["points"]
    assert [p["date"] for p in points] == [(FROM + timedelta(days=i)).isoformat()
                                           for i in range(10)]
    zero = {"imported": 0, "invited": 0, "delivered": 0, "registered": 0, "firstBookings": 0,
            "redeemed": 0, "discountGivenInPaisa": 0}
    expected = {i: dict(zero) for i in range(10)}
    expected[0].update(imported=8)
    expected[1].update(imported=1, invited=7, delivered=4, registered=1)
    expected[2].update(delivered=1, registered=1, firstBookings=2, redeemed=1,
                       discountGivenInPaisa=10_000)
    expected[3].update(registered=1)
    assert [{k: v for k, v in p.items() if k != "date"} for p in points] == [
        expected[i] for i in range(10)]

    [row] = body["campaigns"]
    assert row.pop("startedAt") == ist(1, 9).astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert row == {
        "campaignId": story.campaign, "name": "Diwali", "channel": "whatsapp",
        "status": "sending", "target": 11, "sent": 8, "delivered": 5, "deliveryRate": 0.625,
        "read": 2, "failed": 2, "skipped": 1, "registered": 4, "conversionRate": 0.3636,
        "firstBookings": 3, "redeemed": 2, "discountGivenInPaisa": 15_000,
        "bookingValueInPaisa": 160_000,
    }

    [curve] = body["conversionCurve"]
    assert (curve["campaignId"], curve["delivered"]) == (story.campaign, 5)
    shares = [p["share"] for p in curve["points"]]
    assert [p["day"] for p in curve["points"]] == list(range(31))
    assert shares == [0.2] + [0.4] * 10 + [0.6] * 20
    assert [p["registered"] for p in curve["points"]][:12] == [1] + [2] * 10 + [3]


async def test_a_campaign_restricts_to_its_customers(client: TestClient[Any, Any],
                                                     services: Services, salon: str,
                                                     admin_headers: dict[str, str]) -> None:
    story = await _story(client, services, salon, admin_headers)
    resp = await client.get(f"/api/salons/{salon}/analytics?{RANGE}&campaignId={story.campaign}",
                            headers=admin_headers)
    body = await resp.json()
    assert [s["count"] for s in body["funnel"]] == [11, 8, 5, 3, 2]
    assert body["kpis"]["totalInvitesSent"] == 7
    # The campaign targeted every customer and is the salon's only one: its report (the
    # campaign variants of every read) equals the salon's, figure for figure.
    resp = await client.get(f"/api/salons/{salon}/analytics?{RANGE}", headers=admin_headers)
    whole = await resp.json()
    assert body.pop("campaignId") == story.campaign and whole.pop("campaignId") is None
    assert body == whole
    # A draft targets nobody yet: its scope is empty.
    resp = await client.post(f"/api/salons/{salon}/invitation-campaigns", headers=admin_headers,
                             json={"name": "Draft", "welcomeOfferId": story.offer})
    assert resp.status == 201, await resp.text()
    draft = (await resp.json())["id"]
    resp = await client.get(f"/api/salons/{salon}/analytics?{RANGE}&campaignId={draft}",
                            headers=admin_headers)
    body = await resp.json()
    assert [s["count"] for s in body["funnel"]] == [0, 0, 0, 0, 0]
    assert all(s["rateFromPrevious"] == 0 for s in body["funnel"][1:])
    assert body["kpis"]["totalInvitesSent"] == 0 and body["kpis"]["offersRedeemed"] == 0
    assert body["campaigns"] == [] and body["conversionCurve"] == []


async def test_a_long_range_is_reported_by_week(client: TestClient[Any, Any],
                                                services: Services, salon: str,
                                                admin_headers: dict[str, str]) -> None:
    story = await _story(client, services, salon, admin_headers)
    # A later campaign with no messages: the comparison lists it first.
    later: str = await services.pool.fetchval(
        """INSERT INTO invitation_campaigns (salon_id, name, channel, message_template, status,
               created_by, started_at, completed_at)
           VALUES ($1, 'Later', 'sms', 'Hi', 'completed', 'admin-1', $2, $2) RETURNING id""",
        salon, ist(5, 9))
    start = D0 - timedelta(days=200)
    resp = await client.get(f"/api/salons/{salon}/analytics?from={start}&to={TODAY}",
                            headers=admin_headers)
    body = await resp.json()
    assert body["series"]["bucket"] == "week"
    points = body["series"]["points"]
    dates = [date.fromisoformat(p["date"]) for p in points]
    assert dates[0] == start - timedelta(days=start.weekday())
    assert all(d.weekday() == 0 for d in dates)
    assert all(b - a == timedelta(days=7) for a, b in itertools.pairwise(dates))
    assert dates[-1] <= TODAY < dates[-1] + timedelta(days=7)
    # Every event of the salon is inside this range: the week points add up to the totals.
    assert sum(p["imported"] for p in points) == 11
    assert sum(p["invited"] for p in points) == 8
    assert sum(p["registered"] for p in points) == 5
    assert sum(p["redeemed"] for p in points) == 2
    assert sum(p["discountGivenInPaisa"] for p in points) == 15_000
    assert [r["campaignId"] for r in body["campaigns"]] == [later, story.campaign]
    assert [r["campaignId"] for r in body["conversionCurve"]] == [later, story.campaign]
    assert body["conversionCurve"][0]["delivered"] == 0


async def test_who_is_at_each_stage(client: TestClient[Any, Any], services: Services,
                                    salon: str, admin_headers: dict[str, str]) -> None:
    story = await _story(client, services, salon, admin_headers)
    c = story.c
    members = {
        "imported": {c[7], c[8], c[10]}, "invited": {c[5], c[6], c[9]},
        "delivered": {c[3], c[4]}, "registered": {c[2]}, "firstBooking": {c[0], c[1]},
    }
    before = await services.pool.fetchval(
        "SELECT count(*) FROM pii_access_log WHERE action = 'analytics_stage'")
    for stage, ids in members.items():
        resp = await client.get(f"/api/salons/{salon}/analytics/stages/{stage}",
                                headers=admin_headers)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert {x["id"] for x in body["customers"]} == ids, stage
        assert body["total"] == len(ids)
        assert all(x["phone"].startswith("+91******") for x in body["customers"])
        if stage in ("registered", "firstBooking"):
            assert body["audience"] is None
        else:
            assert body["audience"]["funnelStage"] == stage
    assert await services.pool.fetchval(
        "SELECT count(*) FROM pii_access_log WHERE action = 'analytics_stage'") == before + 5

    resp = await client.get(f"/api/salons/{salon}/analytics/stages/imported?limit=2&page=2",
                            headers=admin_headers)
    body = await resp.json()
    assert (len(body["customers"]), body["total"], body["totalPages"]) == (1, 3, 2)
    resp = await client.get(f"/api/salons/{salon}/analytics/stages/imported?limit=2&page=9",
                            headers=admin_headers)
    body = await resp.json()
    assert (body["customers"], body["total"]) == ([], 3)

    # The host app deletes c2's user: c2 is no longer a registered app user.
    await services.pool.execute(
        "DELETE FROM users WHERE id = (SELECT linked_user_id FROM imported_customers "
        "WHERE id = $1)", c[2])
    resp = await client.get(f"/api/salons/{salon}/analytics/stages/delivered",
                            headers=admin_headers)
    assert {x["id"] for x in (await resp.json())["customers"]} == {c[2], c[3], c[4]}


async def test_the_stage_audience_invites_them_again(client: TestClient[Any, Any],
                                                     services: Services, salon: str,
                                                     admin_headers: dict[str, str]) -> None:
    story = await _story(client, services, salon, admin_headers)
    c = story.c
    resp = await client.get(f"/api/salons/{salon}/analytics/stages/delivered?campaignId="
                            f"{story.campaign}", headers=admin_headers)
    audience = (await resp.json())["audience"]
    assert audience["campaignId"] == story.campaign
    base = f"/api/salons/{salon}/invitation-campaigns"
    resp = await client.post(base, headers=admin_headers,
                             json={"name": "Reminder", "welcomeOfferId": story.offer,
                                   "audience": audience})
    assert resp.status == 201, await resp.text()
    reminder = (await resp.json())["id"]
    resp = await client.get(f"{base}/{reminder}/audience", headers=admin_headers)
    body = await resp.json()
    assert body["count"] == 2
    assert {x["id"] for x in body["sample"]} == {c[3], c[4]}
    # Not invited in the last 30 days: nobody (their invitation was 19 days ago); 7: both.
    for days, count in ((30, 0), (7, 2)):
        resp = await client.put(f"{base}/{reminder}", headers=admin_headers, json={
            "name": "Reminder", "welcomeOfferId": story.offer,
            "audience": {**audience, "minDaysSinceInvite": days}})
        assert resp.status == 200, await resp.text()
        resp = await client.get(f"{base}/{reminder}/audience", headers=admin_headers)
        assert (await resp.json())["count"] == count
    # The send freezes exactly those customers.
    await client.post(f"{base}/{story.campaign}/pause", headers=admin_headers)
    resp = await client.post(f"{base}/{reminder}/send", headers=admin_headers)
    assert resp.status == 202, await resp.text()
    frozen = await services.pool.fetch(
        "SELECT imported_customer_id FROM invitation_messages WHERE campaign_id = $1", reminder)
    assert {r["imported_customer_id"] for r in frozen} == {c[3], c[4]}


@pytest.mark.parametrize(("audience", "field"), [
    ({"funnelStage": "registered"}, "audience.funnelStage"),
    ({"funnelStage": "nowhere"}, "audience.funnelStage"),
    ({"minDaysSinceInvite": -1}, "audience.minDaysSinceInvite"),
    ({"minDaysSinceInvite": 366}, "audience.minDaysSinceInvite"),
    ({"campaignId": "no-such-campaign"}, "audience.campaignId"),
])
async def test_a_wrong_stage_audience_names_the_field(client: TestClient[Any, Any], salon: str,
                                                      admin_headers: dict[str, str],
                                                      audience: dict[str, Any],
                                                      field: str) -> None:
    resp = await client.post(f"/api/salons/{salon}/invitation-campaigns", headers=admin_headers,
                             json={"name": "Bad", "messageTemplate": "Hi {{customer_name}}",
                                   "audience": audience})
    assert resp.status == 422
    assert (await resp.json())["error"]["details"]["field"] == field


@pytest.mark.parametrize(("query", "status", "field"), [
    ("from=2026-13-01", 422, "from"),
    ("from=yesterday", 422, "from"),
    ("to=2026-02-30", 422, "to"),
    ("from=2026-06-02&to=2026-06-01", 422, "from"),
    ("from=2023-01-01&to=2026-01-01", 422, "from"),
    ("campaignId=nope", 404, "campaignId"),
])
async def test_bad_parameters_are_named(client: TestClient[Any, Any], salon: str,
                                        admin_headers: dict[str, str], query: str, status: int,
                                        field: str) -> None:
    resp = await client.get(f"/api/salons/{salon}/analytics?{query}", headers=admin_headers)
    assert resp.status == status
    error = (await resp.json())["error"]
    assert error["details"]["field"] == field
    assert error["message"].startswith(f"{field}: ")


async def test_an_unknown_stage_is_404_naming_it(client: TestClient[Any, Any], salon: str,
                                                 admin_headers: dict[str, str]) -> None:
    resp = await client.get(f"/api/salons/{salon}/analytics/stages/clicked",
                            headers=admin_headers)
    assert resp.status == 404
    assert (await resp.json())["error"]["details"]["field"] == "stage"


async def test_another_salon_sees_nothing(client: TestClient[Any, Any], services: Services,
                                          salon: str, admin_headers: dict[str, str],
                                          tokens: TokenCodec) -> None:
    story = await _story(client, services, salon, admin_headers)
    other = await add_salon(services.pool)
    other_admin = bearer(tokens, "admin-2", "admin", [other])
    for path in ("analytics", "analytics/stages/imported"):
        resp = await client.get(f"/api/salons/{salon}/{path}", headers=other_admin)
        assert resp.status == 403
    resp = await client.get(f"/api/salons/{other}/analytics?campaignId={story.campaign}",
                            headers=other_admin)
    assert resp.status == 404
    resp = await client.get(f"/api/salons/{other}/analytics", headers=other_admin)
    body = await resp.json()
    assert body["kpis"]["totalImported"] == 0 and body["campaigns"] == []
