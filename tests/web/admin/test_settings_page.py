"""The admin UI's settings page: the salon's sending hours in words, changed with a form (each
refusal at its field), and back to the default; the same service as the settings API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

from onboardd.domain.sending_hours import SendingHours
from onboardd.runtime import Services
from onboardd.services.sending_hours import Window, settings_view
from onboardd.web.admin.settings import describe
from tests.web.admin.conftest import Admin, soup, words

PAGE = "/admin/settings"


async def _stored(services: Services, salon: str) -> tuple[Any, Any]:
    """The salon's own window as stored (None, None: none of its own)."""
    row = await services.pool.fetchrow(
        "SELECT sending_window_start_s, sending_window_end_s FROM onboardd_salon_settings "
        "WHERE salon_id = $1", salon)
    return (None, None) if row is None else (row["sending_window_start_s"],
                                             row["sending_window_end_s"])


async def test_the_default_hours_in_words_and_the_link_in_the_menu(admin: Admin) -> None:
    page = await admin.page(PAGE)
    assert words(page.find("h1")) == "Settings"
    current = words(page.find(id="hours-now"))
    assert current == ("Messages go out at any time of day, salon time (Asia/Kolkata). No quiet "
                       "hours: invitations go out as soon as they are due.")
    assert "default hours of this installation" in words(page)
    assert page.find("input", attrs={"name": "reset"}) is None  # nothing of its own to undo
    link = page.find("nav").find("a", string="Settings")
    assert link["href"] == PAGE and link["aria-current"] == "page"
    for name in ("start", "end"):
        field = page.find(id=f"hours-{name}")
        assert page.find("label", attrs={"for": f"hours-{name}"}) is not None
        assert field["aria-describedby"] == "hours-hint" and not field.get("aria-invalid")


async def test_saving_hours_stores_them_and_says_so(admin: Admin, services: Services,
                                                   salon: str, client: TestClient[Any, Any],
                                                   admin_headers: dict[str, str]) -> None:
    saved = await admin.post(PAGE, {"csrf": admin.csrf, "start": "09:00", "end": "21:00"},
                             htmx=False)
    assert saved.status == 303 and saved.headers["Location"] == PAGE + "?saved=1"
    assert await _stored(services, salon) == (9 * 3600, 21 * 3600)
    page = await admin.page(PAGE + "?saved=1")
    assert words(page.find(role="status")) == (
        "Saved. Messages go out between 09:00 and 21:00, salon time (Asia/Kolkata).")
    assert "this salon's own hours" in words(page)
    assert page.find(id="hours-start")["value"] == "09:00"
    # The API reads the same.
    api = await client.get(f"/api/salons/{salon}/settings", headers=admin_headers)
    body = await api.json()
    assert body["sendingWindow"]["source"] == "salon" and body["sendingWindow"]["end"] == "21:00"

    # Across midnight, then back to the default.
    await admin.post(PAGE, {"csrf": admin.csrf, "start": "22:00", "end": "06:00"}, htmx=False)
    page = await admin.page(PAGE)
    assert words(page.find(id="hours-now")).startswith(
        "Messages go out between 22:00 and 06:00 (across midnight), salon time")
    reset = page.find("input", attrs={"name": "reset"}).find_parent("form")
    assert "Use the default hours (00:00-24:00)" in words(reset)
    back = await admin.post(PAGE, {"csrf": admin.csrf, "reset": "1"}, htmx=False)
    assert back.status == 303
    assert await _stored(services, salon) == (None, None)


async def test_a_wrong_time_is_refused_at_its_field_and_nothing_changes(
        admin: Admin, services: Services, salon: str) -> None:
    response = await admin.post(PAGE, {"csrf": admin.csrf, "start": "25:00", "end": "21:00"},
                                htmx=False)
    assert response.status == 422
    page = soup(await response.text())
    assert "not changed" in words(page.find(role="alert"))
    start = page.find(id="hours-start")
    assert start["value"] == "25:00" and start["aria-invalid"] == "true"
    assert start["aria-describedby"] == "hours-hint hours-start-error"
    assert words(page.find(id="hours-start-error")).startswith("'25:00' is not a time of day")
    assert page.find(id="hours-end").get("aria-invalid") is None
    same = await admin.post(PAGE, {"csrf": admin.csrf, "start": "09:00", "end": "09:00"},
                            htmx=False)
    assert same.status == 422
    assert "a window needs a length" in words(soup(await same.text()).find(id="hours-end-error"))
    assert await _stored(services, salon) == (None, None)


async def test_a_post_without_the_form_token_is_refused(admin: Admin, services: Services,
                                                       salon: str) -> None:
    response = await admin.post(PAGE, {"start": "09:00", "end": "21:00"}, htmx=False,
                                csrf=False)
    assert response.status == 403
    assert await _stored(services, salon) == (None, None)


def test_closed_hours_say_when_messages_go_out_again() -> None:
    """Pure wording: a shut window names its opening in salon time and day."""
    now = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)  # 23:30 in Kolkata
    found = settings_view(Window("s1", "Asia/Kolkata", SendingHours(9 * 3600, 21 * 3600),
                                 "salon"), now)
    said = describe(found, now)
    assert said["hours"] == "Messages go out between 09:00 and 21:00, salon time (Asia/Kolkata)."
    assert said["now"] == "No messages go out now: they wait until 09:00 tomorrow."
    morning = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)  # 11:30 in Kolkata
    open_now = describe(settings_view(Window("s1", "Asia/Kolkata",
                                             SendingHours(9 * 3600, 21 * 3600), "salon"),
                                      morning), morning)
    assert open_now["now"] == "Messages go out now; the window closes at 21:00 today."
