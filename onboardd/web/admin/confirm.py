"""The inline confirmation the admin UI puts before an action that cannot simply be taken back
(erasing a customer, deactivating an offer), shared by the pages that have one.

A row's actions cell holds the row's buttons (mode "buttons"). Its danger button asks with a
GET: htmx swaps the cell for the question (mode "confirm"), a plain browser gets the question
as a page of its own. Cancel gives the buttons back. The confirmed POST is aimed at the whole
row; when it answers with the question again (no `confirm=yes`, or a refusal in words), the
answer is retargeted into the row's actions cell. The markup is the macros of
`admin/confirm_macros.html`; each page's actions template says the question and its buttons.
"""

from __future__ import annotations

import re
from typing import Any, Final

from aiohttp import web

from onboardd.web.admin import render

# Element ids that can go into a CSS selector and a header as they are (they end in a UUID).
SAFE_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")


def cell(request: web.Request, template: str, ctx: dict[str, Any], *, cell_id: str,
         status: int = 200) -> web.Response:
    """The `actions` block of `template`. A POST was aimed at the row, so its answer is sent
    back into the row's actions cell (`#cell_id`) instead."""
    headers = None
    if request.method == "POST" and SAFE_ID.fullmatch(cell_id):
        headers = {"HX-Retarget": f"#{cell_id}", "HX-Reswap": "innerHTML"}
    return render.fragment(request, template, "actions", ctx, status=status, headers=headers)


def ask(request: web.Request, template: str, page: str, ctx: dict[str, Any], *, cell_id: str,
        mode: str = "confirm", message: str | None = None, status: int = 200
        ) -> web.Response:
    """The question (or, with mode "error", a sentence in its place): inline in the row's
    actions cell for htmx, as the page `page` for a plain browser."""
    standalone = not render.is_htmx(request)
    ctx = {**ctx, "mode": mode, "message": message, "focus": True, "standalone": standalone}
    if standalone:
        return render.page(request, page, ctx, status=status)
    return cell(request, template, ctx, cell_id=cell_id, status=status)


def buttons(request: web.Request, template: str, ctx: dict[str, Any], *, cell_id: str
            ) -> web.Response:
    """The row's buttons again (Cancel on the question), the first one focused."""
    ctx = {**ctx, "mode": "buttons", "message": None, "focus": True, "standalone": False}
    return cell(request, template, ctx, cell_id=cell_id)
