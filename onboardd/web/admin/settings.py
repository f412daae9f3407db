"""The admin UI's settings: the salon's sending hours (quiet hours), read and changed.

The same service as GET/PATCH /api/salons/{salonId}/settings: a window of the salon's local
time, or back to the installation's default. The page says in words what is in force, whether
messages go out right now and when that changes; the form takes two 24-hour times, and a
refusal is shown next to its field.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from onboardd.domain.sending_hours import clock_and_day, zone
from onboardd.services import sending_hours as service
from onboardd.services.errors import ServiceError
from onboardd.web.admin import render, session
from onboardd.web.keys import services

routes = web.RouteTableDef()

BASE: Final = "/admin/settings"
PAGE: Final = "admin/settings.html"
FIELDS: Final = ("start", "end")


def _when(at: datetime, timezone: str, now: datetime) -> str:
    """'21:00 today', '09:00 tomorrow' or '09:00 on 2026-12-05', salon time."""
    return " ".join(clock_and_day(at, zone(timezone), now))


def describe(found: service.SalonSettings, now: datetime) -> dict[str, str]:
    """The window in force in words: its hours, where they come from, and now."""
    window = found.sending_window
    hours = ("at any time of day" if window.all_day else
             f"between {window.start} and {window.end}"
             + (" (across midnight)" if window.crosses_midnight else ""))
    if found.sending_now:
        now_words = ("No quiet hours: invitations go out as soon as they are due."
                     if found.next_closing_at is None
                     else "Messages go out now; the window closes at "
                     f"{_when(found.next_closing_at, found.timezone, now)}.")
    else:
        assert found.next_opening_at is not None
        now_words = ("No messages go out now: they wait until "
                     f"{_when(found.next_opening_at, found.timezone, now)}.")
    source = ("These are this salon's own hours." if window.source == "salon" else
              "These are the default hours of this installation; set the salon's own below.")
    return {"hours": f"Messages go out {hours}, salon time ({found.timezone}).",
            "now": now_words, "source": source}


def _page(request: web.Request, found: service.SalonSettings, *, values: dict[str, str],
          errors: dict[str, str], saved: bool = False, status: int = 200) -> web.Response:
    svc = services(request)
    return render.page(request, PAGE, {
        "found": found, "words": describe(found, datetime.now(UTC)), "values": values,
        "errors": errors, "saved": saved,
        "default_hours": svc.cfg.campaigns.sending_hours().label()}, status=status)


def _current(found: service.SalonSettings) -> dict[str, str]:
    return {"start": found.sending_window.start, "end": found.sending_window.end}


@routes.get(BASE)
async def settings_page(request: web.Request) -> web.StreamResponse:
    """The salon's sending hours and the form to change them."""
    salon = session.current(request).salon.id
    found = await service.settings(services(request), salon)
    return _page(request, found, values=_current(found), errors={},
                 saved=request.query.get("saved") == "1")


@routes.post(BASE)
async def save_settings(request: web.Request) -> web.StreamResponse:
    """New sending hours, or (reset) the default; a refusal is the form again (422) with the
    sentence at its field."""
    me = session.current(request)
    form = await request.post()
    values = {name: str(form.get(name, "")).strip() for name in FIELDS}
    svc = services(request)
    try:
        if form.get("reset"):
            await service.set_window(svc, me.salon.id, None, None, me.who.sub)
        else:
            await service.set_window(svc, me.salon.id, values["start"], values["end"],
                                     me.who.sub)
    except ServiceError as exc:
        field = str(exc.details.get("field", "")).rpartition(".")[2]
        if exc.kind != "invalid" or field not in FIELDS:
            raise
        found = await service.settings(svc, me.salon.id)
        return _page(request, found, values=values,
                     errors={field: exc.message.partition(": ")[2]}, status=422)
    raise web.HTTPSeeOther(BASE + "?saved=1")
