"""Twilio error codes the simulator produces, and Twilio's JSON error body."""

from __future__ import annotations

import msgspec
from aiohttp import web

# code -> (HTTP status for an API error, message)
ERRORS: dict[int, tuple[int, str]] = {
    20001: (400, "Invalid parameter"),
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21211: (400, "The 'To' number is not a valid phone number."),
    21408: (400, "Permission to send an SMS has not been enabled for the 'To' region."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (400, "The 'From' phone number provided is not a valid message-capable Twilio number."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21612: (400, "The 'To' phone number is not currently reachable via SMS."),
    21614: (400, "'To' number is not a valid mobile number"),
    21910: (400, "Invalid From and To pair. From and To should be of the same channel"),
    30003: (400, "Unreachable destination handset"),
    30008: (400, "Unknown error"),
    63003: (400, "Channel could not find To address"),
    63016: (400, "Failed to send freeform message because you are outside the allowed window."),
    63024: (400, "Invalid message recipient"),
}

# The magic To numbers of Twilio's test credentials.
MAGIC_TO: dict[str, int] = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}


def message_for(code: int) -> str:
    """Twilio's message text for an error code."""
    return ERRORS.get(code, (400, "Error"))[1]


def error_response(code: int, *, retry_after: int | None = None) -> web.Response:
    """A Twilio-shaped JSON error response for ``code``."""
    status, message = ERRORS[code]
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.Response(
        status=status,
        body=msgspec.json.encode(body),
        content_type="application/json",
        headers=headers,
    )
