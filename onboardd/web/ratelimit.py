"""API rate limits (spec §9.2): budgets per client address and per token subject, by area.

Areas: ``admin`` (the admin API /api/salons/... and the admin UI /admin/...), ``mobile``
(/api/mobile/...) and ``webhook`` (Twilio's /api/webhooks/..., by address only: Twilio posts
from few addresses and signs every request). Every other path (health, readiness, metrics,
the admin UI's static files) is not limited.

Two middlewares: ``limit_by_address`` runs before authentication, so a flood of bad tokens is
refused by address before any token is read; ``limit_by_subject`` runs after it (and after the
admin UI's session), keyed by the token's ``sub``. The mobile check of a phone is also held to
``[ratelimit] check_per_min`` per subject over any minute (a brake on enumeration).

The counters are token buckets in memory, per instance (onboardd.domain.token_bucket): a
synchronous check with no database round trip on every request; N instances allow N x each
budget (README: Rate limits). A refusal is 429 with Retry-After and the one error shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from onboardd.config_sections import RateLimit
from onboardd.domain.claim_throttle import address_subject, user_subject
from onboardd.domain.sliding_window import SlidingWindow
from onboardd.domain.token_bucket import BucketTable, retry_after_header
from onboardd.logging import get_logger
from onboardd.web.admin.assets import PREFIX as ADMIN_STATIC_PREFIX
from onboardd.web.admin.session import ADMIN_SESSION
from onboardd.web.errors import ApiError
from onboardd.web.keys import PRINCIPAL_KEY, SERVICES
from onboardd.web.middleware import api_area

log = get_logger("http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CHECK_PATH: Final = "/api/mobile/check-imported-customer"
AREAS: Final = ("admin", "mobile", "webhook", "check")  # the metric's label values
# The areas with budgets per token subject (webhooks carry no token: by address only).
SUBJECT_AREAS: Final = frozenset({"admin", "mobile"})


def area_of(path: str) -> str | None:
    """The budget area of a request path (its API, or admin for the admin UI's pages); None
    when the path is not limited."""
    area = api_area(path)
    if area is None and (path == "/admin" or path.startswith("/admin/")) and not (
            path.startswith(ADMIN_STATIC_PREFIX + "/")):
        return "admin"
    return area


class Limits:
    """This instance's buckets: per address and per subject for each area, and the check's
    sliding minute. A rate of 0 leaves that budget out."""

    def __init__(self, cfg: RateLimit) -> None:
        self.cfg = cfg

        def table(rate: float, burst: int) -> BucketTable | None:
            return BucketTable(rate, burst, cfg.max_keys) if cfg.enabled and rate > 0 else None

        self.by_address: dict[str, BucketTable | None] = {
            "admin": table(cfg.admin_ip_per_s, cfg.admin_ip_burst),
            "mobile": table(cfg.mobile_ip_per_s, cfg.mobile_ip_burst),
            "webhook": table(cfg.webhook_ip_per_s, cfg.webhook_ip_burst),
        }
        self.by_subject: dict[str, BucketTable | None] = {
            "admin": table(cfg.admin_per_s, cfg.admin_burst),
            "mobile": table(cfg.mobile_per_s, cfg.mobile_burst),
        }
        self.checks = SlidingWindow(cfg.max_keys)


LIMITS = web.AppKey("rate_limits", Limits)


def setup(app: web.Application, cfg: RateLimit) -> None:
    """Give the app its buckets (one set per app: per instance)."""
    app[LIMITS] = Limits(cfg)


def _refused(request: web.Request, area: str, by: str, key_name: str, wait_s: float,
             what: str) -> ApiError:
    seconds = retry_after_header(wait_s)
    request.app[SERVICES].metrics.rate_limited(area)
    log.info("rate_limited", area=area, by=by, method=request.method, path=request.path,
             retry_after_s=seconds)
    return ApiError(429, f"too many {what}; retry in {seconds}s", code="rate_limited",
                    details={"area": area, "by": by, "limitKey": key_name,
                             "retryAfterSeconds": seconds},
                    headers={"Retry-After": str(seconds)})


def _budget_words(table: BucketTable) -> str:
    return f"{table.rate:g} a second with bursts of {table.burst}"


@web.middleware
async def limit_by_address(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Charge the request to its client address's budget for its area (before auth)."""
    area = area_of(request.path)
    if area is not None:
        table = request.app[LIMITS].by_address[area]
        if table is not None:
            trust = request.app[SERVICES].cfg.http.trust_forwarded
            address = address_subject(request.remote, request.headers.get("X-Forwarded-For"),
                                      trust)
            wait = table.take(address)
            if wait is not None:
                raise _refused(request, area, "address", f"[ratelimit] {area}_ip_per_s", wait,
                               f"{area} requests from this address (budget "
                               f"{_budget_words(table)})")
    return await handler(request)


def _subject(request: web.Request) -> str | None:
    """The authorised caller's token subject: the API's principal or the admin UI's session."""
    who = request.get(PRINCIPAL_KEY)
    if who is None:
        found = request.get(ADMIN_SESSION)
        who = None if found is None else found.who
    return None if who is None else user_subject(who.sub)


@web.middleware
async def limit_by_subject(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Charge the request to its token subject's budget for its area (after auth)."""
    area = area_of(request.path)
    if area not in SUBJECT_AREAS:  # a webhook, a probe, a static file: no token subject
        return await handler(request)
    subject = _subject(request)
    if subject is not None:
        limits = request.app[LIMITS]
        table = limits.by_subject.get(area)
        if table is not None and (wait := table.take(subject)) is not None:
            raise _refused(request, area, "subject", f"[ratelimit] {area}_per_s", wait,
                           f"{area} requests for this token (budget {_budget_words(table)})")
        per_min = limits.cfg.check_per_min
        if (request.path == CHECK_PATH and limits.cfg.enabled and per_min > 0
                and (wait := limits.checks.retry_after(subject, per_min)) is not None):
            raise _refused(request, "check", "subject", "[ratelimit] check_per_min", wait,
                           f"checks: at most {per_min} per minute")
    return await handler(request)
