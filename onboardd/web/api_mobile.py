"""Mobile app API (spec §7.4, customer JWT): check a phone, claim, validate and redeem offers.

The caller is the token's ``sub``, a row of the host app's ``users`` table. A salon's welcome
offer is only for its imported customers: a user without a grant for an offer gets the same
answer as for an unknown offer ("Offer not found or inactive"), so nothing leaks.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
import msgspec
from aiohttp import web

from onboardd.db import offers as db
from onboardd.db.offers import ClaimTarget, OfferRow, RedemptionRow
from onboardd.domain.matching import NO_REGION, caller_region, user_number
from onboardd.domain.offers import EXPIRED, INT32_MAX, NOT_FOUND, USED, validate_offer
from onboardd.domain.phones import PhoneError, normalize_phone
from onboardd.runtime import Services
from onboardd.web.body import read_json
from onboardd.web.claims import claim_by_code, grant_claim
from onboardd.web.errors import ApiError, field_error, json_response
from onboardd.web.keys import principal, services
from onboardd.web.shapes import offer_json, redemption_json

routes = web.RouteTableDef()

WINDOW_S: Final = 60.0
MAX_ID_LENGTH: Final = 255
_REASON_ERRORS: Final = {
    NOT_FOUND: (404, "offer_not_found"),
    EXPIRED: (409, "offer_expired"),
    USED: (409, "offer_used"),
}


class SlidingWindow:
    """Per-key request counts over the last minute (in-process: each daemon counts its own)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._hits: dict[str, deque[float]] = {}
        self._max_keys = max_keys

    def retry_after(self, key: str, limit: int, now: float | None = None) -> float | None:
        """Count a request; None when allowed, else seconds until the next one is."""
        now = time.monotonic() if now is None else now
        hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] >= WINDOW_S:
            hits.popleft()
        if len(hits) >= limit:
            return WINDOW_S - (now - hits[0])
        hits.append(now)
        if len(self._hits) > self._max_keys:
            self._prune(now)
        return None

    def _prune(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or now - v[-1] >= WINDOW_S]:
            del self._hits[key]


_check_limiter = SlidingWindow()


class ClaimBody(msgspec.Struct, forbid_unknown_fields=True):
    offerId: str | None = None
    offerCode: str | None = None


class ValidateBody(msgspec.Struct, forbid_unknown_fields=True):
    offerId: str
    bookingAmountInPaisa: int


class RedeemBody(msgspec.Struct, forbid_unknown_fields=True):
    offerId: str
    bookingId: str
    bookingAmountInPaisa: int


def welcome_offer_json(row: OfferRow | None) -> dict[str, Any] | None:
    """An offer as the app shows it (None when there is none)."""
    return None if row is None else offer_json(row, admin=False)


def _effective(row: RedemptionRow, now: datetime) -> dict[str, Any]:
    """A redemption with an active grant past its expiry shown as expired."""
    data = redemption_json(row)
    if row.status == "active" and row.expires_at < now:
        data["status"] = "expired"
    return data


def _check_id(field: str, value: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_ID_LENGTH:
        raise field_error(field, f"must be a non-empty id of at most {MAX_ID_LENGTH} characters")
    return value


def _check_amount(amount: int) -> int:
    if not 0 <= amount <= INT32_MAX:
        raise field_error("bookingAmountInPaisa",
                          f"must be a whole number of paisa between 0 and {INT32_MAX} "
                          f"(e.g. 150000 for ₹1,500; got {amount})")
    return amount


async def _caller_phone(svc: Services, user_id: str) -> str | None:
    """The caller's phone; 404 when the token's user does not exist."""
    exists, phone = await db.user_phone(svc.pool, user_id)
    if not exists:
        raise ApiError(404, f"user '{user_id}' not found: the token's sub must be a registered "
                       "user of the app", code="user_not_found")
    return phone


def _typed_number(raw: str, region: str) -> str:
    """The E.164 number the caller typed, read with their region; 422 naming the fix."""
    try:
        return normalize_phone(raw, region or NO_REGION)
    except PhoneError as exc:
        reason = exc.message
    if not region:
        raise field_error("phone", f"{reason}: send the number with its country code, such as "
                          "+919876543210")
    raise field_error("phone", f"{reason}: send a mobile number with its country code, such as "
                      f"+919876543210 (numbers of your region {region} may omit it)")


@routes.get("/api/mobile/check-imported-customer")
async def check_imported_customer(request: web.Request) -> web.Response:
    """Is this phone a salon's imported customer? Spec fields only, rate-limited per caller."""
    svc = services(request)
    who = principal(request)
    raw = request.query.get("phone", "").strip()
    wait = _check_limiter.retry_after(who.sub, svc.cfg.offers.check_rate_per_min)
    if wait is not None:
        seconds = max(1, int(wait + 0.999))
        raise ApiError(429, f"too many checks: at most {svc.cfg.offers.check_rate_per_min} per "
                       f"minute; retry in {seconds}s", headers={"Retry-After": str(seconds)},
                       details={"retryAfterSeconds": seconds})
    if not raw:
        raise field_error("phone", "is required: pass ?phone= with the number the customer "
                          "entered, e.g. 9876543210 or +919876543210")
    default_region = svc.cfg.offers.phone_region
    own_number = user_number((await db.user_phone(svc.pool, who.sub))[1], default_region)
    # The typed number is read with the caller's own region, never with a salon's.
    number = _typed_number(raw, caller_region(own_number, default_region))
    matches = await db.customers_by_hash(svc.pool, svc.cipher.phone_hash(number))
    offers = await db.get_offers(svc.pool, [m.offer_id for m in matches if m.offer_id])
    own = own_number is not None and number == own_number
    items: list[dict[str, Any]] = []
    for match in matches:
        item: dict[str, Any] = {
            "salonId": match.salon_id,
            "salonName": match.salon_name,
            "welcomeOffer": welcome_offer_json(offers.get(match.offer_id or "")),
        }
        if own:  # the caller's own number: what they need to claim, nothing about anyone else
            item["offerCode"] = match.offer_code
            item["claimed"] = match.linked_user_id == who.sub
        items.append(item)
    best = items[0] if items else None
    body: dict[str, Any] = {
        "isImported": best is not None,
        "salonName": best["salonName"] if best else None,
        "welcomeOffer": best["welcomeOffer"] if best else None,
        "matches": items,
    }
    if own:
        body["ownNumber"] = True
    return json_response(body)


async def _target_by_offer(conn: asyncpg.Connection, svc: Services, offer_id: str,
                           user_id: str, own_number: str | None) -> tuple[ClaimTarget, str]:
    offer = await db.get_offer_any(conn, offer_id)
    if offer is None or offer.is_active != 1:
        raise ApiError(404, NOT_FOUND, code="offer_not_found")
    hashes = [svc.cipher.phone_hash(own_number)] if own_number else []
    target = await db.customer_for_salon(conn, offer.salon_id, user_id, hashes)
    if target is None:  # not this salon's customer: same answer as an unknown offer
        raise ApiError(404, NOT_FOUND, code="offer_not_found")
    held = await db.held_offers(conn, user_id, offer.salon_id)
    if offer.id not in held and offer.id != target.offer_id:
        assigned = sorted(held) or ([target.offer_id] if target.offer_id else [])
        raise ApiError(409, "this is not the welcome offer for your account at this salon",
                       code="offer_not_assigned", details={"assignedOfferIds": assigned})
    return target, offer.id


@routes.post("/api/mobile/claim-welcome-offer")
async def claim_welcome_offer(request: web.Request) -> web.Response:
    """Create (idempotently) the caller's grant, by offer id or by the code they were sent."""
    svc = services(request)
    user_id = principal(request).sub
    body = await read_json(request, ClaimBody)
    if (body.offerId is None) == (body.offerCode is None):
        raise ApiError(422, "send exactly one of offerId or offerCode",
                       details={"field": "offerId" if body.offerId is None else "offerCode"})
    own_number = user_number(await _caller_phone(svc, user_id), svc.cfg.offers.phone_region)
    if body.offerCode is not None:
        claimed = await claim_by_code(request, svc, user_id, body.offerCode, own_number)
    else:
        offer_id = _check_id("offerId", body.offerId or "")
        async with svc.pool.acquire() as conn, conn.transaction():
            target, offer_id = await _target_by_offer(conn, svc, offer_id, user_id, own_number)
            claimed = await grant_claim(conn, target, offer_id, user_id,
                                        miss=ApiError(404, NOT_FOUND, code="offer_not_found"))
    now = datetime.now(UTC)
    return json_response({"redemption": _effective(claimed.grant, now),
                          "welcomeOffer": welcome_offer_json(claimed.offer)},
                         status=201 if claimed.created else 200)


@routes.post("/api/mobile/welcome-offers/validate")
async def validate(request: web.Request) -> web.Response:
    """Spec §5.3: {valid, discount, reason} for the caller's grant and a booking amount."""
    svc = services(request)
    user_id = principal(request).sub
    body = await read_json(request, ValidateBody)
    offer_id = _check_id("offerId", body.offerId)
    amount = _check_amount(body.bookingAmountInPaisa)
    offer = await db.get_offer_any(svc.pool, offer_id)
    grant = await db.grant_for_user(svc.pool, offer_id, user_id) if offer else None
    used = await db.used_count(svc.pool, offer_id, user_id) if grant else 0
    result = validate_offer(offer.rules() if offer and grant else None,
                            expires_at=grant.expires_at if grant else None, used_count=used,
                            booking_amount_in_paisa=amount, now=datetime.now(UTC))
    out: dict[str, Any] = {"valid": result.valid, "discount": result.discount}
    if result.reason is not None:
        out["reason"] = result.reason
    return json_response(out)


def _redeem_result(row: RedemptionRow, status: int) -> web.Response:
    return json_response({"valid": True, "discount": row.discount_applied_in_paisa,
                          "redemption": redemption_json(row)}, status=status)


def _refused(reason: str) -> ApiError:
    status, code = _REASON_ERRORS.get(reason, (422, "minimum_purchase_not_met"))
    return ApiError(status, reason, code=code,
                    details={"valid": False, "discount": 0, "reason": reason})


async def _earlier(conn: asyncpg.Connection, offer_id: str, booking_id: str, user_id: str
                   ) -> RedemptionRow | None:
    """The recorded use for this booking; 409 when another user recorded it."""
    earlier = await db.redemption_by_booking(conn, offer_id, booking_id)
    if earlier is not None and earlier.user_id != user_id:
        raise ApiError(409, "this bookingId has already used this offer for another account",
                       code="booking_already_used", details={"field": "bookingId"})
    return earlier


@routes.post("/api/mobile/welcome-offers/redeem")
async def redeem(request: web.Request) -> web.Response:
    """Validate and record one use atomically; the same bookingId again returns the first result."""
    svc = services(request)
    user_id = principal(request).sub
    body = await read_json(request, RedeemBody)
    offer_id = _check_id("offerId", body.offerId)
    booking_id = _check_id("bookingId", body.bookingId)
    amount = _check_amount(body.bookingAmountInPaisa)
    async with svc.pool.acquire() as conn:
        try:
            async with conn.transaction():
                # The grant row lock serialises this user's redemptions of the offer.
                grant = await db.grant_for_user(conn, offer_id, user_id, lock=True)
                if grant is None:
                    raise _refused(NOT_FOUND)
                earlier = await _earlier(conn, offer_id, booking_id, user_id)
                if earlier is not None:
                    return _redeem_result(earlier, 200)
                offer = await db.get_offer_any(conn, offer_id)
                used = await db.used_count(conn, offer_id, user_id)
                result = validate_offer(offer.rules() if offer else None,
                                        expires_at=grant.expires_at, used_count=used,
                                        booking_amount_in_paisa=amount, now=datetime.now(UTC))
                if not result.valid:
                    raise _refused(result.reason or NOT_FOUND)
                row = await db.record_use(conn, grant, booking_id, result.discount)
        except asyncpg.UniqueViolationError:
            # Another account recorded this booking id between our check and insert.
            earlier = await _earlier(conn, offer_id, booking_id, user_id)
            if earlier is None:
                raise
            return _redeem_result(earlier, 200)
    return _redeem_result(row, 201)
