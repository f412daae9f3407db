"""One JSON error shape everywhere: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any, Final

import msgspec
from aiohttp import web

from onboardd.db.pool import unreachable
from onboardd.db.retry import RETRYABLE
from onboardd.services.errors import Kind, ServiceError

_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    503: "unavailable",
}


class ErrorDetail(msgspec.Struct, frozen=True):
    """What went wrong: a stable code, a sentence naming the field and the fix, details."""

    code: str
    message: str
    details: dict[str, Any] | list[Any]


class ErrorBody(msgspec.Struct, frozen=True):
    """The one error shape of every refusal."""

    error: ErrorDetail


class ApiError(Exception):
    """An error meant for the caller: status, a stable code, a sentence, structured details."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 details: dict[str, Any] | list[Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _DEFAULT_CODES.get(status, "error")
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


# The one table from a service error's kind to an HTTP status.
STATUS_OF_KIND: Final[dict[Kind, int]] = {
    "invalid": 422,
    "not_found": 404,
    "conflict": 409,
    "rate_limited": 429,
    "unsupported": 415,
    "too_large": 413,
}


def api_error(exc: ServiceError) -> ApiError:
    """A service's domain error as the API answers it; a wait becomes Retry-After."""
    headers = ({"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None
               else None)
    return ApiError(STATUS_OF_KIND[exc.kind], exc.message, code=exc.code, details=exc.details,
                    headers=headers)


# How long a caller is asked to wait: a lock conflict clears at once, a restart takes seconds.
CONFLICT_RETRY_AFTER_S: Final = 1
UNREACHABLE_RETRY_AFTER_S: Final = 5


def unavailable(exc: BaseException) -> ApiError | None:
    """A 503 with Retry-After for a request the database could not serve right now, or None
    for any other failure (a server error). Two cases: the database is unreachable (down,
    restarting, out of connections: onboardd.db.pool.unreachable), or a deadlock or
    serialization failure outlasted its transaction's retries (onboardd.db.retry: rolled back,
    nothing changed)."""
    if isinstance(exc, RETRYABLE):
        return ApiError(503, "the database was busy with a conflicting change and nothing was "
                        f"changed; send the request again in {CONFLICT_RETRY_AFTER_S}s",
                        details={"reason": "conflict"},
                        headers={"Retry-After": str(CONFLICT_RETRY_AFTER_S)})
    if unreachable(exc):
        return ApiError(503, "the database is unreachable right now (restarting, or out of "
                        f"connections); retry in {UNREACHABLE_RETRY_AFTER_S}s (a change sent as "
                        "it went down may have been saved: read before sending it again)",
                        details={"reason": "database_unreachable"},
                        headers={"Retry-After": str(UNREACHABLE_RETRY_AFTER_S)})
    return None


def error_body(status: int, message: str, code: str | None = None,
               details: dict[str, Any] | list[Any] | None = None) -> bytes:
    """Encode the error shape."""
    return msgspec.json.encode(ErrorBody(ErrorDetail(
        code=code or _DEFAULT_CODES.get(status, "error"), message=message,
        details=details or {})))


def error_response(err: ApiError, request_id: str | None = None) -> web.Response:
    """An ApiError as an aiohttp response."""
    headers = dict(err.headers)
    if request_id:
        headers["X-Request-Id"] = request_id
    return web.Response(status=err.status, body=error_body(err.status, err.message, err.code,
                                                           err.details),
                        content_type="application/json", headers=headers)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    """Encode with msgspec (handles Structs, datetimes, UUIDs)."""
    return web.Response(status=status, body=msgspec.json.encode(data),
                        content_type="application/json", headers=headers)


def json_as(kind: type[Any], data: Any, status: int = 200,
            headers: dict[str, str] | None = None) -> web.Response:
    """Encode data as the documented answer type kind: a dict built elsewhere (shared with
    the admin pages) is checked against the published shape on the way out."""
    return json_response(msgspec.convert(data, kind, from_attributes=True), status, headers)


def field_error(field: str, message: str, status: int = 422) -> ApiError:
    """A validation error naming one field."""
    return ApiError(status, f"{field}: {message}", details={"field": field})
