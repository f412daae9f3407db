"""Request ids, access logs, JSON errors, the webhook latency metric and bearer-token auth for
every route.

Every log line of a request carries its ``request_id`` and, once the caller is authorised, its
``user_id`` and (on a salon route) ``salon_id``: they are bound as structlog context here, where
the request starts, so no handler passes them to a log call by hand.

Twilio's webhooks are the hot path (a campaign of 20k messages brings some 45k status callbacks
within minutes), so what every request goes through is kept lean: the request id, its log
context, the error shape and the body deadlines cost a few microseconds, the webhook latency is
timed by the same clock as the access line, and the body watcher starts only for a body that
has not fully arrived yet (a Twilio form is there with the head).
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Literal
from urllib.parse import unquote, unquote_to_bytes

import asyncpg
import structlog
from aiohttp import web

from onboardd.auth import AuthError, Principal
from onboardd.db.access_route import ACCESS_ROUTE
from onboardd.db.salons import salon_exists
from onboardd.domain.salons import salon_id_problem
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.services.errors import ServiceError
from onboardd.web.errors import ApiError, api_error, error_body, error_response, unavailable
from onboardd.web.keys import PRINCIPAL_KEY, REQUEST_ID_KEY, SALON_ID_KEY, SERVICES
from onboardd.web.slow_bodies import BodyTimeout, BodyWatch

log = get_logger("http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_SAFE_ID = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
WEBHOOKS_PREFIX = "/api/webhooks/"


def api_area(path: str) -> Literal["admin", "mobile", "webhook"] | None:
    """Which API a path belongs to: the admin API (/api/salons/...), the mobile API
    (/api/mobile/...) or Twilio's webhooks; None for anything else."""
    if path.startswith("/api/salons/") or path == "/api/salons":
        return "admin"
    if path.startswith("/api/mobile/"):
        return "mobile"
    if path.startswith(WEBHOOKS_PREFIX):
        return "webhook"
    return None
_UNLOGGED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes
_SHOWN_NAME_CHARS = 40


def _utf8(text: str) -> str | None:
    """Percent-decoded text as UTF-8, or None when its bytes are not UTF-8 (a raw byte the
    HTTP parser kept as a lone surrogate counts as not UTF-8 too)."""
    try:
        return unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
    except UnicodeError:
        return None


def encoding_problem(raw: str, what: str = "query parameter") -> ApiError | None:
    """A 400 naming the first parameter of a query string (or URL-encoded form) whose name or
    value is not UTF-8 once percent-decoded (``?search=%ff%fe``), or None. aiohttp would hand
    such a value on with U+FFFD in place of the bytes: a search or an id nobody sent."""
    if "%" not in raw and raw.isascii():
        return None
    for pair in raw.split("&"):
        raw_name, _, raw_value = pair.partition("=")
        name = _utf8(raw_name)
        if name is None:
            shown = f" ({raw_name[:_SHOWN_NAME_CHARS]})" if raw_name.isascii() else ""
            return ApiError(400, f"a {what}'s name{shown} is not UTF-8 text; percent-encode "
                            "names and values as UTF-8 (e.g. %C3%A9 for é)")
        if _utf8(raw_value) is None:
            shown = name[:_SHOWN_NAME_CHARS]
            return ApiError(400, f"{shown}: the value is not UTF-8 text; percent-encode it as "
                            "UTF-8 (e.g. %C3%A9 for é)", details={"field": shown})
    return None


def query_problem(request: web.BaseRequest) -> ApiError | None:
    """encoding_problem of the request's query string."""
    return encoding_problem(request.rel_url.raw_query_string)


def nul_problem(request: web.Request) -> ApiError | None:
    """A 422 naming the query parameter that holds a NUL (``%00``), which no search, id or
    date may hold (PostgreSQL text cannot), or None. (A NUL in a path id is not found: the
    handler's own not-found where it checks, else path_nul_problem.)"""
    if "%00" not in request.rel_url.raw_query_string:
        return None
    for name, value in request.query.items():
        if "\x00" in name or "\x00" in value:
            shown = name.replace("\x00", "")[:_SHOWN_NAME_CHARS]
            return ApiError(422, f"{shown}: must not contain NUL characters (%00); remove them",
                            details={"field": shown})
    return None


def path_nul_problem(request: web.Request) -> ApiError | None:
    """A 404 naming the path parameter that holds a NUL (``/campaigns/a%00b``), or None: no id
    has one (PostgreSQL text cannot), so there is nothing to find. For a handler that did not
    check its ids itself: the database refused the NUL (asyncpg.DataError)."""
    for name, value in request.match_info.items():
        if "\x00" in value:
            return ApiError(404, f"{name}: no such id (it holds a NUL character, %00, which no "
                            "id has); check the address", details={"parameter": name})
    return None


# A request id made here: this process's random prefix and a count, 32 hex digits in all,
# unique across instances and restarts without paying for 16 random bytes per request.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNT = itertools.count(1)


def _incoming_request_id(request: web.Request) -> str:
    raw = request.headers.get("X-Request-Id", "")
    if 0 < len(raw) <= 64 and set(raw) <= _SAFE_ID:
        return raw
    return f"{_ID_PREFIX}{next(_ID_COUNT):016x}"


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id, log one access line, time Twilio's webhooks, turn every failure into
    the JSON shape, and cut off a request body that stalls or takes too long ([http]
    body_*timeout_s: 408)."""
    rid = _incoming_request_id(request)
    request[REQUEST_ID_KEY] = rid
    # The log context of the request: its id, plus what authenticate binds once the caller is
    # authorised, so every line of the request (the access line too) carries them. aiohttp
    # runs each request in a task of its own, on a copy of the connection's context, so what
    # is bound here ends with the request: nothing of one request shows up in the lines of the
    # next on a kept-alive connection (tests/web/test_log_context.py). Cleared first: nothing
    # bound where the server started is copied into it.
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=rid)
    # The route (its pattern) any pii_access_log row written by this request records.
    resource = request.match_info.route.resource
    route = None if resource is None else resource.canonical
    ACCESS_ROUTE.set(None if route is None else f"{request.method} {route}")
    return await _served(request, handler, rid, route)


async def _served(request: web.Request, handler: Handler, rid: str, route: str | None
                  ) -> web.StreamResponse:
    """The response within the request's log context, its access line and webhook timing."""
    started = time.perf_counter()
    services = request.app[SERVICES]
    http = services.cfg.http
    body = request.content
    watch = None if body.is_eof() else BodyWatch(body, http.body_idle_timeout_s,
                                                 http.body_timeout_s)
    status = 500
    try:
        try:
            response = await _answer(request, handler, rid)
        except web.HTTPException as exc:  # a redirect, passed on
            status = exc.status
            raise
        finally:
            if watch is not None:
                await watch.stop()
        if watch is not None and watch.fired and not response.prepared:
            # Whatever the handler made of the cut-off body, the caller hears why.
            log.warning("request_body_timeout", method=request.method, path=request.path,
                        reason=watch.reason)
            response = error_response(ApiError(
                408, f"{watch.reason}; send the whole body without long pauses",
                details={"idleTimeoutS": http.body_idle_timeout_s,
                         "timeoutS": http.body_timeout_s}), rid)
            response.force_close()
        status = response.status
        return response
    finally:
        _answered(request, services, route, status, time.perf_counter() - started)


def _answered(request: web.Request, services: Services, route: str | None, status: int,
              seconds: float) -> None:
    """A request answered: a webhook's latency observed (refusals included), the access line.

    A webhook answered 2xx logs its access line at debug level only: the webhook latency
    histogram and the recorder's callbacks-by-status counter count those (tens of thousands a
    campaign); every refusal or failure is still an info line, next to the warning or error
    the handler logged."""
    path = request.path
    level = log.info
    if path.startswith(WEBHOOKS_PREFIX):
        # Labelled by the route a webhook matched (its pattern): unknown paths add no series.
        services.metrics.webhook_answered(route or "unmatched", seconds)
        if status < 300:
            level = log.debug
    if path not in _UNLOGGED_PATHS:
        level("http_request", method=request.method, path=path, status=status,
              ms=round(seconds * 1000, 1))


async def _answer(request: web.Request, handler: Handler, rid: str) -> web.StreamResponse:
    """The handler's response, or the JSON error shape for whatever it raised."""
    try:
        if request.path.startswith("/api/") and (
                problem := query_problem(request) or nul_problem(request)):
            raise problem
        response = await handler(request)
        response.headers["X-Request-Id"] = rid
        return response
    except ApiError as err:
        return error_response(err, rid)
    except ServiceError as exc:  # a service's domain error: its HTTP form is decided here only
        return error_response(api_error(exc), rid)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.reason if exc.text is None or exc.text.startswith(str(exc.status)) else (
            exc.text)
        details: dict[str, object] = {}
        if exc.status == 413:
            message, details = _too_large(request, exc.text or "")
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        headers["X-Request-Id"] = rid
        return web.Response(status=exc.status, body=error_body(exc.status, message,
                                                               details=details),
                            content_type="application/json", headers=headers)
    except asyncpg.DataError as exc:
        # Input the database cannot hold (a NUL character, a number out of range) that no
        # handler check caught: the caller's mistake, not a server error; an id in the path
        # with a NUL is one nobody has.
        log.warning("request_data_rejected", method=request.method, path=request.path,
                    error=exc.__class__.__name__)
        if not_found := path_nul_problem(request):
            return error_response(not_found, rid)
        return error_response(ApiError(
            422, "a value in this request cannot be stored (NUL characters or a number out "
            "of range); check the parameters and body"), rid)
    except BodyTimeout as exc:  # the caller's slow body (request_context adds the details)
        return error_response(ApiError(408, str(exc)), rid)
    except web.RequestPayloadError as exc:
        # A body aiohttp could not decode (Content-Encoding gzip/deflate/br that is not): the
        # caller's bytes, not a server error. The connection is closed after the answer.
        log.warning("request_body_unreadable", method=request.method, path=request.path,
                    error=type(exc.__cause__ or exc).__name__)
        response = error_response(ApiError(
            400, "body: could not be decoded (its Content-Encoding does not match the bytes); "
            "send the body again, compressed as its Content-Encoding says or not at all",
            details={"field": "body"}), rid)
        response.force_close()
        return response
    except Exception as exc:
        if busy := unavailable(exc):  # the database, not this request: 503, try again
            log.warning("request_unavailable", method=request.method, path=request.path,
                        reason=busy.details, error=type(exc).__name__)
            return error_response(busy, rid)
        log.error("request_failed", method=request.method, path=request.path, exc_info=exc)
        return error_response(ApiError(500, f"internal error (request id {rid})"), rid)


def _too_large(request: web.Request, text: str) -> tuple[str, dict[str, object]]:
    """The 413 aiohttp raises for a body over the app's limit (or a form of too many fields),
    naming the limit and what to do."""
    if "form fields" in text:  # aiohttp's client_max_fields (1000), for a form body
        return ("body: a form of more fields than this server reads; send only the form's own "
                "fields", {"field": "body"})
    limit = request.client_max_size
    return (f"body: larger than the {limit} bytes ({limit / (1024 * 1024):g} MB) a request "
            "body may have here; send a smaller body (customer files go to the import "
            "upload, which has its own limit)", {"field": "body", "limitBytes": limit})


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing bearer token: send Authorization: Bearer <JWT>",
                       details={"reason": "missing"}, headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


def _path_salon_id(request: web.Request) -> str | None:
    """The decoded {salonId} of an /api/salons/... request: the route parameter handlers read,
    or, when no route matched, the same segment decoded the same way (so the answer to a path
    no route serves is 403 as well, revealing nothing)."""
    routed = request.match_info.get("salonId")
    if routed is not None:
        return routed
    parts = request.rel_url.raw_path.split("/")
    return unquote(parts[3], errors="replace") if len(parts) > 3 else None


async def _authorize_salon(request: web.Request, who: Principal) -> None:
    """An admin token listing a salon that exists; its id is what handlers get."""
    salon = _path_salon_id(request)
    if who.role != "admin":
        raise ApiError(403, "this token does not grant access to this salon")
    if salon is None:
        return
    if problem := salon_id_problem(salon):
        raise ApiError(404, f"salon id {problem}", details={"parameter": "salonId"})
    if not who.manages(salon):
        raise ApiError(403, "this token does not grant access to this salon")
    if "salonId" not in request.match_info:
        return  # no route serves this path: the router's 404/405 follows, nothing is read
    if not await salon_exists(request.app[SERVICES].pool, salon):
        raise ApiError(404, f"salon {salon} does not exist: check the salon id (the token "
                       "names it, but no such salon is in the salons table)",
                       details={"salonId": salon})
    request[SALON_ID_KEY] = salon
    # Authorised: the rest of the request logs with its salon (see _request_log_context).
    structlog.contextvars.bind_contextvars(salon_id=salon)


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """/api/salons/{salonId}/... needs an admin token listing the salon, which must exist;
    /api/mobile/... a customer token. Webhooks, health and the UI's static files are not
    token-protected."""
    area = api_area(request.path)
    if area not in ("admin", "mobile"):
        return await handler(request)
    token = _bearer(request)
    try:
        who = request.app[SERVICES].tokens.decode(token)
    except AuthError as exc:
        raise ApiError(401, str(exc), details={"reason": exc.reason},
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    if area == "admin":
        await _authorize_salon(request, who)
    elif who.role != "customer":
        raise ApiError(403, "the mobile API needs a customer token")
    request[PRINCIPAL_KEY] = who
    structlog.contextvars.bind_contextvars(user_id=who.sub)
    return await handler(request)
