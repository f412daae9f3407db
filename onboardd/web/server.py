"""The HTTP server under the app: aiohttp's own, with onboardd's answer to a request it cannot
parse and its deadline for request heads.

aiohttp answers a request it cannot parse (a header or request line over its 8190-byte limit,
too many headers, bytes that are not HTTP) in ``RequestHandler.handle_error`` before any
middleware runs: a plain-text 400 echoing the first 100 bytes of the offending line, and an
error log line whose traceback carries the same bytes (a bearer token, a cookie). It offers no
hook for that response (aio-libs/aiohttp#3287), so the server's connections use a subclass of
its RequestHandler that overrides ``handle_error`` alone: the JSON error shape, one log line
naming the error class and never a byte of the request. Slow heads are dropped by aiohttp's
own keep-alive timer, which also runs from the moment a connection opens until a complete
head has arrived.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong

from onboardd.config import Http
from onboardd.logging import get_logger
from onboardd.web.errors import ApiError, error_response

log = get_logger("http")

# aiohttp's constant message for a head with more than max_headers (128) fields.
_TOO_MANY_HEADERS = "Too many headers received"


def unparseable_request_error(exc: BaseException | None, request_id: str) -> ApiError:
    """The caller's error for a request aiohttp refused before routing (never echoing it)."""
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
        return ApiError(431, "a request header (or the request line) is longer than "
                        f"{limit or 'the limit of'} bytes; send shorter headers and URLs",
                        details={"limitBytes": limit} if limit else {})
    if isinstance(exc, HttpProcessingError) and exc.message == _TOO_MANY_HEADERS:
        return ApiError(431, "the request has too many header fields; send fewer headers")
    if isinstance(exc, HttpProcessingError):
        return ApiError(400, "the request is not valid HTTP/1.1; check the request line and "
                        "headers", details={"reason": type(exc).__name__})
    return ApiError(500, f"internal error (request id {request_id})")


class FrontProtocol(web.RequestHandler):
    """aiohttp's connection handler whose error answer is the JSON error shape."""

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None, message: str | None = None
                     ) -> web.StreamResponse:
        """Answer in JSON and log one line without the request's bytes; close the connection."""
        if request.writer.output_size > 0:  # as aiohttp does: too late for another response
            raise ConnectionError("response already started; cannot send the error response")
        request_id = uuid.uuid4().hex
        error = unparseable_request_error(exc, request_id)
        if isinstance(exc, HttpProcessingError):
            # The exception's text holds the request's first bytes (tokens, cookies): only
            # its class is logged. Non-HTTP bytes first on a connection (TLS to this port,
            # scanners) are internet noise: debug, as aiohttp has it.
            noise = isinstance(exc, BadHttpMethod) and self._request_count == 1
            (log.debug if noise else log.warning)(
                "http_request_unparseable", status=error.status, request_id=request_id,
                error=type(exc).__name__, remote=request.remote)
        else:
            log.error("request_failed", status=error.status, request_id=request_id,
                      exc_info=exc)
        response = error_response(error, request_id)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's "Unhandled exception", but for the body it could not decode, which it
        meets again while discarding the rest after the app has answered 400 (see
        middleware): that is the caller's bytes, already logged once, not a traceback."""
        if isinstance(kw.get("exc_info"), web.RequestPayloadError):
            log.debug("request_body_discarded", error=type(kw["exc_info"]).__name__)
            return
        super().log_exception(*args, **kw)


class FrontServer(web.Server):
    """aiohttp's low-level server whose connections are FrontProtocol."""

    def __call__(self) -> web.RequestHandler:
        """A protocol for one new connection."""
        return FrontProtocol(self, loop=self._loop, **self._kwargs)


class FrontRunner(web.AppRunner):
    """aiohttp's AppRunner (startup, routing, middlewares, graceful shutdown) serving through
    FrontServer."""

    async def _make_server(self) -> web.Server:
        app_server = await super()._make_server()
        return FrontServer(app_server.request_handler,
                           request_factory=app_server.request_factory,
                           handler_cancellation=app_server.handler_cancellation,
                           **app_server._kwargs)


def front_runner(app: web.Application, http: Http, **kwargs: Any) -> web.AppRunner:
    """The runner `onboardd serve` uses: JSON errors for unparseable requests, slow heads
    dropped after [http] header_timeout_s (body deadlines are the request middleware's)."""
    return FrontRunner(app, access_log=None, keepalive_timeout=http.header_timeout_s,
                       **kwargs)
