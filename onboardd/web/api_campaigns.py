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
from typing import Annotated, Final, Literal

import msgspec
from aiohttp import web

from onboardd.db import campaigns as db
from onboardd.domain.campaigns.audience import Audience
from onboardd.domain.campaigns.validation import CampaignInput
from onboardd.domain.phones import mask_phone
from onboardd.runtime import Services
from onboardd.services import campaigns as service
from onboardd.services import sending_hours
from onboardd.web.body import QUERY_INT_MAX, read_json, read_query
from onboardd.web.contract import follow, operation
from onboardd.web.errors import json_response
from onboardd.web.keys import principal, salon_of, services

routes = web.RouteTableDef()

BASE: Final = "/api/salons/{salonId}/invitation-campaigns"
ONE: Final = BASE + "/{id}"
MAX_PAGE_SIZE: Final = 100
NOT_EDITABLE: Final = {409: "The campaign is no longer a draft or scheduled"}


class SendBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Optional body of /send: a time overrides the campaign's scheduledFor."""

    scheduled_for: datetime | None = None


class SentCampaign(db.Campaign, frozen=True, rename="camel"):
    """/send's answer: the campaign, and warnings (a moment outside the sending window)."""

    warnings: list[str] = msgspec.field(default_factory=list)


class ListQuery(msgspec.Struct, frozen=True, rename="camel"):
    """Filter and page of the campaign list."""

    status: Literal["draft", "scheduled", "sending", "completed", "paused"] | None = None
    page: Annotated[int, msgspec.Meta(ge=1, le=QUERY_INT_MAX)] = 1
    page_size: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE_SIZE)] = 20


class CampaignList(msgspec.Struct, frozen=True, rename="camel"):
    """A page of the salon's campaigns, newest first."""

    items: list[db.Campaign]
    total: int
    page: int
    page_size: int


class TargetedCustomer(msgspec.Struct, frozen=True, rename="camel"):
    """A customer a campaign targets, phone masked."""

    id: str
    customer_name: str
    phone: str
    status: str
    import_batch_id: str | None


class AudienceView(msgspec.Struct, frozen=True, rename="camel"):
    """How many customers the campaign targets, and the first few."""

    count: int
    frozen: bool
    target_customer_count: int
    audience: Audience
    sample: list[TargetedCustomer]


class TemplatePreview(msgspec.Struct, frozen=True, rename="camel"):
    """A template rendered for one customer: text, SMS encoding and segments, warnings."""

    text: str
    channel: str
    encoding: Literal["GSM-7", "UCS-2"]
    characters: int
    segments: int
    non_gsm_chars: list[str]
    warnings: list[str]
    content_variables: dict[str, str] | None
    customer: TargetedCustomer | None
    sample_customer: bool
    # Quiet hours: None when a send now starts at once, else when it would start.
    sending_window_note: str | None


def _ids(request: web.Request) -> tuple[str, str]:
    return salon_of(request), request.match_info["id"]


@routes.post(BASE)
@operation("Create a draft campaign", body=CampaignInput, answers={201: db.Campaign},
           links={201: {
               name: follow(method, path, id="$response.body#/id")
               for name, method, path in (
                   ("GetCampaign", "get", ONE), ("UpdateCampaign", "put", ONE),
                   ("DeleteCampaign", "delete", ONE), ("Audience", "get", ONE + "/audience"),
                   ("Send", "post", ONE + "/send"), ("Pause", "post", ONE + "/pause"),
                   ("Resume", "post", ONE + "/resume"), ("Stats", "get", ONE + "/stats"),
                   ("Messages", "get", ONE + "/messages"))}})
async def create_campaign(request: web.Request) -> web.StreamResponse:
    """Create a draft campaign."""
    body = await read_json(request, CampaignInput)
    created = await service.create(services(request), salon_of(request), principal(request).sub,
                                   body)
    return json_response(created, status=201)


@routes.get(BASE)
@operation("The salon's campaigns, newest first", query=ListQuery,
           answers={200: CampaignList})
async def list_campaigns(request: web.Request) -> web.StreamResponse:
    """The salon's campaigns, newest first."""
    q = read_query(request, ListQuery)
    found = await service.list_page(services(request), salon_of(request), q.status, q.page,
                                    q.page_size)
    return json_response(CampaignList(items=found.items, total=found.total, page=q.page,
                                      page_size=q.page_size))


@routes.get(ONE)
@operation("One campaign", answers={200: db.Campaign})
async def get_campaign(request: web.Request) -> web.StreamResponse:
    """One campaign."""
    salon_id, campaign_id = _ids(request)
    return json_response(await service.campaign(services(request), salon_id, campaign_id))


@routes.put(ONE)
@operation("Replace a draft or scheduled campaign", body=CampaignInput,
           answers={200: db.Campaign}, refusals=NOT_EDITABLE)
async def update_campaign(request: web.Request) -> web.StreamResponse:
    """Replace a draft or scheduled campaign (a scheduled one without scheduledFor -> draft)."""
    salon_id, campaign_id = _ids(request)
    svc = services(request)
    # An unknown campaign is a 404 before its body is looked at.
    await service.campaign(svc, salon_id, campaign_id)
    body = await read_json(request, CampaignInput)
    return json_response(await service.update(svc, salon_id, campaign_id, body))


@routes.delete(ONE)
@operation("Delete a draft", answers={204: None},
           refusals={409: "Only a draft can be deleted"})
async def delete_campaign(request: web.Request) -> web.StreamResponse:
    """Delete a draft."""
    salon_id, campaign_id = _ids(request)
    await service.delete(services(request), salon_id, campaign_id)
    return web.Response(status=204)


@routes.get(ONE + "/audience")
@operation("How many customers the campaign targets now, and a masked sample",
           answers={200: AudienceView})
async def campaign_audience(request: web.Request) -> web.StreamResponse:
    """How many customers the campaign targets now, and the first few (phones masked)."""
    salon_id, campaign_id = _ids(request)
    svc = services(request)
    view = await service.audience(svc, salon_id, campaign_id)
    return json_response(AudienceView(
        count=view.count, frozen=view.campaign.status not in service.EDITABLE,
        target_customer_count=view.campaign.target_customer_count,
        audience=view.campaign.audience, sample=[_targeted(svc, c) for c in view.sample]))


def _targeted(svc: Services, customer: db.AudienceCustomer) -> TargetedCustomer:
    phone = svc.cipher.decrypt(customer.normalized_phone_enc, "phone")
    return TargetedCustomer(id=customer.id, customer_name=customer.customer_name,
                            phone=mask_phone(phone), status=customer.status,
                            import_batch_id=customer.import_batch_id)


@routes.post(ONE + "/send")
@operation("Start sending now, or schedule it for scheduledFor", body=SendBody,
           body_optional=True, answers={202: SentCampaign},
           refusals={409: "The campaign cannot be sent in its state, or another campaign of "
                          "the salon is sending (code campaign_already_sending)"})
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
@operation("Stop new sends at once", answers={200: db.Campaign},
           refusals={409: "Only a sending campaign can be paused"})
async def pause_campaign(request: web.Request) -> web.StreamResponse:
    """Stop new sends at once; messages in flight finish, every message keeps its state."""
    salon_id, campaign_id = _ids(request)
    return json_response(await service.pause(services(request), salon_id, campaign_id))


@routes.post(ONE + "/resume")
@operation("Continue a paused campaign with the customers not yet sent",
           answers={200: db.Campaign},
           refusals={409: "Only a paused campaign can be resumed"})
async def resume_campaign(request: web.Request) -> web.StreamResponse:
    """Continue a paused campaign with exactly the customers not yet sent."""
    salon_id, campaign_id = _ids(request)
    return json_response(await service.resume(services(request), salon_id, campaign_id))


@routes.post(BASE + "/preview")
@operation("Render a template for a chosen or sample customer", body=service.PreviewRequest,
           answers={200: TemplatePreview})
async def preview(request: web.Request) -> web.StreamResponse:
    """Render a template for a chosen or sample customer: text, SMS encoding, warnings."""
    svc = services(request)
    body = await read_json(request, service.PreviewRequest)
    result = await service.preview(svc, salon_of(request), body)
    customer = result.customer
    note = (await sending_hours.window(svc, salon_of(request))).start_note(datetime.now(UTC))
    return json_response(TemplatePreview(
        text=result.text, channel=result.channel, encoding=result.sms.encoding,
        characters=result.sms.characters, segments=result.sms.segments,
        non_gsm_chars=result.sms.non_gsm_chars, warnings=result.warnings,
        content_variables=result.content_variables,
        customer=_targeted(svc, customer) if customer else None,
        sample_customer=customer is None, sending_window_note=note))
