"""Claims of a welcome offer: the grant both claim paths share, and the claim by offer code.

A claim by code may take over only an imported record that nobody is linked to, and only when
the claimant holds no other record of that salon (linked to them, or carrying their number);
a record already linked to the claimant is theirs again (idempotent). Everything else, a wrong
code included, gets the same 404, so a valid code of someone else's record is no oracle. Every
code attempt is charged to the caller's user and client address before the code is looked at
(onboardd.domain.claim_throttle, counters in PostgreSQL) and refunded when the code is theirs.
"""

from __future__ import annotations

from typing import NamedTuple

import asyncpg
from aiohttp import web

from onboardd.config import Offers
from onboardd.db import offers as db
from onboardd.db import throttle as throttle_db
from onboardd.db.offers import ClaimTarget, OfferRow, RedemptionRow
from onboardd.domain import claim_throttle as throttle
from onboardd.domain.codes import code_readings
from onboardd.domain.offers import NOT_FOUND
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.web.errors import ApiError, field_error

log = get_logger("claims")


class Claimed(NamedTuple):
    """A claim's result: the grant, whether it is new, and the offer."""

    grant: RedemptionRow
    created: bool
    offer: OfferRow


def code_miss() -> ApiError:
    """The one answer for a code the caller may not claim, whatever the reason."""
    return ApiError(404, "offer code not found: check the code in the invitation",
                    code="offer_code_not_found", details={"field": "offerCode"})


async def grant_claim(conn: asyncpg.Connection, target: ClaimTarget, offer_id: str,
                      user_id: str, *, miss: ApiError) -> Claimed:
    """Link the locked record to the user and create (idempotently) their grant of the offer."""
    offer = await db.get_offer_any(conn, offer_id)
    if offer is None:
        raise ApiError(404, NOT_FOUND, code="offer_not_found")
    registered_at = await db.link_customer(conn, target.id, user_id)
    if registered_at is None:  # linked to someone else: never re-linked
        raise miss
    grant = await db.insert_grant(conn, offer, user_id, target.id, registered_at)
    created = grant is not None
    if grant is None:
        grant = await db.grant_for_user(conn, offer.id, user_id)
    assert grant is not None
    return Claimed(grant, created, offer)


def throttle_keys(request: web.Request, cfg: Offers, trust_forwarded: bool, user_id: str
                  ) -> dict[throttle_db.Key, throttle.Policy]:
    """The keys a code attempt is charged to (user, client address) with their budgets."""
    address = throttle.address_subject(request.remote, request.headers.get("X-Forwarded-For"),
                                       trust_forwarded)

    def policy(budget: int) -> throttle.Policy:
        return throttle.Policy(budget, cfg.claim_window_s, cfg.claim_lockout_s,
                               cfg.claim_lockout_max_s, cfg.claim_memory_s)

    return {(throttle.USER, throttle.user_subject(user_id)): policy(cfg.claim_misses_per_user),
            (throttle.ADDRESS, address): policy(cfg.claim_misses_per_ip)}


async def _charge(svc: Services, keys: dict[throttle_db.Key, throttle.Policy],
                  user_id: str) -> None:
    """Count the attempt, or refuse it with 429 and Retry-After."""
    verdict = await throttle_db.charge_attempt(svc.pool, keys)
    if verdict.wait_s is None:
        return
    seconds = throttle.retry_after(verdict.wait_s)
    if verdict.locked_now:
        log.warning("offer_code_lockout", user_id=user_id, seconds=seconds,
                    keys=sorted(kind for kind, _ in verdict.locked_now))
    raise ApiError(429, "too many offer code attempts: claims by code are locked for this "
                   f"account or network; retry in {seconds}s, or claim by offerId",
                   headers={"Retry-After": str(seconds)},
                   details={"field": "offerCode", "retryAfterSeconds": seconds})


async def _may_claim(conn: asyncpg.Connection, svc: Services, target: ClaimTarget,
                     user_id: str, own_number: str | None) -> bool:
    """The takeover rule: the claimant's own record, or an unlinked one of a salon where they
    hold nothing else."""
    if target.linked_user_id == user_id:
        return True
    if target.linked_user_id is not None or target.offer_id is None:
        return False
    own_hash = svc.cipher.phone_hash(own_number) if own_number else None
    return not await db.holds_other(conn, target, user_id, own_hash)


async def claim_by_code(request: web.Request, svc: Services, user_id: str, raw: str,
                        own_number: str | None) -> Claimed:
    """Throttled claim by offer code under the takeover rule."""
    codes = code_readings(raw)
    if not codes:
        raise field_error("offerCode", "is not an offer code: expected the code from the "
                          "invitation, such as WELCOME-A7K9M2XQ4R")
    keys = throttle_keys(request, svc.cfg.offers, svc.cfg.http.trust_forwarded, user_id)
    await _charge(svc, keys, user_id)
    theirs = False
    try:
        async with svc.pool.acquire() as conn, conn.transaction():
            target = await db.customer_by_code(conn, codes)
            if target is None or not await _may_claim(conn, svc, target, user_id, own_number):
                raise code_miss()
            theirs = True
            if target.offer_id is None:  # their own record, but the salon has no active offer
                raise ApiError(404, NOT_FOUND, code="offer_not_found")
            return await grant_claim(conn, target, target.offer_id, user_id, miss=code_miss())
    finally:
        if theirs:
            await throttle_db.refund_attempt(svc.pool, list(keys))
