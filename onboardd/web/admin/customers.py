"""The admin UI's customers page(s)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
