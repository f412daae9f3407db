"""The admin UI's middlewares, for /admin paths only.

``admin_pages`` comes first of the checks (onboardd.web.front): every /admin response carries
the security headers, and every failure is shown as a page in words (never JSON, never a
traceback), the address budget's 429 included, which is refused after it. ``admin_guard``
comes after the bearer-token check: a session for every page but the login, and a CSRF check
on every state-changing request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

import asyncpg
from aiohttp import web

from onboardd.logging import get_logger
from onboardd.services.errors import ServiceError
from onboardd.web.admin import render, session
from onboardd.web.admin.assets import PREFIX as STATIC_PREFIX
from onboardd.web.errors import ApiError, api_error, unavailable
from onboardd.web.keys import request_id
from onboardd.web.middleware import encoding_problem, path_nul_problem, query_problem

log = get_logger("admin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ADMIN = "/admin"
OPEN_PATHS = frozenset({"/admin/login"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM = "application/x-www-form-urlencoded"

# No inline script, no eval; styles only from our files (htmx's indicator style is turned off
# in its config, and scripts set styles through the CSSOM, which CSP allows).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The login link carries the token: no page sends its address to another site. (Not
    # no-referrer: with it Chromium sends `Origin: null` on a plain form POST, which the
    # same-origin check must refuse.)
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

TITLES = {400: "That request cannot be used", 403: "Not allowed", 404: "Not found",
          405: "Not allowed", 409: "Not now", 413: "Too large", 415: "Wrong kind of file",
          422: "Please check the form", 429: "Too many requests", 503: "Not available just now"}
UNAVAILABLE_SENTENCE = ("The database is restarting or busy. Wait a few seconds, then reload the "
                        "page; if you were saving something, check whether it was saved before "
                        "you send it again.")


def _is_admin(path: str) -> bool:
    return path == ADMIN or path.startswith(ADMIN + "/")


@web.middleware
async def admin_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An /admin response with the security headers, whatever went wrong shown as a page;
    other paths go straight on."""
    if not _is_admin(request.path):
        return await handler(request)
    try:
        response = await _shown(request, handler)
    except web.HTTPRedirection as redirect:
        redirect.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def admin_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An /admin page but the login needs a session, a state-changing request a CSRF token
    too; other paths go straight on."""
    if not _is_admin(request.path):
        return await handler(request)
    return await _guarded(request, handler)


def _to_login(request: web.Request) -> web.StreamResponse:
    """To the login, coming back afterwards: to this page, or for htmx (whose own request may
    carry a search, a phone number among them) to the path of the page it was made from."""
    target = "/admin/login"
    if render.is_htmx(request):  # htmx follows this header with a full page load
        page = urlsplit(request.headers.get("HX-Current-URL", "")).path
        if page.startswith(ADMIN + "/") and not page.startswith("/admin/log"):
            target += "?next=" + quote(page, safe="")
        return web.Response(status=200, headers={"HX-Redirect": target})
    if request.method == "GET" and request.path not in (ADMIN, ADMIN + "/"):
        target += "?next=" + quote(request.path_qs, safe="")
    raise web.HTTPSeeOther(target)


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    if bad_query := query_problem(request):  # ?search=%ff: not text anyone typed
        raise bad_query
    if request.path.startswith(STATIC_PREFIX + "/") or request.path in OPEN_PATHS:
        return await handler(request)
    try:
        found = await session.load(request)
    except session.NoSalon as exc:
        return render.problem(request, 403, "Not your salon", str(exc))
    if found is None:
        return _to_login(request)
    request[session.ADMIN_SESSION] = found
    if request.method not in SAFE_METHODS:
        # A form's fields, strictly: aiohttp decodes %ff to U+FFFD (a raw byte that is not
        # UTF-8 fails the decode here: see _shown).
        if request.content_type == FORM and (bad_form := encoding_problem(
                (await request.read()).decode(), "form field")):
            raise bad_form
        problem = await _csrf_problem(request, found)
        if problem:
            log.warning("admin_csrf_refused", path=request.path, reason=problem)
            return render.problem(request, 403, "Not allowed", problem)
    if request.method == "GET" and "salon" in request.query:
        return _salon_chosen(request, found)
    return await handler(request)


def _salon_chosen(request: web.Request, found: session.AdminSession) -> web.StreamResponse:
    """`?salon=` on a page: remember it (as the switcher does) and show the same address
    without it, so every form and link of the page acts on that salon."""
    kept = [(key, value) for key, value in request.query.items() if key != "salon"]
    response = web.HTTPSeeOther(str(request.rel_url.with_query(kept)))
    session.choose_salon(response, request, found.salon.id)
    raise response


async def _csrf_problem(request: web.Request, found: session.AdminSession) -> str | None:
    """Why a state-changing request may not go ahead, or None."""
    if not session.same_origin(request):
        return "This request came from another site. Use the admin pages themselves."
    given = request.headers.get(session.CSRF_HEADER)
    if given is None and request.content_type == FORM:
        given = (await request.post()).get(session.CSRF_FIELD)  # type: ignore[assignment]
    if not session.csrf_matches(found, given if isinstance(given, str) else None):
        return ("This form has expired or did not come from this page. Reload the page and "
                "try again.")
    return None


def _refusal(request: web.Request, err: ApiError) -> web.Response:
    """An ApiError as a page, keeping its Retry-After; a request budget's 429 (onboardd.web.
    ratelimit, by address or subject) says in words how long to wait, where a service's own
    limit keeps its sentence."""
    sentence = err.message
    budget = isinstance(err.details, dict) and err.details.get("by") in ("address", "subject")
    if err.status == 429 and budget and (wait := err.headers.get("Retry-After")):
        sentence = (f"Too many requests in a short time. Wait {wait} second"
                    f"{'' if wait == '1' else 's'}, then try again.")
    response = render.problem(request, err.status, TITLES.get(err.status, "Not done"), sentence)
    if "Retry-After" in err.headers:
        response.headers["Retry-After"] = err.headers["Retry-After"]
    return response


async def _shown(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's response, or what went wrong as a page in words."""
    try:
        return await handler(request)
    except ServiceError as exc:
        return _refusal(request, api_error(exc))
    except ApiError as err:
        return _refusal(request, err)
    except web.HTTPNotFound:
        return render.problem(request, 404, "Not found",
                              "There is no such page. Use the menu to find your way.")
    except web.HTTPMethodNotAllowed:
        return render.problem(request, 405, "Not allowed",
                              "This address does not take that kind of request.")
    except web.HTTPRequestEntityTooLarge:
        return render.problem(request, 413, TITLES[413],
                              "What was sent is too large for this form. Shorten it and try "
                              "again.")
    except web.HTTPRedirection:
        raise
    except web.HTTPException as exc:
        return render.problem(request, exc.status, TITLES.get(exc.status, "Not done"),
                              "This request cannot be used. Reload the page and try again.")
    except (UnicodeDecodeError, web.RequestPayloadError) as exc:
        # A form whose fields are not UTF-8 (aiohttp decodes them strictly), or a body whose
        # Content-Encoding does not match its bytes: not a browser's form, not a server error.
        log.warning("admin_form_undecodable", method=request.method, path=request.path,
                    error=type(exc).__name__)
        return render.problem(request, 400, TITLES[400],
                              "This form could not be read: what was sent is not UTF-8 text "
                              "(or not compressed as it says). Reload the page and send the "
                              "form again.")
    except asyncpg.DataError:
        # A value the database cannot hold (a NUL character, a number out of range) that no
        # form check caught: the admin's input, not a server error; an id in the address with
        # a NUL is a page that does not exist.
        if path_nul_problem(request):
            return render.problem(request, 404, "Not found",
                                  "There is no such page: its address holds a character no "
                                  "id has. Use the menu to find your way.")
        return render.problem(request, 422, TITLES[422],
                              "A value in this form cannot be stored (an invisible control "
                              "character, or a number out of range). Check what you typed.")
    except Exception as exc:
        if busy := unavailable(exc):
            log.warning("admin_page_unavailable", method=request.method, path=request.path,
                        reason=busy.details, error=type(exc).__name__)
            return _refusal(request, ApiError(503, UNAVAILABLE_SENTENCE, headers=busy.headers))
        log.error("admin_page_failed", method=request.method, path=request.path, exc_info=exc)
        return render.problem(request, 500, "Something went wrong",
                              f"The page could not be shown. Try again; if it keeps failing, "
                              f"tell your operator the request id {request_id(request)}.")
