"""The front door: which checks a request goes through, decided once by its area.

Every request first passes ``middleware.request_context`` (request id, log context, access line,
error shape). After it, this one middleware routes the request:

- Twilio's webhooks (``/api/webhooks/...``, the hot path: a campaign of 20k messages brings
  some 45k status callbacks within minutes) are charged to their address's budget
  (``ratelimit.limit_by_address``) and go to their handler, which checks the signature. None
  of the other checks applies to them: they carry no token, no admin session, and their query
  (which the operator may have put in the callback URL, signed with it) is not checked.
- Everything else goes through the whole chain, in this order: the admin UI's pages
  (``admin.admin_pages``: for /admin paths only, security headers and every refusal after it
  shown as a page in words, the address budget's 429 included), the address budget (before any
  token is read, so a flood of bad tokens is refused by address), the bearer token
  (``middleware.authenticate``), the admin UI's session (``admin.admin_guard``), the token
  subject's budget (``ratelimit.limit_by_subject``) and the query parameters the operation
  takes (``contract.known_query_only``).

The checks stay aiohttp middlewares (each can be read and tested on its own); this module only
chains them, as aiohttp would, once per handler.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable
from typing import Protocol

from aiohttp import web

from onboardd.web import admin, contract, ratelimit
from onboardd.web.middleware import WEBHOOKS_PREFIX, Handler, authenticate


class Middleware(Protocol):
    """An aiohttp middleware: the request, and the handler it passes it on to."""

    def __call__(self, request: web.Request, handler: Handler
                 ) -> Awaitable[web.StreamResponse]: ...


# The checks of every request but a webhook, outermost first.
CHAIN: tuple[Middleware, ...] = (
    admin.admin_pages,
    ratelimit.limit_by_address,
    authenticate,
    admin.admin_guard,
    ratelimit.limit_by_subject,
    contract.known_query_only,
)


@functools.lru_cache(maxsize=1024)
def _chained(handler: Handler) -> Handler:
    """The handler behind every check of CHAIN (built once per handler, as aiohttp does)."""
    for check in reversed(CHAIN):
        handler = functools.partial(check, handler=handler)
    return handler


@web.middleware
async def by_area(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A webhook through its address budget only; any other request through CHAIN."""
    if request.path.startswith(WEBHOOKS_PREFIX):
        return await ratelimit.limit_by_address(request, handler)
    return await _chained(handler)(request)
