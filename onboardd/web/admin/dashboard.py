"""The admin UI's dashboard page(s)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
