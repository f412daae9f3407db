"""The delivery area's service: a campaign's delivery statistics and its per-customer list,
and what an inbound STOP / START / HELP from a customer changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from onboardd.db import delivery as db
from onboardd.db import delivery_stats as stats_db
from onboardd.db.delivery_stats import CampaignStats, FailedCode
from onboardd.domain.analytics import rate as ratio
from onboardd.domain.keywords import classify_inbound
from onboardd.domain.phones import mask_phone
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.services import sending_hours
from onboardd.services.errors import ServiceError

log = get_logger("delivery")

MessageStatus = Literal["pending", "sending", "queued", "sent", "delivered", "read", "failed",
                        "undelivered", "skipped"]
RATE_WINDOW_S: Final = 10


def _not_found(campaign_id: str) -> ServiceError:
    return ServiceError("not_found", f"campaign {campaign_id} not found in this salon")


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
        "deliveryRate": ratio(delivered, sent),
        "readRate": ratio(row.messages_read, delivered),
        "registrationsAttributed": row.registrations,
        "conversionRate": ratio(row.registrations, sent),
    }


async def campaign_stats(services: Services, salon_id: str, campaign_id: str) -> dict[str, Any]:
    """Delivery statistics of one campaign of the salon."""
    row = await stats_db.campaign_stats(services.pool, campaign_id, salon_id)
    if row is None:
        raise _not_found(campaign_id)
    failed = await stats_db.failed_by_code(services.pool, campaign_id)
    skipped = await stats_db.skipped_by_reason(services.pool, campaign_id)
    stats = build_stats(row, failed, skipped, datetime.now(UTC))
    # Quiet hours: what is not sent yet of a sending campaign waits while the window is shut.
    window = (await sending_hours.window(services, salon_id)).view()
    held = row.pending if row.status == "sending" and not window["openNow"] else 0
    stats["waitingForWindow"] = held
    stats["sendingWindow"] = window
    if held:
        stats["estimatedCompletionAt"] = None
    return stats


async def campaign_messages(services: Services, salon_id: str, campaign_id: str,
                            status: str | None, page: int, page_size: int) -> dict[str, Any]:
    """One page of a campaign's per-customer delivery, phone numbers masked."""
    if not await stats_db.campaign_exists(services.pool, campaign_id, salon_id):
        raise _not_found(campaign_id)
    rows = await stats_db.list_messages(services.pool, campaign_id, salon_id, status, page_size,
                                        (page - 1) * page_size)
    items = [{
        "id": r.id,
        "customerId": r.imported_customer_id,
        "customerName": r.customer_name,
        "phone": mask_phone(services.cipher.decrypt(r.normalized_phone_enc, "phone")),
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
    } for r in rows.items]
    return {"items": items, "page": page, "pageSize": page_size, "total": rows.total,
            "status": status}


async def inbound(services: Services, message_sid: str | None, phone: str, sender: str,
                  text: str) -> None:
    """A customer's message to a sender: STOP words opt the number out for that sender (and
    skip its unsent invitations), START opts it back in, anything else is noted. A redelivered
    webhook (the same MessageSid) changes nothing: acting again could undo a later START/STOP."""
    kind = classify_inbound(text)
    phone_hash = services.cipher.phone_hash(phone)
    if not await db.record_inbound(services.pool, message_sid, phone_hash, sender, kind):
        return
    if kind == "stop":
        result = await db.opt_out(services.pool, phone_hash, sender, "inbound_stop",
                                  services.cfg.campaigns.delivery_wait_s)
        log.info("opted_out", phone=mask_phone(phone), sender=sender,
                 customers=result.customers, messages_skipped=result.messages_skipped)
    elif kind == "start":
        restored = await db.opt_in(services.pool, phone_hash, sender)
        log.info("opted_in", phone=mask_phone(phone), sender=sender, customers=restored)
    else:
        log.info("inbound_message", phone=mask_phone(phone), sender=sender, kind=kind)
