"""Campaign delivery statistics and the per-customer delivery list (spec §7.2 stats).

GET /api/salons/{salonId}/invitation-campaigns/{id}/stats
GET /api/salons/{salonId}/invitation-campaigns/{id}/messages?status=&page=&pageSize=
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from onboardd.db import delivery_stats as db
from onboardd.db.delivery_stats import CampaignStats, FailedCode
from onboardd.domain.phones import mask_phone
from onboardd.web.body import query_choice, query_int
from onboardd.web.errors import ApiError, json_response
from onboardd.web.keys import salon_of, services

routes = web.RouteTableDef()

_BASE = "/api/salons/{salonId}/invitation-campaigns/{id}"
MESSAGE_STATUSES = ("pending", "sending", "queued", "sent", "delivered", "read", "failed",
                    "undelivered", "skipped")
RATE_WINDOW_S = 10


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def build_stats(row: CampaignStats, failed: list[FailedCode], skipped: dict[str, int],
                now: datetime) -> dict[str, Any]:
    """The stats body from the campaign row and its tallies."""
    target = row.target_customer_count or row.total
    total = row.total
    pending = row.pending
    rate = row.accepted_last_10s / RATE_WINDOW_S
    estimate: datetime | None = None
    if row.status == "sending" and pending and rate > 0:
        estimate = now + timedelta(seconds=pending / rate)
    elif row.status == "completed":
        estimate = row.completed_at
    sent, delivered = row.messages_sent, row.messages_delivered
    return {
        "campaignId": row.id,
        "name": row.name,
        "status": row.status,
        "channel": row.channel,
        "target": target,
        "sent": sent,
        "delivered": delivered,
        "read": row.messages_read,
        "failed": {
            "total": row.messages_failed,
            "byErrorCode": [{"errorCode": f.error_code, "errorMessage": f.error_message,
                             "count": f.n} for f in failed],
        },
        "skipped": {"total": row.messages_skipped, "byReason": skipped},
        "optedOut": row.opted_out,
        "pending": pending,
        "awaitingDeliveryReport": row.awaiting,
        "progressPercent": round(100.0 * (total - pending) / total, 1) if total else 0.0,
        "currentRatePerSecond": round(rate, 1),
        "startedAt": row.started_at,
        "pausedAt": row.paused_at if row.status == "paused" else None,
        "completedAt": row.completed_at,
        "estimatedCompletionAt": estimate,
        "deliveryRate": _ratio(delivered, sent),
        "readRate": _ratio(row.messages_read, delivered),
        "registrationsAttributed": row.registrations,
        "conversionRate": _ratio(row.registrations, sent),
    }


@routes.get(_BASE + "/stats")
async def campaign_stats(request: web.Request) -> web.StreamResponse:
    """Delivery statistics of one campaign."""
    svc = services(request)
    salon_id, campaign_id = salon_of(request), request.match_info["id"]
    row = await db.campaign_stats(svc.pool, campaign_id, salon_id)
    if row is None:
        raise ApiError(404, f"campaign {campaign_id} not found in this salon")
    failed = await db.failed_by_code(svc.pool, campaign_id)
    skipped = await db.skipped_by_reason(svc.pool, campaign_id)
    return json_response(build_stats(row, failed, skipped, datetime.now(UTC)))


@routes.get(_BASE + "/messages")
async def campaign_messages(request: web.Request) -> web.StreamResponse:
    """Per-customer delivery of one campaign, with masked phone numbers, page by page."""
    svc = services(request)
    salon_id, campaign_id = salon_of(request), request.match_info["id"]
    status = query_choice(request, "status", MESSAGE_STATUSES)
    page = query_int(request, "page", 1, minimum=1)
    page_size = query_int(request, "pageSize", 50, minimum=1, maximum=500)
    if not await db.campaign_exists(svc.pool, campaign_id, salon_id):
        raise ApiError(404, f"campaign {campaign_id} not found in this salon")
    page_rows = await db.list_messages(svc.pool, campaign_id, salon_id, status, page_size,
                                       (page - 1) * page_size)
    items = [{
        "id": r.id,
        "customerId": r.imported_customer_id,
        "customerName": r.customer_name,
        "phone": mask_phone(svc.cipher.decrypt(r.normalized_phone_enc, "phone")),
        "channel": r.channel,
        "status": r.status,
        "twilioMessageSid": r.twilio_message_sid,
        "errorCode": r.error_code,
        "errorMessage": r.error_message,
        "skipReason": r.skip_reason,
        "fallbackFrom": r.fallback_from,
        "attempts": r.attempts,
        "queuedAt": r.queued_at,
        "sentAt": r.sent_at,
        "deliveredAt": r.delivered_at,
        "readAt": r.read_at,
    } for r in page_rows.items]
    return json_response({"items": items, "page": page, "pageSize": page_size,
                          "total": page_rows.total, "status": status})
