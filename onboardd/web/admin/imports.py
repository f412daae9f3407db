"""The admin UI's imports page(s)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
