"""Signing in with the host app's admin JWT (pasted, or from the link `onboardd serve` prints),
signing out, and switching salon."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from aiohttp import web

from onboardd.logging import get_logger
from onboardd.web.admin import render, session

log = get_logger("admin")
routes = web.RouteTableDef()

HOME = "/admin/dashboard"


def _next_page(raw: str | None) -> str:
    """Where to go after signing in: only a page of this admin UI, never another site."""
    if not raw:
        return HOME
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin/"):
        return HOME
    if parts.path.startswith("/admin/log"):
        return HOME
    return raw


def _login_form(request: web.Request, problem: str | None = None, status: int = 200
                ) -> web.Response:
    if problem is None and request.query.get("problem") in session.PROBLEMS:
        problem, status = session.PROBLEMS[request.query["problem"]], 401
    return render.page(request, "admin/login.html",
                       {"problem": problem, "next": _next_page(request.query.get("next"))},
                       status=status)


def _start(request: web.Request, token: str, target: str) -> web.StreamResponse:
    """Sign in with a token already checked: the cookie, then on to the page."""
    who = session.admin_principal(request, token)
    response = web.HTTPSeeOther(target)
    session.start(request, response, token, who)
    log.info("admin_login", user_id=who.sub, salons=len(who.salons))
    raise response


def _from_link(request: web.Request, token: str) -> web.StreamResponse:
    """The printed link. Opened from another site it could sign someone into a salon they did
    not choose, so only a link typed, pasted or clicked in a terminal (Sec-Fetch-Site none)
    or on this site counts. A refusal goes to the plain login page with the reason, so the
    token leaves the address bar and the history either way."""
    target = _next_page(request.query.get("next"))
    try:
        if request.headers.get("Sec-Fetch-Site", "none") not in ("none", "same-origin"):
            raise session.LoginProblem("cross_site")
        return _start(request, token, target)
    except session.LoginProblem as exc:
        log.info("admin_login_refused", reason=exc.key, via="link")
        back = "/admin/login?" + urlencode({"problem": exc.key} | (
            {"next": target} if target != HOME else {}))
        raise web.HTTPSeeOther(back) from None


@routes.get("/admin/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    """The sign-in form; with ?token= (the printed link) it signs in and redirects at once, so
    the token leaves the address bar and the history."""
    token = request.query.get("token")
    if token:
        return _from_link(request, token)
    return _login_form(request)


@routes.post("/admin/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    """The pasted token."""
    if not session.same_origin(request):
        return _login_form(request, "This sign-in came from another site.", status=403)
    form = await request.post()
    token = form.get("token")
    if not isinstance(token, str) or not token.strip():
        return _login_form(request, "Paste the admin token into the box, then sign in.",
                           status=422)
    target = form.get("next")
    try:
        return _start(request, token, _next_page(target if isinstance(target, str) else None))
    except session.LoginProblem as exc:
        log.info("admin_login_refused", reason=exc.key, via="form")
        return _login_form(request, str(exc), status=401)


@routes.post("/admin/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    """End the session (the guard has already checked the CSRF token)."""
    response = web.HTTPSeeOther("/admin/login")
    session.end(response)
    raise response


@routes.post("/admin/salon")
async def switch_salon(request: web.Request) -> web.StreamResponse:
    """The salon switcher: remember the chosen salon, back to the dashboard."""
    form = await request.post()
    wanted = form.get("salon")
    mine = session.current(request)
    if not isinstance(wanted, str) or all(s.id != wanted for s in mine.salons):
        return render.problem(request, 403, "Not your salon",
                              "This sign-in does not manage that salon.")
    response = web.HTTPSeeOther(HOME)
    session.choose_salon(response, request, wanted)
    raise response


@routes.get("/admin")
@routes.get("/admin/")
async def home(_request: web.Request) -> web.StreamResponse:
    """The dashboard (the guard sends a visitor without a session to the login)."""
    raise web.HTTPSeeOther(HOME)
