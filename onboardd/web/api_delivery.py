"""Campaign delivery statistics and the per-customer delivery list (spec §7.2 stats).

GET /api/salons/{salonId}/invitation-campaigns/{id}/stats
GET /api/salons/{salonId}/invitation-campaigns/{id}/messages?status=&page=&pageSize=
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from aiohttp import web

from onboardd.services import delivery as service
from onboardd.web.body import QUERY_INT_MAX, read_query
from onboardd.web.contract import operation
from onboardd.web.errors import json_as
from onboardd.web.keys import salon_of, services

routes = web.RouteTableDef()

_BASE = "/api/salons/{salonId}/invitation-campaigns/{id}"

MessageStatus = service.MessageStatus


class FailedByCode(msgspec.Struct, frozen=True, rename="camel"):
    """Failed or undelivered messages of one Twilio error code."""

    error_code: int | None
    error_message: str | None
    count: int


class FailedTally(msgspec.Struct, frozen=True, rename="camel"):
    """Failed messages, in all and by Twilio error code."""

    total: int
    by_error_code: list[FailedByCode]


class SkippedTally(msgspec.Struct, frozen=True, rename="camel"):
    """Skipped messages, in all and by reason (opted_out, invalid_number, ...)."""

    total: int
    by_reason: dict[str, int]


class WindowNow(msgspec.Struct, frozen=True, rename="camel"):
    """The salon's sending window in force, and whether it is open now."""

    start: str
    end: str
    timezone: str
    open_now: bool
    next_opening_at: datetime | None


class CampaignStats(msgspec.Struct, frozen=True, rename="camel"):
    """Delivery statistics of one campaign."""

    campaign_id: str
    name: str
    status: str
    channel: str
    target: int
    sent: int
    delivered: int
    read: int
    failed: FailedTally
    skipped: SkippedTally
    opted_out: int
    pending: int
    awaiting_delivery_report: int
    progress_percent: float
    current_rate_per_second: float
    started_at: datetime | None
    paused_at: datetime | None
    completed_at: datetime | None
    estimated_completion_at: datetime | None
    delivery_rate: float
    read_rate: float
    registrations_attributed: int
    conversion_rate: float
    waiting_for_window: int
    sending_window: WindowNow


class DeliveredMessage(msgspec.Struct, frozen=True, rename="camel"):
    """One customer's invitation message, phone masked."""

    id: str
    customer_id: str
    customer_name: str
    phone: str
    channel: str
    status: str
    twilio_message_sid: str | None
    error_code: int | None
    error_message: str | None
    skip_reason: str | None
    fallback_from: str | None
    attempts: int
    queued_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None


class MessagePage(msgspec.Struct, frozen=True, rename="camel"):
    """A page of a campaign's messages."""

    items: list[DeliveredMessage]
    page: int
    page_size: int
    total: int
    status: MessageStatus | None


class MessagesQuery(msgspec.Struct, frozen=True, rename="camel"):
    """Filter and page of the message list."""

    status: MessageStatus | None = None
    page: Annotated[int, msgspec.Meta(ge=1, le=QUERY_INT_MAX)] = 1
    page_size: Annotated[int, msgspec.Meta(ge=1, le=500)] = 50


@routes.get(_BASE + "/stats")
@operation("Delivery statistics of one campaign", answers={200: CampaignStats})
async def campaign_stats(request: web.Request) -> web.StreamResponse:
    """Delivery statistics of one campaign."""
    return json_as(CampaignStats, await service.campaign_stats(
        services(request), salon_of(request), request.match_info["id"]))


@routes.get(_BASE + "/messages")
@operation("Per-customer delivery of one campaign, phones masked, page by page",
           query=MessagesQuery, answers={200: MessagePage})
async def campaign_messages(request: web.Request) -> web.StreamResponse:
    """Per-customer delivery of one campaign, with masked phone numbers, page by page."""
    q = read_query(request, MessagesQuery)
    return json_as(MessagePage, await service.campaign_messages(
        services(request), salon_of(request), request.match_info["id"], q.status, q.page,
        q.page_size))
