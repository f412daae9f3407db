"""Admin API for a salon's own settings: its sending window (quiet hours).

GET   /api/salons/{salonId}/settings   the timezone, the window in force, open now, next change
PATCH /api/salons/{salonId}/settings   {"sendingWindow": {"start": "HH:MM", "end": "HH:MM"}}
                                       or {"sendingWindow": null} for the configured default
"""

from __future__ import annotations

from typing import Final

import msgspec
from aiohttp import web

from onboardd.services import sending_hours as service
from onboardd.web.body import read_json
from onboardd.web.contract import operation
from onboardd.web.errors import ApiError, json_response
from onboardd.web.keys import principal, salon_of, services

routes = web.RouteTableDef()

PATH: Final = "/api/salons/{salonId}/settings"


class WindowInput(msgspec.Struct, forbid_unknown_fields=True):
    """A daily window of the salon's local time: [start, end), "HH:MM" 24-hour."""

    start: str
    end: str


class SettingsPatch(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """What PATCH may change; a field left out is left as it is."""

    sending_window: WindowInput | msgspec.UnsetType | None = msgspec.UNSET


@routes.get(PATH)
@operation("The salon's settings: timezone, sending window, open now, next change",
           answers={200: service.SalonSettings})
async def get_settings(request: web.Request) -> web.StreamResponse:
    """The salon's settings."""
    return json_response(await service.settings(services(request), salon_of(request)))


@routes.patch(PATH)
@operation("Change the salon's sending window (null: back to the configured default)",
           body=SettingsPatch, answers={200: service.SalonSettings})
async def patch_settings(request: web.Request) -> web.StreamResponse:
    """Change the sending window (null: back to the configured default)."""
    body = await read_json(request, SettingsPatch)
    if body.sending_window is msgspec.UNSET:
        raise ApiError(422, "sendingWindow: nothing to change; send {\"sendingWindow\": "
                       "{\"start\": \"09:00\", \"end\": \"21:00\"}} or {\"sendingWindow\": null} "
                       "for the default", details={"field": "sendingWindow"})
    chosen = body.sending_window
    start, end = (None, None) if chosen is None else (chosen.start, chosen.end)
    return json_response(await service.set_window(services(request), salon_of(request), start,
                                                  end, principal(request).sub))
