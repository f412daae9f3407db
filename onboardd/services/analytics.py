"""The analytics area's service: a salon's KPIs, funnel, series, campaign comparison and
conversion curve over a window in its timezone, and who is at one funnel stage.

Definitions (the README's "Analytics" section states them for salon admins):
- the funnel and the non-windowed KPIs are the state now; the starred KPIs, the series and
  the comparison count events inside the window;
- with a campaign, the customers are that campaign's targets and the messages its messages.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Final

import asyncpg
import msgspec

from onboardd.db import analytics as db
from onboardd.db import delivery_stats as stats_db
from onboardd.db import imports as imports_db
from onboardd.domain import analytics as rules
from onboardd.domain.analytics import AnalyticsError, CurvePoint, FunnelStage, Window
from onboardd.domain.campaigns.audience import (
    FUNNEL_STAGES,
    TARGETABLE,
    TARGETABLE_STAGES,
    Audience,
    stage_index,
)
from onboardd.domain.phones import mask_phone
from onboardd.runtime import Services
from onboardd.services.errors import ServiceError, invalid_field

STAGE_PAGE_MAX: Final = 100


class Kpis(msgspec.Struct, frozen=True, rename="camel"):
    """Spec §6.1 OnboardingAnalytics."""

    total_imported: int
    imported_this_week: int
    imported_this_month: int
    total_invites_sent: int
    invites_delivered: int
    delivery_rate: float
    registered_from_import: int
    conversion_rate: float
    offers_redeemed: int
    redemption_rate: float
    total_discount_given: int
    avg_days_to_register: float | None
    avg_days_to_first_booking: float | None


class SeriesPoint(msgspec.Struct, frozen=True, rename="camel"):
    date: date
    imported: int
    invited: int
    delivered: int
    registered: int
    first_bookings: int
    redeemed: int
    discount_given_in_paisa: int


class Series(msgspec.Struct, frozen=True):
    bucket: str
    points: list[SeriesPoint]


class CampaignComparison(msgspec.Struct, frozen=True, rename="camel"):
    campaign_id: str
    name: str
    channel: str
    status: str
    started_at: datetime
    target: int
    sent: int
    delivered: int
    delivery_rate: float
    read: int
    failed: int
    skipped: int
    registered: int
    conversion_rate: float
    first_bookings: int
    redeemed: int
    discount_given_in_paisa: int
    booking_value_in_paisa: int


class CampaignCurve(msgspec.Struct, frozen=True, rename="camel"):
    campaign_id: str
    name: str
    delivered: int
    points: list[CurvePoint]


class Range(msgspec.Struct, frozen=True, rename="camel"):
    from_: date = msgspec.field(name="from")
    to: date
    timezone: str


class Report(msgspec.Struct, frozen=True, rename="camel"):
    """GET /analytics."""

    range: Range
    campaign_id: str | None
    kpis: Kpis
    funnel: list[FunnelStage]
    series: Series
    campaigns: list[CampaignComparison]
    conversion_curve: list[CampaignCurve]


def _now() -> datetime:
    return datetime.now(UTC)


async def _window(services: Services, salon_id: str, raw_from: str | None, raw_to: str | None
                  ) -> Window:
    zone = await db.salon_timezone(services.pool, salon_id)
    if zone is None:
        raise ServiceError("not_found", f"no salon {salon_id!r}", code="salon_not_found")
    try:
        return rules.window(raw_from, raw_to, zone, _now())
    except AnalyticsError as exc:
        raise invalid_field(exc.field, exc.message) from None


async def _check_campaign(services: Services, salon_id: str, campaign_id: str | None) -> None:
    if campaign_id is not None and not await stats_db.campaign_exists(
            services.pool, campaign_id, salon_id):
        raise ServiceError("not_found", f"campaignId: no campaign {campaign_id!r} in this salon",
                           code="campaign_not_found", details={"field": "campaignId"})


async def report(services: Services, salon_id: str, *, raw_from: str | None = None,
                 raw_to: str | None = None, campaign_id: str | None = None) -> Report:
    """Everything the dashboard shows for the window, read from one snapshot: the customer
    side and the campaign side at once."""
    win = await _window(services, salon_id, raw_from, raw_to)
    await _check_campaign(services, salon_id, campaign_id)
    scope = db.Scope(salon_id, campaign_id, win.start, win.end)
    now = _now()

    async def customer_side(conn: asyncpg.Connection
                            ) -> tuple[db.CustomerCounts, list[db.SeriesRow]]:
        people = await db.customer_counts(conn, scope, rules.week_start(now, win.timezone),
                                          rules.month_start(now, win.timezone))
        return people, await db.series(conn, scope, win.timezone, win.bucket,
                                       win.first_bucket, win.last_day)

    async def campaign_side(conn: asyncpg.Connection
                            ) -> tuple[list[db.CampaignRow], list[db.CurveRow]]:
        return await db.campaigns(conn, scope), await db.curve(conn, scope)

    (people, rows), (compared, curve_rows) = await db.read_pair(
        services.pool, customer_side, campaign_side)
    return Report(
        range=Range(win.first_day, win.last_day, win.timezone),
        campaign_id=campaign_id,
        kpis=_kpis(people, rows),
        funnel=rules.funnel([people.imported, people.invited, people.delivered,
                             people.registered, people.first_booking]),
        series=Series(win.bucket, [_point(r) for r in rows]),
        campaigns=[_compared(r) for r in compared],
        conversion_curve=_curves(compared, curve_rows))


def _kpis(people: db.CustomerCounts, series: list[db.SeriesRow]) -> Kpis:
    """The KPIs: the customer counts, and the windowed message and redemption figures as the
    sums of the series (whose buckets cover the window exactly, with the same definitions)."""
    sent = sum(r.invited for r in series)
    delivered = sum(r.delivered for r in series)
    registered = people.registered_in_window
    return Kpis(
        total_imported=people.imported,
        imported_this_week=people.imported_this_week,
        imported_this_month=people.imported_this_month,
        total_invites_sent=sent,
        invites_delivered=delivered,
        delivery_rate=rules.rate(delivered, sent),
        registered_from_import=registered,
        conversion_rate=rules.rate(registered, people.imported_by_end),
        offers_redeemed=sum(r.redeemed for r in series),
        redemption_rate=rules.rate(people.redeemers_registered_in_window, registered),
        total_discount_given=sum(r.discount for r in series),
        avg_days_to_register=rules.days_1dp(people.avg_days_to_register),
        avg_days_to_first_booking=rules.days_1dp(people.avg_days_to_first_booking))


def _point(row: db.SeriesRow) -> SeriesPoint:
    return SeriesPoint(row.bucket, row.imported, row.invited, row.delivered, row.registered,
                       row.first_bookings, row.redeemed, row.discount)


def _compared(row: db.CampaignRow) -> CampaignComparison:
    return CampaignComparison(
        campaign_id=row.id, name=row.name, channel=row.channel, status=row.status,
        started_at=row.started_at, target=row.target, sent=row.sent, delivered=row.delivered,
        delivery_rate=rules.rate(row.delivered, row.sent), read=row.read, failed=row.failed,
        skipped=row.skipped, registered=row.registered,
        conversion_rate=rules.rate(row.registered, row.target),
        first_bookings=row.first_bookings, redeemed=row.redeemed,
        discount_given_in_paisa=row.discount, booking_value_in_paisa=row.booking_value)


def _curves(compared: list[db.CampaignRow], rows: list[db.CurveRow]) -> list[CampaignCurve]:
    delivered: dict[str, int] = {}
    days: dict[str, list[tuple[int, int]]] = {}
    for r in rows:
        delivered[r.campaign_id] = delivered.get(r.campaign_id, 0) + r.n
        if r.day is not None:
            days.setdefault(r.campaign_id, []).append((r.day, r.n))
    return [CampaignCurve(c.id, c.name, delivered.get(c.id, 0),
                          rules.conversion_curve(delivered.get(c.id, 0), days.get(c.id, [])))
            for c in compared]


# -- who is at a stage --------------------------------------------------------------------------

class StageCustomerOut(msgspec.Struct, frozen=True, rename="camel"):
    id: str
    customer_name: str
    phone: str  # masked
    status: str
    imported_at: datetime
    invited_at: datetime | None
    last_message_at: datetime | None
    registered_at: datetime | None
    first_booking_at: datetime | None


class StageView(msgspec.Struct, frozen=True, rename="camel"):
    stage: str
    campaign_id: str | None
    customers: list[StageCustomerOut]
    total: int
    page: int
    limit: int
    total_pages: int
    # A campaign audience selecting exactly these customers (None where they cannot be invited
    # again: registered customers).
    audience: Audience | None


def stage_audience(stage: str, campaign_id: str | None) -> Audience | None:
    """The campaign audience of the customers at this stage (and not beyond)."""
    if stage not in TARGETABLE_STAGES:
        return None
    return Audience(status=list(TARGETABLE), campaign_id=campaign_id, funnel_stage=stage)


async def stage_customers(services: Services, salon_id: str, stage: str, *,
                          campaign_id: str | None, page: int, limit: int, actor: str,
                          request_id: str) -> StageView:
    """One page of the customers at a funnel stage and not at the next, phones masked; the
    read is logged to pii_access_log with their ids (a page holds at most 100)."""
    if stage not in FUNNEL_STAGES:
        raise ServiceError("not_found", f"stage: no funnel stage {stage!r}; use one of "
                           f"{', '.join(FUNNEL_STAGES)}", code="stage_not_found",
                           details={"field": "stage", "allowed": list(FUNNEL_STAGES)})
    await _check_campaign(services, salon_id, campaign_id)
    async with db.reads(services.pool) as conn:
        found = await db.stage_page(conn, salon_id, campaign_id, stage_index(stage), limit,
                                    (page - 1) * limit)
    decrypt = services.cipher.decrypt
    customers = [StageCustomerOut(
        id=r.id, customer_name=r.customer_name,
        phone=mask_phone(decrypt(r.normalized_phone_enc, "phone")), status=r.status,
        imported_at=r.imported_at, invited_at=r.invited_at, last_message_at=r.last_message_at,
        registered_at=r.registered_at, first_booking_at=r.first_booking_at)
        for r in found.items]
    await imports_db.log_pii_access(
        services.pool, actor=actor, salon_id=salon_id, action="analytics_stage",
        record_count=len(customers),
        details={"stage": stage, "campaignId": campaign_id, "page": page, "limit": limit},
        request_id=request_id, customer_ids=[c.id for c in customers])
    return StageView(stage=stage, campaign_id=campaign_id, customers=customers,
                     total=found.total, page=page, limit=limit,
                     total_pages=math.ceil(found.total / limit) if found.total else 0,
                     audience=stage_audience(stage, campaign_id))
