"""Admin API for invitation campaigns (spec §7.2): build, preview, target, send, pause, resume.

POST   /api/salons/{salonId}/invitation-campaigns              create a draft
GET    /api/salons/{salonId}/invitation-campaigns              list (?status=&page=&pageSize=)
POST   /api/salons/{salonId}/invitation-campaigns/preview      render a template for a customer
GET    /api/salons/{salonId}/invitation-campaigns/{id}         one campaign
PUT    /api/salons/{salonId}/invitation-campaigns/{id}         replace it (draft or scheduled)
DELETE /api/salons/{salonId}/invitation-campaigns/{id}         delete a draft
GET    /api/salons/{salonId}/invitation-campaigns/{id}/audience   count and a masked sample
POST   /api/salons/{salonId}/invitation-campaigns/{id}/send    now, or at scheduledFor
POST   /api/salons/{salonId}/invitation-campaigns/{id}/pause   stop new sends at once
POST   /api/salons/{salonId}/invitation-campaigns/{id}/resume  continue with the unsent
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from aiohttp import web

from onboardd.db import campaigns as db
from onboardd.domain.campaigns.validation import CampaignInput
from onboardd.domain.phones import mask_phone
from onboardd.runtime import Services
from onboardd.services import campaigns as service
from onboardd.services import sending_hours
from onboardd.web.body import query_choice, query_int, read_json
from onboardd.web.errors import json_response
from onboardd.web.keys import principal, salon_of, services

routes = web.RouteTableDef()

BASE: Final = "/api/salons/{salonId}/invitation-campaigns"
ONE: Final = BASE + "/{id}"
STATUSES: Final = ("draft", "scheduled", "sending", "completed", "paused")
MAX_PAGE_SIZE: Final = 100


class SendBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Optional body of /send: a time overrides the campaign's scheduledFor."""

    scheduled_for: datetime | None = None


class SentCampaign(db.Campaign, frozen=True, rename="camel"):
    """/send's answer: the campaign, and warnings (a moment outside the sending window)."""

    warnings: list[str] = msgspec.field(default_factory=list)


def _ids(request: web.Request) -> tuple[str, str]:
    return salon_of(request), request.match_info["id"]


@routes.post(BASE)
async def create_campaign(request: web.Request) -> web.StreamResponse:
    """Create a draft campaign."""
    body = await read_json(request, CampaignInput)
    created = await service.create(services(request), salon_of(request), principal(request).sub,
                                   body)
    return json_response(created, status=201)


@routes.get(BASE)
async def list_campaigns(request: web.Request) -> web.StreamResponse:
    """The salon's campaigns, newest first."""
    status = query_choice(request, "status", STATUSES)
    page = query_int(request, "page", 1, minimum=1)
    size = query_int(request, "pageSize", 20, minimum=1, maximum=MAX_PAGE_SIZE)
    found = await service.list_page(services(request), salon_of(request), status, page, size)
    return json_response({"items": found.items, "total": found.total, "page": page,
                          "pageSize": size})


@routes.get(ONE)
async def get_campaign(request: web.Request) -> web.StreamResponse:
    """One campaign."""
    salon_id, campaign_id = _ids(request)
    return json_response(await service.campaign(services(request), salon_id, campaign_id))


@routes.put(ONE)
async def update_campaign(request: web.Request) -> web.StreamResponse:
    """Replace a draft or scheduled campaign (a scheduled one without scheduledFor -> draft)."""
    salon_id, campaign_id = _ids(request)
    svc = services(request)
    # An unknown campaign is a 404 before its body is looked at.
    await service.campaign(svc, salon_id, campaign_id)
    body = await read_json(request, CampaignInput)
    return json_response(await service.update(svc, salon_id, campaign_id, body))


@routes.delete(ONE)
async def delete_campaign(request: web.Request) -> web.StreamResponse:
    """Delete a draft."""
    salon_id, campaign_id = _ids(request)
    await service.delete(services(request), salon_id, campaign_id)
    return web.Response(status=204)


@routes.get(ONE + "/audience")
async def campaign_audience(request: web.Request) -> web.StreamResponse:
    """How many customers the campaign targets now, and the first few (phones masked)."""
    salon_id, campaign_id = _ids(request)
    svc = services(request)
    view = await service.audience(svc, salon_id, campaign_id)
    return json_response({
        "count": view.count,
        "frozen": view.campaign.status not in service.EDITABLE,
        "targetCustomerCount": view.campaign.target_customer_count,
        "audience": view.campaign.audience,
        "sample": [_customer_json(svc, c) for c in view.sample],
    })


def _customer_json(svc: Services, customer: db.AudienceCustomer) -> dict[str, Any]:
    phone = svc.cipher.decrypt(customer.normalized_phone_enc, "phone")
    return {
        "id": customer.id,
        "customerName": customer.customer_name,
        "phone": mask_phone(phone),
        "status": customer.status,
        "importBatchId": customer.import_batch_id,
    }


@routes.post(ONE + "/send")
async def send_campaign(request: web.Request) -> web.StreamResponse:
    """Start sending now, or schedule it when scheduledFor (body or campaign) is in the future."""
    salon_id, campaign_id = _ids(request)
    svc = services(request)
    # An unknown campaign is a 404 before its body is looked at.
    await service.campaign(svc, salon_id, campaign_id)
    body = SendBody()
    if request.can_read_body:
        body = await read_json(request, SendBody)
    result = await service.send(svc, salon_id, campaign_id, body.scheduled_for)
    # Quiet hours: accepted either way; a moment outside the sending window is said.
    warnings = await sending_hours.send_warnings(
        svc, salon_id, result.scheduled_for if result.status == "scheduled" else None)
    sent = SentCampaign(**{name: getattr(result, name) for name in result.__struct_fields__},
                        warnings=warnings)
    return json_response(sent, status=202)


@routes.post(ONE + "/pause")
async def pause_campaign(request: web.Request) -> web.StreamResponse:
    """Stop new sends at once; messages in flight finish, every message keeps its state."""
    salon_id, campaign_id = _ids(request)
    return json_response(await service.pause(services(request), salon_id, campaign_id))


@routes.post(ONE + "/resume")
async def resume_campaign(request: web.Request) -> web.StreamResponse:
    """Continue a paused campaign with exactly the customers not yet sent."""
    salon_id, campaign_id = _ids(request)
    return json_response(await service.resume(services(request), salon_id, campaign_id))


@routes.post(BASE + "/preview")
async def preview(request: web.Request) -> web.StreamResponse:
    """Render a template for a chosen or sample customer: text, SMS encoding, warnings."""
    svc = services(request)
    body = await read_json(request, service.PreviewRequest)
    result = await service.preview(svc, salon_of(request), body)
    customer = result.customer
    return json_response({
        "text": result.text,
        "channel": result.channel,
        "encoding": result.sms.encoding,
        "characters": result.sms.characters,
        "segments": result.sms.segments,
        "nonGsmChars": result.sms.non_gsm_chars,
        "warnings": result.warnings,
        "contentVariables": result.content_variables,
        "customer": _customer_json(svc, customer) if customer else None,
        "sampleCustomer": customer is None,
        # Quiet hours: None when a send now starts at once, else when it would start.
        "sendingWindowNote": (await sending_hours.window(svc, salon_of(request))).start_note(
            datetime.now(UTC)),
    })
