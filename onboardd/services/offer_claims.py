"""Claims of a welcome offer: by offer id, or by the code the customer was sent.

A claim by code may take over only an imported record that nobody is linked to, and only when
the claimant holds no other record of that salon (linked to them, or carrying their number);
a record already linked to the claimant is theirs again (idempotent). Everything else, a wrong
code included, gets the same answer, so a valid code of someone else's record is no oracle.
Every code attempt is charged to the caller's user and client address before the code is
looked at (onboardd.domain.claim_throttle, counters in PostgreSQL) and refunded when the code
is theirs.
"""

from __future__ import annotations

import asyncpg
import msgspec
import structlog

from onboardd.db import offers as db
from onboardd.db import throttle as throttle_db
from onboardd.db.offers import ClaimTarget, RedemptionRow
from onboardd.domain import claim_throttle as throttle
from onboardd.domain.codes import code_readings
from onboardd.domain.matching import user_number
from onboardd.domain.offers import Offer
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.services.errors import ServiceError, invalid_field
from onboardd.services.offers import caller_phone, not_found

log = get_logger("claims")


class Claimed(msgspec.Struct, frozen=True):
    """A claim's result: the grant, whether it is new, and the offer."""

    grant: RedemptionRow
    created: bool
    offer: Offer


def code_miss() -> ServiceError:
    """The one answer for a code the caller may not claim, whatever the reason."""
    return ServiceError("not_found", "offer code not found: check the code in the invitation",
                        code="offer_code_not_found", details={"field": "offerCode"})


async def grant_claim(conn: asyncpg.Connection, target: ClaimTarget, offer_id: str,
                      user_id: str, *, miss: ServiceError) -> Claimed:
    """Link the locked record to the user and create (idempotently) their grant of the offer."""
    offer = await db.get_offer_any(conn, offer_id)
    if offer is None:
        raise not_found()
    registered_at = await db.link_customer(conn, target.id, user_id)
    if registered_at is None:  # linked to someone else: never re-linked
        raise miss
    grant = await db.insert_grant(conn, offer, user_id, target.id, registered_at)
    created = grant is not None
    if grant is None:
        grant = await db.grant_for_user(conn, offer.id, user_id)
    assert grant is not None
    return Claimed(grant, created, offer)


async def claim(services: Services, user_id: str, *, offer_id: str | None,
                offer_code: str | None, address: str) -> Claimed:
    """Create (idempotently) the caller's grant, by offer id or by the code they were sent;
    ``address`` is the client address subject a code attempt is also charged to."""
    own_number = user_number(await caller_phone(services, user_id),
                             services.cfg.offers.phone_region)
    with structlog.contextvars.bound_contextvars(user_id=user_id):
        if offer_code is not None:
            return await _claim_by_code(services, user_id, offer_code, own_number, address)
        assert offer_id is not None
        async with services.pool.acquire() as conn, conn.transaction():
            target = await _target_by_offer(conn, services, offer_id, user_id, own_number)
            return await grant_claim(conn, target, offer_id, user_id, miss=not_found())


async def _target_by_offer(conn: asyncpg.Connection, services: Services, offer_id: str,
                           user_id: str, own_number: str | None) -> ClaimTarget:
    offer = await db.get_offer_any(conn, offer_id)
    if offer is None or not offer.is_active:
        raise not_found()
    hashes = [services.cipher.phone_hash(own_number)] if own_number else []
    target = await db.customer_for_salon(conn, offer.salon_id, user_id, hashes)
    if target is None:  # not this salon's customer: same answer as an unknown offer
        raise not_found()
    held = await db.held_offers(conn, user_id, offer.salon_id)
    if offer.id not in held and offer.id != target.offer_id:
        assigned = sorted(held) or ([target.offer_id] if target.offer_id else [])
        raise ServiceError("conflict", "this is not the welcome offer for your account at this "
                           "salon", code="offer_not_assigned",
                           details={"assignedOfferIds": assigned})
    return target


def throttle_keys(services: Services, user_id: str, address: str
                  ) -> dict[throttle_db.Key, throttle.Policy]:
    """The keys a code attempt is charged to (user, client address) with their budgets."""
    cfg = services.cfg.offers

    def policy(budget: int) -> throttle.Policy:
        return throttle.Policy(budget, cfg.claim_window_s, cfg.claim_lockout_s,
                               cfg.claim_lockout_max_s, cfg.claim_memory_s)

    return {(throttle.USER, throttle.user_subject(user_id)): policy(cfg.claim_misses_per_user),
            (throttle.ADDRESS, address): policy(cfg.claim_misses_per_ip)}


async def _charge(services: Services, keys: dict[throttle_db.Key, throttle.Policy]) -> None:
    """Count the attempt, or refuse it as rate limited with the wait."""
    verdict = await throttle_db.charge_attempt(services.pool, keys)
    if verdict.wait_s is None:
        return
    seconds = throttle.retry_after(verdict.wait_s)
    if verdict.locked_now:
        log.warning("offer_code_lockout", seconds=seconds,
                    keys=sorted(kind for kind, _ in verdict.locked_now))
    raise ServiceError("rate_limited", "too many offer code attempts: claims by code are "
                       f"locked for this account or network; retry in {seconds}s, or claim by "
                       "offerId", details={"field": "offerCode", "retryAfterSeconds": seconds},
                       retry_after_s=seconds)


async def _may_claim(conn: asyncpg.Connection, services: Services, target: ClaimTarget,
                     user_id: str, own_number: str | None) -> bool:
    """The takeover rule: the claimant's own record, or an unlinked one of a salon where they
    hold nothing else."""
    if target.linked_user_id == user_id:
        return True
    if target.linked_user_id is not None or target.offer_id is None:
        return False
    own_hash = services.cipher.phone_hash(own_number) if own_number else None
    return not await db.holds_other(conn, target, user_id, own_hash)


async def _claim_by_code(services: Services, user_id: str, raw: str, own_number: str | None,
                         address: str) -> Claimed:
    """Throttled claim by offer code under the takeover rule."""
    codes = code_readings(raw)
    if not codes:
        raise invalid_field("offerCode", "is not an offer code: expected the code from the "
                            "invitation, such as WELCOME-A7K9M2XQ4R")
    keys = throttle_keys(services, user_id, address)
    await _charge(services, keys)
    theirs = False
    try:
        async with services.pool.acquire() as conn, conn.transaction():
            target = await db.customer_by_code(conn, codes)
            if target is None or not await _may_claim(conn, services, target, user_id,
                                                      own_number):
                raise code_miss()
            theirs = True
            if target.offer_id is None:  # their own record, but the salon has no active offer
                raise not_found()
            return await grant_claim(conn, target, target.offer_id, user_id, miss=code_miss())
    finally:
        if theirs:
            await throttle_db.refund_attempt(services.pool, list(keys))
