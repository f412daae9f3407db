"""Rendering the admin UI: whole pages, htmx fragments (one block of a page's template, with
jinja2-fragments) and the pages that say, in words, what went wrong."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from jinja2_fragments import render_block

from onboardd.web.admin import formats
from onboardd.web.admin.assets import Assets
from onboardd.web.admin.session import ADMIN_SESSION, AdminSession
from onboardd.web.keys import request_id

ASSETS = web.AppKey("admin_assets", Assets)
# Pages show personal data: never kept by a shared cache or the browser's back-forward store.
NO_STORE = {"Cache-Control": "no-store"}


def setup_templates(app: web.Application, assets: Assets) -> None:
    """Jinja2 with autoescape on, the package's templates, and the helpers templates use."""
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.PackageLoader("onboardd.web", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["asset"] = assets.url
    env.filters.update(formats.FILTERS)
    app[ASSETS] = assets


def _context(request: web.Request, ctx: dict[str, Any]) -> dict[str, Any]:
    session: AdminSession | None = request.get(ADMIN_SESSION)
    return {"session": session, "request": request, "path": request.path,
            "request_id": request_id(request), **ctx}


def is_htmx(request: web.Request) -> bool:
    """A request htmx made to swap a fragment. Not its history restore (Back to an address it
    pushed, not in its cache), which replaces the whole body and so needs the whole page."""
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-History-Restore-Request") != "true")


def page(request: web.Request, template: str, ctx: dict[str, Any] | None = None, *,
         status: int = 200) -> web.Response:
    """A whole page."""
    response = aiohttp_jinja2.render_template(template, request, _context(request, ctx or {}),
                                              status=status)
    response.headers.update(NO_STORE)
    return response


def fragment(request: web.Request, template: str, block: str,
             ctx: dict[str, Any] | None = None, *, status: int = 200,
             headers: dict[str, str] | None = None) -> web.Response:
    """One block of a page's template, for htmx to swap in."""
    env = aiohttp_jinja2.get_env(request.app)
    html = render_block(env, template, block, **_context(request, ctx or {}))
    return web.Response(text=html, status=status, content_type="text/html",
                        headers={**NO_STORE, **(headers or {})})


def page_or_fragment(request: web.Request, template: str, block: str,
                     ctx: dict[str, Any] | None = None, *, status: int = 200) -> web.Response:
    """The block for htmx, the whole page for a browser loading the address."""
    if is_htmx(request) and request.headers.get("HX-Boosted") != "true":
        return fragment(request, template, block, ctx, status=status)
    return page(request, template, ctx, status=status)


def problem(request: web.Request, status: int, title: str, sentence: str) -> web.Response:
    """A page (or, for htmx, an alert fragment) that says what went wrong and what to do."""
    ctx = {"status": status, "title": title, "sentence": sentence}
    if is_htmx(request):  # into the page's alert region, whatever the request's target was
        return fragment(request, "admin/problem.html", "alert", ctx, status=status,
                        headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
    return page(request, "admin/problem.html", ctx, status=status)
