"""The admin UI under /admin/: server-rendered pages (Jinja2, htmx, Alpine's CSP build, uPlot),
signed in with the host app's admin JWT. See README, Admin UI."""

from __future__ import annotations

from aiohttp import web

from onboardd.web.admin import (
    campaigns,
    customers,
    dashboard,
    imports,
    login,
    offers,
    settings,
)
from onboardd.web.admin.assets import PREFIX, Assets
from onboardd.web.admin.guard import admin_guard, admin_pages
from onboardd.web.admin.render import setup_templates

__all__ = ["admin_guard", "admin_pages", "setup"]


def setup(app: web.Application) -> None:
    """Templates, static files and every page's routes."""
    assets = Assets()
    setup_templates(app, assets)
    app.router.add_get(PREFIX + "/{digest}/{path:.+}", assets.serve)
    for module in (login, dashboard, customers, imports, offers, campaigns, settings):
        app.add_routes(module.routes)
