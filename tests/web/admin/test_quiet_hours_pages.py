"""Quiet hours in the admin UI: the builder says when sending would actually start, the live
page what waits for the sending window, and a campaign scheduled into a shut window says so."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from onboardd.services import sending_hours
from tests.campaign_support import add_customers, add_offer, phone
from tests.web.admin.conftest import Admin, words
from tests.web.admin.test_campaign_pages import NEW, form, panels

KOLKATA = ZoneInfo("Asia/Kolkata")


async def shut_now(services: Services, salon: str) -> str:
    """A window starting at the next full hour, salon time, for two hours; its start."""
    start = (datetime.now(KOLKATA).hour + 1) % 24
    await sending_hours.set_window(services, salon, f"{start:02d}:00",
                                   f"{(start + 2) % 24:02d}:00", "admin-1")
    return f"{start:02d}:00"


async def test_the_builder_says_when_sending_starts(admin: Admin, services: Services,
                                                   salon: str) -> None:
    open_page = await panels(admin)
    assert words(open_page.find(id="window-note")) == (
        "Inside the salon's sending window (00:00-24:00, Asia/Kolkata): sending starts at once.")
    start = await shut_now(services, salon)
    shut = await panels(admin)
    note = words(shut.find(id="window-note"))
    assert note.startswith(f"Sending starts at {start} (salon time, Asia/Kolkata) ")
    assert "its messages wait for the window" in note
    # A scheduled time inside the window: starts then.
    day = datetime.now(KOLKATA).date() + timedelta(days=2)
    inside = await panels(admin, schedule="later", scheduled_for=f"{day.isoformat()}T{start}")
    assert words(inside.find(id="window-note")).endswith("sending starts at the scheduled time.")


async def test_the_live_page_shows_what_waits_for_the_window(
        admin: Admin, services: Services, cipher: PiiCipher, salon: str) -> None:
    start = await shut_now(services, salon)
    offer = await add_offer(services.pool, salon)
    await add_customers(services.pool, cipher, salon, [phone(i) for i in range(4)])
    response = await admin.post(NEW, form(welcome_offer_id=offer, action="send"))
    assert response.status == 200, await response.text()
    page = await admin.page(response.headers["HX-Redirect"])
    note = words(page.find(id="window-note"))
    assert note.startswith("4 messages wait for the salon's sending window. Sending starts at "
                           f"{start} (salon time, Asia/Kolkata)")


async def test_a_campaign_scheduled_into_a_shut_window_says_so(
        admin: Admin, services: Services, cipher: PiiCipher, salon: str) -> None:
    await sending_hours.set_window(services, salon, "09:00", "21:00", "admin-1")
    offer = await add_offer(services.pool, salon)
    await add_customers(services.pool, cipher, salon, [phone(1)])
    day = datetime.now(KOLKATA).date() + timedelta(days=2)
    response = await admin.post(NEW, form(welcome_offer_id=offer, action="send",
                                          schedule="later",
                                          scheduled_for=f"{day.isoformat()}T22:30"))
    assert response.status == 200, await response.text()
    page = await admin.page(response.headers["HX-Redirect"])
    following = (day + timedelta(days=1)).isoformat()
    assert words(page.find(id="window-note")) == (
        "The scheduled time is outside the salon's sending window: the campaign is accepted and "
        "its messages wait. Sending starts at 09:00 (salon time, Asia/Kolkata) on "
        f"{following}: outside the sending window 09:00-21:00.")
