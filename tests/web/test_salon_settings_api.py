"""Quiet hours over HTTP: the salon settings endpoint, /send's warnings, the stats' held count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from onboardd.auth import TokenCodec
from onboardd.demo.api import DaemonApi
from onboardd.domain.sending_hours import format_time
from onboardd.runtime import Services
from tests.campaign_support import add_customers, add_offer, add_salon, phone
from tests.conftest import AppFor, bearer, decode

Client = TestClient[Any, Any]
KOLKATA = ZoneInfo("Asia/Kolkata")


def settings_path(salon: str) -> str:
    return f"/api/salons/{salon}/settings"


async def body_of(resp: Any, status: int) -> Any:
    assert resp.status == status, await resp.text()
    return decode(await resp.read())


def shut_now() -> dict[str, str]:
    """A two-hour window starting an hour from now, salon time: shut at this moment."""
    local = datetime.now(KOLKATA)
    start = (local.hour + 1) % 24
    return {"start": f"{start:02d}:00", "end": f"{(start + 2) % 24:02d}:00"}


async def test_default_window_then_own_window_then_default_again(
        client: Client, services: Services, salon: str, admin_headers: dict[str, str]) -> None:
    got = await body_of(await client.get(settings_path(salon), headers=admin_headers), 200)
    assert got["salonId"] == salon and got["timezone"] == "Asia/Kolkata"
    assert got["timezoneKnown"] is True
    # The tests' configuration opens the default window all day.
    assert got["sendingWindow"] == {"start": "00:00", "end": "24:00", "crossesMidnight": False,
                                    "allDay": True, "source": "default"}
    assert (got["sendingNow"], got["nextOpeningAt"], got["nextClosingAt"]) == (True, None, None)

    changed = await body_of(await client.patch(
        settings_path(salon), headers=admin_headers,
        json={"sendingWindow": {"start": "20:00", "end": "08:00"}}), 200)
    assert changed["sendingWindow"] == {"start": "20:00", "end": "08:00",
                                        "crossesMidnight": True, "allDay": False,
                                        "source": "salon"}
    assert changed["updatedBy"] == "admin-1"
    hour = datetime.now(KOLKATA).hour
    assert changed["sendingNow"] is (hour >= 20 or hour < 8)
    assert (changed["nextOpeningAt"] is None) is changed["sendingNow"]
    row = await services.pool.fetchrow(
        "SELECT sending_window_start_s, sending_window_end_s FROM onboardd_salon_settings "
        "WHERE salon_id = $1", salon)
    assert tuple(row) == (20 * 3600, 8 * 3600)
    again = await body_of(await client.get(settings_path(salon), headers=admin_headers), 200)
    assert again["sendingWindow"] == changed["sendingWindow"]

    reset = await body_of(await client.patch(settings_path(salon), headers=admin_headers,
                                             json={"sendingWindow": None}), 200)
    assert reset["sendingWindow"]["source"] == "default"


async def test_the_configured_default_window(app_for: AppFor, salon: str,
                                             admin_headers: dict[str, str]) -> None:
    async with app_for(campaigns_sending_window_start="09:00",
                       campaigns_sending_window_end="21:00") as (other, _svc):
        got = await body_of(await other.get(settings_path(salon), headers=admin_headers), 200)
    assert got["sendingWindow"]["start"] == "09:00" and got["sendingWindow"]["end"] == "21:00"
    assert got["sendingWindow"]["source"] == "default"
    assert got["sendingNow"] is (9 <= datetime.now(KOLKATA).hour < 21)


@pytest.mark.parametrize(("payload", "field", "says"), [
    ({"sendingWindow": {"start": "9am", "end": "21:00"}}, "sendingWindow.start",
     "expected HH:MM"),
    ({"sendingWindow": {"start": "09:00", "end": "25:00"}}, "sendingWindow.end",
     "24:00 for midnight"),
    ({"sendingWindow": {"start": "09:00", "end": "09:00"}}, "sendingWindow.end",
     "start 00:00 and end 24:00"),
    ({"sendingWindow": {"start": "09:00"}}, "sendingWindow.end", "is required"),
    ({"sendingWindow": {"start": 9, "end": "21:00"}}, "sendingWindow.start", "str"),
    ({"sendingWindow": {"start": "09:00", "end": "21:00", "days": [1]}},
     "sendingWindow.days", "unknown field"),
    ({"quietHours": {"start": "09:00", "end": "21:00"}}, "quietHours", "unknown field"),
    ({}, "sendingWindow", "nothing to change"),
    ({"sendingWindow": "09:00-21:00"}, "sendingWindow", "object"),
])
async def test_bad_windows_are_422_naming_the_field_and_change_nothing(
        client: Client, services: Services, salon: str, admin_headers: dict[str, str],
        payload: dict[str, Any], field: str, says: str) -> None:
    resp = await client.patch(settings_path(salon), headers=admin_headers, json=payload)
    err = (await body_of(resp, 422))["error"]
    assert err["details"]["field"] == field, err
    assert err["message"].startswith(field + ": ") and says in err["message"], err
    assert await services.pool.fetchval("SELECT count(*) FROM onboardd_salon_settings") == 0


async def test_not_json_and_another_salon(client: Client, services: Services, salon: str,
                                          tokens: TokenCodec,
                                          admin_headers: dict[str, str]) -> None:
    plain = await client.patch(settings_path(salon), headers=admin_headers, data="09:00")
    assert plain.status == 415
    other = await add_salon(services.pool)
    theirs = bearer(tokens, "admin-2", "admin", [other])
    refused = await client.patch(settings_path(salon), headers=theirs,
                                 json={"sendingWindow": {"start": "01:00", "end": "02:00"}})
    assert refused.status == 403
    assert (await client.get(settings_path(salon), headers=theirs)).status == 403
    assert await services.pool.fetchval("SELECT count(*) FROM onboardd_salon_settings") == 0


async def _campaign(client: Client, services: Services, salon: str,
                    headers: dict[str, str], customers: int = 3) -> str:
    offer = await add_offer(services.pool, salon)
    await add_customers(services.pool, services.cipher, salon,
                        [phone(i) for i in range(customers)])
    made = await body_of(await client.post(
        f"/api/salons/{salon}/invitation-campaigns", headers=headers,
        json={"name": "Launch", "channel": "sms", "welcomeOfferId": offer}), 201)
    campaign_id: str = made["id"]
    return campaign_id


async def test_scheduling_into_a_shut_window_is_accepted_with_a_warning(
        client: Client, services: Services, salon: str,
        admin_headers: dict[str, str]) -> None:
    await body_of(await client.patch(settings_path(salon), headers=admin_headers,
                                     json={"sendingWindow": {"start": "09:00",
                                                             "end": "21:00"}}), 200)
    campaign = await _campaign(client, services, salon, admin_headers)
    # 22:30 salon time, at least a day ahead.
    day = datetime.now(KOLKATA).date() + timedelta(days=2)
    late = datetime(day.year, day.month, day.day, 22, 30, tzinfo=KOLKATA)
    sent = await body_of(await client.post(
        f"/api/salons/{salon}/invitation-campaigns/{campaign}/send", headers=admin_headers,
        json={"scheduledFor": late.isoformat()}), 202)
    assert sent["status"] == "scheduled" and sent["id"] == campaign
    (warning,) = sent["warnings"]
    following = (day + timedelta(days=1)).isoformat()
    assert warning == (
        "The scheduled time is outside the salon's sending window: the campaign is accepted "
        "and its messages wait. Sending starts at 09:00 (salon time, Asia/Kolkata) on "
        f"{following}: outside the sending window 09:00-21:00.")
    # Inside the window: no warning.
    noon = datetime(day.year, day.month, day.day, 12, 0, tzinfo=KOLKATA)
    fine = await body_of(await client.post(
        f"/api/salons/{salon}/invitation-campaigns/{campaign}/send", headers=admin_headers,
        json={"scheduledFor": noon.isoformat()}), 202)
    assert fine["warnings"] == []


async def test_sending_now_into_a_shut_window_holds_every_message(
        client: Client, services: Services, salon: str,
        admin_headers: dict[str, str]) -> None:
    window = shut_now()
    await body_of(await client.patch(settings_path(salon), headers=admin_headers,
                                     json={"sendingWindow": window}), 200)
    campaign = await _campaign(client, services, salon, admin_headers, customers=4)
    sent = await body_of(await client.post(
        f"/api/salons/{salon}/invitation-campaigns/{campaign}/send", headers=admin_headers),
        202)
    assert sent["status"] == "sending"
    (warning,) = sent["warnings"]
    assert warning.startswith("Now is outside the salon's sending window")
    assert f"Sending starts at {window['start']} (salon time, Asia/Kolkata)" in warning
    stats = await body_of(await client.get(
        f"/api/salons/{salon}/invitation-campaigns/{campaign}/stats", headers=admin_headers),
        200)
    assert stats["waitingForWindow"] == 4
    assert stats["estimatedCompletionAt"] is None
    shown = stats["sendingWindow"]
    # An end of 00:00 is midnight, shown as 24:00.
    end = "24:00" if window["end"] == "00:00" else window["end"]
    assert (shown["start"], shown["end"], shown["timezone"], shown["openNow"]) == (
        window["start"], end, "Asia/Kolkata", False)
    opens = datetime.fromisoformat(shown["nextOpeningAt"]).astimezone(KOLKATA)
    assert format_time(opens.hour * 3600 + opens.minute * 60) == window["start"]
    assert timedelta(0) < opens - datetime.now(UTC) <= timedelta(hours=1)


async def test_the_preview_says_when_a_send_now_would_start(
        client: Client, services: Services, salon: str, admin_headers: dict[str, str]) -> None:
    preview = f"/api/salons/{salon}/invitation-campaigns/preview"
    body = {"messageTemplate": "Hi {{customer_name}}", "channel": "sms"}
    fine = await body_of(await client.post(preview, headers=admin_headers, json=body), 200)
    assert fine["sendingWindowNote"] is None
    window = shut_now()
    await body_of(await client.patch(settings_path(salon), headers=admin_headers,
                                     json={"sendingWindow": window}), 200)
    held = await body_of(await client.post(preview, headers=admin_headers, json=body), 200)
    assert held["sendingWindowNote"].startswith(
        f"Sending starts at {window['start']} (salon time, Asia/Kolkata) ")


async def test_the_demo_opens_a_shut_window_of_its_salon(
        client: Client, salon: str, tokens: TokenCodec) -> None:
    token = tokens.encode("admin-1", "admin", [salon], 3600)
    async with aiohttp.ClientSession() as http:
        api = DaemonApi(http, str(client.make_url("/")), token, salon)
        assert await api.open_sending_window() is False  # open already: left alone
        await api.call("PATCH", api.salon_path("settings"), "shutting",
                       json={"sendingWindow": shut_now()})
        assert await api.open_sending_window() is True
        _, got = await api.call("GET", api.salon_path("settings"), "reading")
    assert got["sendingNow"] is True and got["sendingWindow"]["allDay"] is True


async def test_a_timezone_nobody_knows_is_read_as_india(
        client: Client, services: Services, salon: str, admin_headers: dict[str, str]) -> None:
    # The host app owns salons.timezone and may write anything there.
    await services.pool.execute("UPDATE salons SET timezone = 'Mars/Olympus' WHERE id = $1",
                                salon)
    window = shut_now()  # computed on India's clock
    got = await body_of(await client.patch(settings_path(salon), headers=admin_headers,
                                           json={"sendingWindow": window}), 200)
    assert (got["timezone"], got["timezoneKnown"], got["sendingNow"]) == (
        "Mars/Olympus", False, False)
