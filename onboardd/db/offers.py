"""Typed access to welcome offers, grants, redemptions and registration events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias, TypeVar

import asyncpg
import msgspec

from onboardd.db.queries import query
from onboardd.domain.offers import Offer, OfferInput

T = TypeVar("T")

Conn: TypeAlias = "asyncpg.Connection | asyncpg.Pool"


class RedemptionRow(msgspec.Struct, frozen=True):
    """A welcome_offer_redemptions row (a grant, or a use of the offer)."""

    id: str
    welcome_offer_id: str
    user_id: str
    imported_customer_id: str | None
    booking_id: str | None
    discount_applied_in_paisa: int
    expires_at: datetime
    redeemed_at: datetime | None
    status: str
    created_at: datetime


class RegistrationEvent(msgspec.Struct, frozen=True):
    """A claimed registration event with the user's phone as the host app stored it."""

    id: int
    user_id: str
    phone: str | None
    created_at: datetime


class CustomerMatch(msgspec.Struct, frozen=True):
    """An imported customer whose phone matches, with the offer they would get."""

    id: str
    salon_id: str
    salon_name: str
    country: str
    status: str
    offer_code: str | None
    linked_user_id: str | None
    offer_id: str | None


class ClaimTarget(msgspec.Struct, frozen=True):
    """An imported customer locked for a claim, with the offer assigned to them."""

    id: str
    salon_id: str
    linked_user_id: str | None
    offer_id: str | None


class Caller(msgspec.Struct, frozen=True):
    """A user of the host app as the mobile API sees them: their phone as the app stored it."""

    phone: str | None


class RedemptionPage(msgspec.Struct, frozen=True):
    """One page of an offer's redemptions and how many match in all."""

    items: list[RedemptionRow]
    total: int


class MatchResult(msgspec.Struct, frozen=True):
    """What one matcher batch did."""

    linked: int
    granted: int
    processed: int


def _one(row: asyncpg.Record | None, kind: type[T]) -> T | None:
    return None if row is None else msgspec.convert(dict(row), kind)


def _many(rows: Sequence[asyncpg.Record], kind: type[T]) -> list[T]:
    return [msgspec.convert(dict(row), kind) for row in rows]


def _offer(row: asyncpg.Record | None) -> Offer | None:
    """The one place a welcome_offers row becomes an Offer: the integer column is_active
    becomes a bool here."""
    if row is None:
        return None
    values = {name: row[name] for name in Offer.__struct_fields__}
    values["is_active"] = values["is_active"] == 1
    return Offer(**values)


def _offers(rows: Sequence[asyncpg.Record]) -> list[Offer]:
    return [offer for offer in map(_offer, rows) if offer is not None]


def _field_args(f: OfferInput) -> tuple[Any, ...]:
    """The editable fields as the statements take them (is_active back to the integer)."""
    return (f.name, f.discount_type, f.discount_value, f.max_discount_in_paisa,
            f.minimum_purchase_in_paisa, f.validity_days, f.usage_limit, 1 if f.is_active else 0)


# Admin -----------------------------------------------------------------------------------------

async def create_offer(conn: Conn, salon_id: str, fields: OfferInput) -> Offer:
    """Insert an offer for a salon."""
    offer = _offer(await conn.fetchrow(query("wo_offer_create"), salon_id, *_field_args(fields)))
    assert offer is not None
    return offer


async def list_offers(conn: Conn, salon_id: str, active: bool | None) -> list[Offer]:
    """A salon's offers, newest first, optionally only (in)active ones."""
    return _offers(await conn.fetch(query("wo_offer_list"), salon_id, active))


async def get_offer(conn: Conn, salon_id: str, offer_id: str, *, lock: bool = False
                    ) -> Offer | None:
    """One offer of a salon (None for another salon's offer); lock=True takes its row lock
    until the caller's transaction ends (conn must then be a connection in a transaction)."""
    sql = query("wo_offer_get_for_update") if lock else query("wo_offer_get")
    return _offer(await conn.fetchrow(sql, offer_id, salon_id))


async def get_offer_any(conn: Conn, offer_id: str) -> Offer | None:
    """One offer by id, whatever its salon (mobile paths check eligibility themselves)."""
    return _offer(await conn.fetchrow(query("wo_offer_get_any"), offer_id))


async def get_offers(conn: Conn, offer_ids: Sequence[str]) -> dict[str, Offer]:
    """Offers by id."""
    return {offer.id: offer
            for offer in _offers(await conn.fetch(query("wo_offer_get_many"), list(offer_ids)))}


async def update_offer(conn: Conn, salon_id: str, offer_id: str, fields: OfferInput
                       ) -> Offer | None:
    """Replace an offer's editable fields."""
    return _offer(await conn.fetchrow(query("wo_offer_update"), offer_id, salon_id,
                                      *_field_args(fields)))


async def deactivate_offer(conn: Conn, salon_id: str, offer_id: str) -> Offer | None:
    """Mark an offer inactive."""
    return _offer(await conn.fetchrow(query("wo_offer_deactivate"), offer_id, salon_id))


async def redemptions_page(conn: Conn, offer_id: str, status: str | None, limit: int,
                           offset: int) -> RedemptionPage:
    """One page of an offer's redemptions (effective status) and the total matching."""
    rows = await conn.fetch(query("wo_offer_redemptions_page"), offer_id, status, limit, offset)
    if rows:
        total = int(rows[0]["total"])
    else:  # a page past the end still reports the total
        total = int(await conn.fetchval(query("wo_offer_redemptions_count"), offer_id, status))
    items = [msgspec.convert({k: v for k, v in row.items() if k != "total"}, RedemptionRow)
             for row in rows]
    return RedemptionPage(items=items, total=total)


# Registration matching -------------------------------------------------------------------------

async def claim_events(conn: asyncpg.Connection, limit: int) -> list[RegistrationEvent]:
    """Lock up to limit unprocessed events no other transaction holds (inside a transaction)."""
    return _many(await conn.fetch(query("wo_match_claim_events"), limit), RegistrationEvent)


async def apply_matches(conn: asyncpg.Connection, candidates: Sequence[tuple[int, str, bytes,
                        datetime]], event_ids: Sequence[int]) -> MatchResult:
    """Link, grant and mark processed in one statement (call inside the claiming transaction)."""
    columns: list[list[Any]] = [[c[i] for c in candidates] for i in range(4)]
    row = await conn.fetchrow(query("wo_match_apply"), *columns, list(event_ids))
    assert row is not None
    return MatchResult(linked=row["linked"], granted=row["granted"], processed=row["processed"])


async def defer_event(conn: Conn, event_id: int, error: str, base_s: float, max_s: float
                      ) -> float:
    """Record a failed attempt and hide the event with exponential backoff; returns the delay."""
    delay = await conn.fetchval(query("wo_match_defer_event"), event_id, error[:2000], base_s,
                                max_s)
    return float(delay or 0.0)


# Mobile ----------------------------------------------------------------------------------------

async def caller(conn: Conn, user_id: str) -> Caller | None:
    """The host app's user (None when there is no such user)."""
    return _one(await conn.fetchrow(query("wo_mobile_user_phone"), user_id), Caller)


async def customers_by_hash(conn: Conn, phone_hash: bytes) -> list[CustomerMatch]:
    """Imported customers with the number's hash, best match first."""
    return _many(await conn.fetch(query("wo_mobile_customers_by_hash"), phone_hash),
                 CustomerMatch)


async def customer_by_code(conn: asyncpg.Connection, codes: Sequence[str]
                           ) -> ClaimTarget | None:
    """Lock the imported customer holding one of the codes (the readings of a typed one)."""
    return _one(await conn.fetchrow(query("wo_claim_customer_by_code"), list(codes)),
                ClaimTarget)


async def customer_for_salon(conn: asyncpg.Connection, salon_id: str, user_id: str,
                             hashes: Sequence[bytes]) -> ClaimTarget | None:
    """Lock the caller's imported record in a salon (linked, or matching their phone)."""
    row = await conn.fetchrow(query("wo_claim_customer_for_salon"), salon_id, user_id, list(hashes))
    return _one(row, ClaimTarget)


async def holds_other(conn: asyncpg.Connection, target: ClaimTarget, user_id: str,
                      phone_hash: bytes | None) -> bool:
    """Whether the user holds another record of the target's salon (linked, or their number)."""
    held: bool = await conn.fetchval(query("wo_claim_holds_other"), target.salon_id, user_id,
                                     target.id, phone_hash)
    return held


async def link_customer(conn: asyncpg.Connection, customer_id: str, user_id: str
                        ) -> datetime | None:
    """Mark an imported customer registered as user_id (never one linked to someone else);
    returns their registration time, None when the record is another user's."""
    registered_at: datetime | None = await conn.fetchval(query("wo_claim_link_customer"),
                                                         customer_id, user_id)
    return registered_at


async def held_offers(conn: Conn, user_id: str, salon_id: str) -> set[str]:
    """Offers of a salon the user already has a grant or use of."""
    rows = await conn.fetch(query("wo_claim_held_offers"), user_id, salon_id)
    return {row["welcome_offer_id"] for row in rows}


async def insert_grant(conn: asyncpg.Connection, offer: Offer, user_id: str,
                       customer_id: str | None, registered_at: datetime) -> RedemptionRow | None:
    """Create the user's grant unless they already have a row for the offer."""
    row = await conn.fetchrow(query("wo_grant_insert"), offer.id, user_id, customer_id,
                              registered_at, offer.validity_days)
    return _one(row, RedemptionRow)


async def grant_for_user(conn: Conn, offer_id: str, user_id: str, *, lock: bool = False
                         ) -> RedemptionRow | None:
    """The user's grant for an offer; lock=True holds it until the transaction ends."""
    sql = query("wo_grant_lock") if lock else query("wo_grant_for_user")
    return _one(await conn.fetchrow(sql, offer_id, user_id), RedemptionRow)


async def used_count(conn: Conn, offer_id: str, user_id: str) -> int:
    """How many times the user has used the offer."""
    count: int = await conn.fetchval(query("wo_redemption_used_count"), offer_id, user_id)
    return count


async def redemption_by_booking(conn: Conn, offer_id: str, booking_id: str
                                ) -> RedemptionRow | None:
    """The use of an offer recorded for a booking, if any."""
    row = await conn.fetchrow(query("wo_redemption_by_booking"), offer_id, booking_id)
    return _one(row, RedemptionRow)


async def record_use(conn: asyncpg.Connection, grant: RedemptionRow, booking_id: str,
                     discount: int) -> RedemptionRow:
    """Record one use: fill the unused grant, else add a row; count it on the offer."""
    if grant.booking_id is None:
        row = await conn.fetchrow(query("wo_redemption_use_grant"), grant.id, booking_id, discount)
    else:
        row = await conn.fetchrow(query("wo_redemption_use_again"), grant.welcome_offer_id,
                                  grant.user_id, grant.imported_customer_id, booking_id,
                                  discount, grant.expires_at)
    await conn.execute(query("wo_offer_count_redemption"), grant.welcome_offer_id)
    used = _one(row, RedemptionRow)
    assert used is not None
    return used


# Expiry ----------------------------------------------------------------------------------------

def _affected(status: str) -> int:
    """Row count from a command tag such as 'UPDATE 42'."""
    return int(status.rsplit(" ", 1)[-1])


async def expire_redemptions(conn: Conn, limit: int) -> int:
    """Mark up to limit active grants past their expiry as expired."""
    return _affected(await conn.execute(query("wo_expire_redemptions"), limit))


async def expire_invitations(conn: Conn, days: int, limit: int) -> int:
    """Mark up to limit customers invited more than days ago and not registered as expired."""
    return _affected(await conn.execute(query("wo_expire_invitations"), days, limit))
