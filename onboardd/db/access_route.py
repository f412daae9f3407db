"""The route of the request being served, for the PII access log.

The web front sets it as each request starts ('GET /api/salons/{salonId}/customers/imported',
the route's pattern, never the path with its ids); every pii_access_log row written while the
request runs records it. Outside a request (a command line tool) it is None.
"""

from __future__ import annotations

from contextvars import ContextVar

ACCESS_ROUTE: ContextVar[str | None] = ContextVar("onboardd_access_route", default=None)
