"""Welcome offers (spec §5, §7.3, §7.4): the admin's offers, and the mobile app's validate and
redeem. The check of a phone lives in onboardd.services.offer_check, claims of an offer in
onboardd.services.offer_claims.

The caller of the mobile functions is a row of the host app's ``users`` table. A salon's welcome
offer is only for its imported customers: a user without a grant for an offer gets the same
answer as for an unknown offer, so nothing leaks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import asyncpg
import msgspec

from onboardd.db import offers as db
from onboardd.db.offers import RedemptionPage, RedemptionRow
from onboardd.domain.offers import (
    EXPIRED,
    NOT_FOUND,
    USED,
    Offer,
    OfferInput,
    OfferPatch,
    Validation,
    patched,
    validate_offer,
    validate_offer_input,
)
from onboardd.runtime import Services
from onboardd.services.errors import Kind, ServiceError

# A refused redemption: the kind and code of each reason (else a minimum purchase not met).
_REASON_ERRORS: Final[dict[str, tuple[Kind, str]]] = {
    NOT_FOUND: ("not_found", "offer_not_found"),
    EXPIRED: ("conflict", "offer_expired"),
    USED: ("conflict", "offer_used"),
}


def offer_missing(offer_id: str) -> ServiceError:
    """The admin's answer for an offer that is not in their salon."""
    return ServiceError("not_found", f"welcome offer '{offer_id}' not found in this salon",
                        code="offer_not_found")


def not_found() -> ServiceError:
    """The app's one answer for an offer it may not see, whatever the reason."""
    return ServiceError("not_found", NOT_FOUND, code="offer_not_found")


def _checked(data: OfferInput) -> OfferInput:
    """Validate an offer; every problem at once, the first one named in the message."""
    errors = validate_offer_input(data)
    if errors:
        raise ServiceError("invalid", errors[0].message, details={
            "field": errors[0].field,
            "errors": [{"field": e.field, "message": e.message} for e in errors],
        })
    return msgspec.structs.replace(data, name=data.name.strip())


# Admin -------------------------------------------------------------------------------------------

async def create_offer(services: Services, salon_id: str, data: OfferInput) -> Offer:
    """Create a welcome offer."""
    return await db.create_offer(services.pool, salon_id, _checked(data))


async def list_offers(services: Services, salon_id: str, active: bool | None) -> list[Offer]:
    """A salon's offers, newest first, optionally only (in)active ones."""
    return await db.list_offers(services.pool, salon_id, active)


async def get_offer(services: Services, salon_id: str, offer_id: str) -> Offer:
    """One offer of the salon."""
    offer = await db.get_offer(services.pool, salon_id, offer_id)
    if offer is None:
        raise offer_missing(offer_id)
    return offer


async def update_offer(services: Services, salon_id: str, offer_id: str, patch: OfferPatch
                       ) -> Offer:
    """Change an offer; existing grants keep their expiry, later validations use the new rules.

    Read, merge, validate and write happen under the offer's row lock in one transaction, so
    two concurrent edits apply one after the other: the second merges into (and is validated
    against) what the first wrote, instead of writing back fields it read before.
    """
    async with services.pool.acquire() as conn, conn.transaction():
        current = await db.get_offer(conn, salon_id, offer_id, lock=True)
        if current is None:
            raise offer_missing(offer_id)
        updated = await db.update_offer(conn, salon_id, offer_id,
                                        _checked(patched(current, patch)))
    if updated is None:
        raise offer_missing(offer_id)
    return updated


async def deactivate_offer(services: Services, salon_id: str, offer_id: str) -> Offer:
    """Deactivate an offer (rows stay for the redemption history)."""
    offer = await db.deactivate_offer(services.pool, salon_id, offer_id)
    if offer is None:
        raise offer_missing(offer_id)
    return offer


async def redemptions(services: Services, salon_id: str, offer_id: str, *, status: str | None,
                      page: int, limit: int) -> RedemptionPage:
    """One page of an offer's grants and uses, newest first."""
    offer = await get_offer(services, salon_id, offer_id)
    return await db.redemptions_page(services.pool, offer.id, status, limit, (page - 1) * limit)


# Mobile ------------------------------------------------------------------------------------------

async def caller_phone(services: Services, user_id: str) -> str | None:
    """The caller's phone as the host app stored it; not found when the user does not exist."""
    caller = await db.caller(services.pool, user_id)
    if caller is None:
        raise ServiceError("not_found", f"user '{user_id}' not found: the token's sub must be a "
                           "registered user of the app", code="user_not_found")
    return caller.phone


async def validate(services: Services, user_id: str, offer_id: str, amount: int) -> Validation:
    """Spec §5.3: the caller's grant of the offer checked against a booking amount."""
    pool = services.pool
    offer = await db.get_offer_any(pool, offer_id)
    grant = await db.grant_for_user(pool, offer_id, user_id) if offer else None
    used = await db.used_count(pool, offer_id, user_id) if grant else 0
    return validate_offer(offer if grant else None,
                          expires_at=grant.expires_at if grant else None, used_count=used,
                          booking_amount_in_paisa=amount, now=datetime.now(UTC))


class Redeemed(msgspec.Struct, frozen=True):
    """A recorded use; ``created`` is False when the booking had used the offer before."""

    redemption: RedemptionRow
    created: bool


def _refused(reason: str) -> ServiceError:
    kind, code = _REASON_ERRORS.get(reason, ("invalid", "minimum_purchase_not_met"))
    return ServiceError(kind, reason, code=code,
                        details={"valid": False, "discount": 0, "reason": reason})


async def _earlier(conn: asyncpg.Connection, offer_id: str, booking_id: str, user_id: str
                   ) -> RedemptionRow | None:
    """The recorded use for this booking; a conflict when another user recorded it."""
    earlier = await db.redemption_by_booking(conn, offer_id, booking_id)
    if earlier is not None and earlier.user_id != user_id:
        raise ServiceError("conflict", "this bookingId has already used this offer for another "
                           "account", code="booking_already_used",
                           details={"field": "bookingId"})
    return earlier


async def redeem(services: Services, user_id: str, offer_id: str, booking_id: str,
                 amount: int) -> Redeemed:
    """Validate and record one use atomically; the same bookingId again returns the first
    result."""
    async with services.pool.acquire() as conn:
        try:
            async with conn.transaction():
                # The grant row lock serialises this user's redemptions of the offer.
                grant = await db.grant_for_user(conn, offer_id, user_id, lock=True)
                if grant is None:
                    raise _refused(NOT_FOUND)
                earlier = await _earlier(conn, offer_id, booking_id, user_id)
                if earlier is not None:
                    return Redeemed(earlier, created=False)
                offer = await db.get_offer_any(conn, offer_id)
                used = await db.used_count(conn, offer_id, user_id)
                result = validate_offer(offer, expires_at=grant.expires_at, used_count=used,
                                        booking_amount_in_paisa=amount, now=datetime.now(UTC))
                if not result.valid:
                    raise _refused(result.reason or NOT_FOUND)
                row = await db.record_use(conn, grant, booking_id, result.discount)
        except asyncpg.UniqueViolationError:
            # Another account recorded this booking id between our check and insert.
            earlier = await _earlier(conn, offer_id, booking_id, user_id)
            if earlier is None:
                raise
            return Redeemed(earlier, created=False)
    return Redeemed(row, created=True)
