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
from onboardd.db import offers as db_offers
from onboardd.domain import codes, templates
from onboardd.domain.campaigns import render
from onboardd.domain.campaigns.audience import Audience, AudienceError, check_audience
from onboardd.domain.campaigns.validation import (
    CampaignInput,
    CampaignProblem,
    check_campaign,
    check_channel,
    check_schedule,
)
from onboardd.domain.phones import mask_phone
from onboardd.runtime import CampaignWake, Services, nudge
from onboardd.web.body import query_choice, query_int, read_json
from onboardd.web.errors import ApiError, json_response
from onboardd.web.keys import principal, salon_of, services

routes = web.RouteTableDef()

BASE: Final = "/api/salons/{salonId}/invitation-campaigns"
ONE: Final = BASE + "/{id}"
STATUSES: Final = ("draft", "scheduled", "sending", "completed", "paused")
SAMPLE_SIZE: Final = 5
MAX_PAGE_SIZE: Final = 100
SAMPLE_NAME: Final = "Priya Sharma"


class SendBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Optional body of /send: a time overrides the campaign's scheduledFor."""

    scheduled_for: datetime | None = None


class PreviewBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """POST /preview: a template (or a stored campaign's) rendered for a customer."""

    message_template: str | None = None
    channel: str | None = None
    welcome_offer_id: str | None = None
    whatsapp_content_sid: str | None = None
    campaign_id: str | None = None
    customer_id: str | None = None
    audience: Audience | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _problem(exc: CampaignProblem | AudienceError) -> ApiError:
    return ApiError(422, str(exc), details={"field": exc.field})


def _ids(request: web.Request) -> tuple[str, str]:
    return salon_of(request), request.match_info["id"]


async def _campaign_or_404(svc: Services, salon_id: str, campaign_id: str) -> db.Campaign:
    found = await db.get(svc.pool, campaign_id, salon_id)
    if found is None:
        raise ApiError(404, f"no campaign {campaign_id!r} in this salon")
    return found


async def _offer_terms(svc: Services, salon_id: str, offer_id: str | None
                       ) -> render.OfferTerms | None:
    """The salon's offer as campaigns use it; None when there is none or it is another salon's."""
    if offer_id is None:
        return None
    row = await db_offers.get_offer(svc.pool, salon_id, offer_id)
    if row is None:
        return None
    return render.OfferTerms(row.discount_type, row.discount_value, row.validity_days,
                             is_active=row.is_active == 1)


async def _checked_body(request: web.Request, salon_id: str) -> CampaignInput:
    body = await read_json(request, CampaignInput)
    svc = services(request)
    try:
        return check_campaign(
            body, offer=await _offer_terms(svc, salon_id, body.welcome_offer_id), now=_now())
    except CampaignProblem as exc:
        raise _problem(exc) from None


@routes.post(BASE)
async def create_campaign(request: web.Request) -> web.StreamResponse:
    """Create a draft campaign."""
    salon_id = salon_of(request)
    body = await _checked_body(request, salon_id)
    created = await db.create(services(request).pool, salon_id, principal(request).sub, body)
    return json_response(created, status=201)


@routes.get(BASE)
async def list_campaigns(request: web.Request) -> web.StreamResponse:
    """The salon's campaigns, newest first."""
    salon_id = salon_of(request)
    status = query_choice(request, "status", STATUSES)
    page = query_int(request, "page", 1, minimum=1)
    size = query_int(request, "pageSize", 20, minimum=1, maximum=MAX_PAGE_SIZE)
    items, total = await db.list_for_salon(services(request).pool, salon_id, status, size,
                                           (page - 1) * size)
    return json_response({"items": items, "total": total, "page": page, "pageSize": size})


@routes.get(ONE)
async def get_campaign(request: web.Request) -> web.StreamResponse:
    """One campaign."""
    salon_id, campaign_id = _ids(request)
    return json_response(await _campaign_or_404(services(request), salon_id, campaign_id))


@routes.put(ONE)
async def update_campaign(request: web.Request) -> web.StreamResponse:
    """Replace a draft or scheduled campaign (a scheduled one without scheduledFor -> draft)."""
    salon_id, campaign_id = _ids(request)
    svc = services(request)
    current = await _campaign_or_404(svc, salon_id, campaign_id)
    body = await _checked_body(request, salon_id)
    updated = await db.update(svc.pool, campaign_id, salon_id, body)
    if updated is None:
        raise ApiError(409, f"campaign is {current.status}: only draft or scheduled campaigns "
                       "can be edited", details={"status": current.status})
    return json_response(updated)


@routes.delete(ONE)
async def delete_campaign(request: web.Request) -> web.StreamResponse:
    """Delete a draft."""
    salon_id, campaign_id = _ids(request)
    svc = services(request)
    current = await _campaign_or_404(svc, salon_id, campaign_id)
    if not await db.delete_draft(svc.pool, campaign_id, salon_id):
        raise ApiError(409, f"campaign is {current.status}: only drafts can be deleted",
                       details={"status": current.status})
    return web.Response(status=204)


@routes.get(ONE + "/audience")
async def campaign_audience(request: web.Request) -> web.StreamResponse:
    """How many customers the campaign targets now, and the first few (phones masked)."""
    salon_id, campaign_id = _ids(request)
    svc = services(request)
    campaign = await _campaign_or_404(svc, salon_id, campaign_id)
    count = await db.audience_count(svc.pool, salon_id, campaign.audience)
    sample = await db.audience_sample(svc.pool, salon_id, campaign.audience, SAMPLE_SIZE)
    return json_response({
        "count": count,
        "frozen": campaign.status not in ("draft", "scheduled"),
        "targetCustomerCount": campaign.target_customer_count,
        "audience": campaign.audience,
        "sample": [_customer_json(svc, c) for c in sample],
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
    campaign = await _campaign_or_404(svc, salon_id, campaign_id)
    body = SendBody()
    if request.can_read_body:
        body = await read_json(request, SendBody)
    when = body.scheduled_for if body.scheduled_for is not None else campaign.scheduled_for
    if campaign.status not in ("draft", "scheduled"):
        raise ApiError(409, f"campaign is {campaign.status}: only a draft or scheduled campaign "
                       "can be sent" + (" (use /resume)" if campaign.status == "paused" else ""),
                       details={"status": campaign.status})
    await _recheck_offer(svc, campaign)
    if when is not None:
        try:
            check_schedule(when, _now())
        except CampaignProblem as exc:
            raise _problem(exc) from None
        scheduled = await db.schedule(svc.pool, campaign_id, salon_id, when)
        if scheduled is None:
            raise ApiError(409, "campaign changed state meanwhile; reload it")
        return json_response(scheduled, status=202)
    try:
        started = await db.start(svc.pool, campaign_id, salon_id)
    except LookupError:
        raise ApiError(404, f"no campaign {campaign_id!r} in this salon") from None
    except db.WrongState as exc:
        raise ApiError(409, f"campaign is {exc.status}: it cannot be sent",
                       details={"status": exc.status}) from None
    except db.CampaignConflict:
        raise _conflict() from None
    except db.EmptyAudience:
        raise ApiError(422, "audience: no customer matches this campaign's audience; change "
                       "audience.status / importBatchIds / importedAfter, or import customers "
                       "first", details={"field": "audience"}) from None
    nudge(svc.queues.campaigns, CampaignWake("campaign_changed", campaign_id))
    return json_response(started, status=202)


async def _recheck_offer(svc: Services, campaign: db.Campaign) -> None:
    """The offer may have been deactivated since the campaign was written."""
    if campaign.welcome_offer_id is None:
        return
    offer = await _offer_terms(svc, campaign.salon_id, campaign.welcome_offer_id)
    if offer is None or not offer.is_active:
        raise ApiError(422, f"welcomeOfferId: welcome offer {campaign.welcome_offer_id!r} is "
                       "no longer active: activate it or edit the campaign",
                       details={"field": "welcomeOfferId"})


def _conflict() -> ApiError:
    return ApiError(409, "another campaign of this salon is sending: pause it or wait until it "
                    "completes (one campaign sends at a time)", code="campaign_already_sending")


@routes.post(ONE + "/pause")
async def pause_campaign(request: web.Request) -> web.StreamResponse:
    """Stop new sends at once; messages in flight finish, every message keeps its state."""
    salon_id, campaign_id = _ids(request)
    svc = services(request)
    current = await _campaign_or_404(svc, salon_id, campaign_id)
    paused = await db.pause(svc.pool, campaign_id, salon_id)
    if paused is None:
        raise ApiError(409, f"campaign is {current.status}: only a sending campaign can be "
                       "paused", details={"status": current.status})
    nudge(svc.queues.campaigns, CampaignWake("campaign_changed", campaign_id))
    return json_response(paused)


@routes.post(ONE + "/resume")
async def resume_campaign(request: web.Request) -> web.StreamResponse:
    """Continue a paused campaign with exactly the customers not yet sent."""
    salon_id, campaign_id = _ids(request)
    svc = services(request)
    current = await _campaign_or_404(svc, salon_id, campaign_id)
    try:
        resumed = await db.resume(svc.pool, campaign_id, salon_id)
    except db.CampaignConflict:
        raise _conflict() from None
    if resumed is None:
        raise ApiError(409, f"campaign is {current.status}: only a paused campaign can be "
                       "resumed", details={"status": current.status})
    nudge(svc.queues.campaigns, CampaignWake("campaign_changed", campaign_id))
    return json_response(resumed)


@routes.post(BASE + "/preview")
async def preview(request: web.Request) -> web.StreamResponse:
    """Render a template for a chosen or sample customer: text, SMS encoding, warnings."""
    salon_id = salon_of(request)
    svc = services(request)
    body = await read_json(request, PreviewBody)
    stored = None
    if body.campaign_id is not None:
        stored = await _campaign_or_404(svc, salon_id, body.campaign_id)
    template = body.message_template or (stored.message_template if stored
                                         else templates.DEFAULT_TEMPLATE)
    channel = body.channel or (stored.channel if stored else "whatsapp")
    offer_id = body.welcome_offer_id or (stored.welcome_offer_id if stored else None)
    content_sid = body.whatsapp_content_sid or (stored.whatsapp_content_sid if stored else None)
    try:
        check_channel(channel)
        templates.check_template(template)
    except CampaignProblem as exc:
        raise _problem(exc) from None
    except templates.TemplateError as exc:
        raise ApiError(422, f"messageTemplate: {exc}", details={"field": "messageTemplate"}
                       ) from None
    offer = await _preview_offer(svc, salon_id, offer_id)
    salon = await db.salon(svc.pool, salon_id)
    customer = await _preview_customer(svc, salon_id, body, stored)
    ctx = render.context(
        customer_name=customer.customer_name if customer else SAMPLE_NAME,
        salon_name=salon.name if salon else "",
        offer=offer,
        offer_code=(customer.offer_code if customer and customer.offer_code
                    else codes.generate_offer_code()),
        app_link=salon.app_download_link if salon else None,
        token=(customer.download_token if customer and customer.download_token
               else codes.download_token()),
        default_expiry_days=svc.cfg.offers.invitation_expiry_days)
    text = templates.render(template, ctx)
    info = templates.sms_info(text)
    return json_response({
        "text": text,
        "channel": channel,
        "encoding": info.encoding,
        "characters": info.characters,
        "segments": info.segments,
        "nonGsmChars": info.non_gsm_chars,
        "warnings": templates.preview_warnings(text, channel, content_sid is not None,
                                               svc.cfg.campaigns.max_segments),
        "contentVariables": templates.variables_for_contentsid(ctx) if content_sid else None,
        "customer": _customer_json(svc, customer) if customer else None,
        "sampleCustomer": customer is None,
    })


async def _preview_offer(svc: Services, salon_id: str, offer_id: str | None
                         ) -> render.OfferTerms | None:
    offer = await _offer_terms(svc, salon_id, offer_id)
    if offer_id is not None and offer is None:
        raise ApiError(422, f"welcomeOfferId: no welcome offer {offer_id!r} in this salon",
                       details={"field": "welcomeOfferId"})
    return offer


async def _preview_customer(svc: Services, salon_id: str, body: PreviewBody,
                            stored: db.Campaign | None) -> db.AudienceCustomer | None:
    """The chosen customer (404 if not in this salon), else the audience's first, else None."""
    if body.customer_id is not None:
        found = await db.customer(svc.pool, body.customer_id, salon_id)
        if found is None:
            raise ApiError(404, f"no imported customer {body.customer_id!r} in this salon")
        return found
    audience = body.audience or (stored.audience if stored else Audience())
    try:
        audience = check_audience(audience)
    except AudienceError as exc:
        raise _problem(exc) from None
    sample = await db.audience_sample(svc.pool, salon_id, audience, 1)
    return sample[0] if sample else None
