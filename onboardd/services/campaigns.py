"""Invitation campaigns (spec §7.2): build, check, schedule, start, pause, resume, preview.

The send start is one transaction: the campaign's state rule, the salon's one sending
campaign, the audience frozen into messages, and an offer code and download token drawn for
every targeted customer lacking one. The statements are in onboardd.db.campaigns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

import asyncpg
import msgspec

from onboardd.db import campaigns as db
from onboardd.db import delivery as delivery_db
from onboardd.db import imports as imports_db
from onboardd.db import offers as db_offers
from onboardd.db.retry import in_transaction
from onboardd.domain import codes, templates
from onboardd.domain.campaigns import render
from onboardd.domain.campaigns.audience import (
    TARGETABLE,
    Audience,
    AudienceError,
    check_audience,
)
from onboardd.domain.campaigns.validation import (
    CampaignInput,
    CampaignProblem,
    check_campaign,
    check_channel,
    check_schedule,
)
from onboardd.domain.offers import Offer
from onboardd.domain.phones import mask_phone
from onboardd.runtime import CampaignWake, Services, nudge
from onboardd.services.errors import ServiceError, invalid_field

# How many times send start draws offer codes for customers whose candidates were taken.
CODE_ROUNDS: Final = 8
SAMPLE_SIZE: Final = 5
SAMPLE_NAME: Final = "Priya Sharma"
EDITABLE: Final = ("draft", "scheduled")
BATCH_CHOICES: Final = 200


def _now() -> datetime:
    return datetime.now(UTC)


def _problem(exc: CampaignProblem | AudienceError) -> ServiceError:
    return ServiceError("invalid", str(exc), details={"field": exc.field})


def _wrong_state(status: str, sentence: str) -> ServiceError:
    return ServiceError("conflict", f"campaign is {status}: {sentence}",
                        details={"status": status})


def _busy() -> ServiceError:
    return ServiceError("conflict", "another campaign of this salon is sending: pause it or wait "
                        "until it completes (one campaign sends at a time)",
                        code="campaign_already_sending")


def _empty() -> ServiceError:
    return ServiceError("invalid", "audience: no customer matches this campaign's audience; "
                        "change audience.status / importBatchIds / importedAfter / "
                        "funnelStage, or import customers first", details={"field": "audience"})


async def campaign(services: Services, salon_id: str, campaign_id: str) -> db.Campaign:
    """One campaign of the salon."""
    found = await db.get(services.pool, campaign_id, salon_id)
    if found is None:
        raise ServiceError("not_found", f"no campaign {campaign_id!r} in this salon")
    return found


async def _offer(services: Services, salon_id: str, offer_id: str | None) -> Offer | None:
    """The salon's offer; None when there is none or it is another salon's."""
    if offer_id is None:
        return None
    return await db_offers.get_offer(services.pool, salon_id, offer_id)


async def _checked(services: Services, salon_id: str, body: CampaignInput) -> CampaignInput:
    try:
        checked = check_campaign(
            body, offer=await _offer(services, salon_id, body.welcome_offer_id), now=_now())
    except CampaignProblem as exc:
        raise _problem(exc) from None
    await _check_audience_campaign(services, salon_id, checked.audience)
    return checked


async def _check_audience_campaign(services: Services, salon_id: str, chosen: Audience) -> None:
    """An audience naming a campaign must name one of this salon's."""
    other = chosen.campaign_id
    if other is not None and await db.get(services.pool, other, salon_id) is None:
        raise invalid_field("audience.campaignId", f"no campaign {other!r} in this salon")


async def create(services: Services, salon_id: str, created_by: str, body: CampaignInput
                 ) -> db.Campaign:
    """Create a draft campaign."""
    return await db.create(services.pool, salon_id, created_by,
                           await _checked(services, salon_id, body))


async def list_page(services: Services, salon_id: str, status: str | None, page: int,
                    size: int) -> db.CampaignPage:
    """One page of the salon's campaigns, newest first, and the total."""
    return await db.list_for_salon(services.pool, salon_id, status, size, (page - 1) * size)


async def update(services: Services, salon_id: str, campaign_id: str, body: CampaignInput
                 ) -> db.Campaign:
    """Replace a draft or scheduled campaign (a scheduled one without scheduledFor -> draft)."""
    current = await campaign(services, salon_id, campaign_id)
    updated = await db.update(services.pool, campaign_id, salon_id,
                              await _checked(services, salon_id, body))
    if updated is None:
        raise _wrong_state(current.status, "only draft or scheduled campaigns can be edited")
    return updated


async def delete(services: Services, salon_id: str, campaign_id: str) -> None:
    """Delete a draft."""
    current = await campaign(services, salon_id, campaign_id)
    if not await db.delete_draft(services.pool, campaign_id, salon_id):
        raise _wrong_state(current.status, "only drafts can be deleted")


class AudienceView(msgspec.Struct, frozen=True):
    """How many customers a campaign targets now, and the first few."""

    campaign: db.Campaign
    count: int
    sample: list[db.AudienceCustomer]


async def audience(services: Services, salon_id: str, campaign_id: str) -> AudienceView:
    """The campaign's audience as it stands now."""
    found = await campaign(services, salon_id, campaign_id)
    count = await db.audience_count(services.pool, salon_id, found.audience)
    sample = await db.audience_sample(services.pool, salon_id, found.audience, SAMPLE_SIZE)
    return AudienceView(found, count, sample)


async def audience_size(services: Services, salon_id: str, chosen: Audience) -> int:
    """How many customers an audience filter targets now, without a campaign (the builder's
    live count)."""
    try:
        checked = check_audience(chosen)
    except AudienceError as exc:
        raise _problem(exc) from None
    await _check_audience_campaign(services, salon_id, checked)
    return await db.audience_count(services.pool, salon_id, checked)


async def preview_customers(services: Services, salon_id: str, limit: int
                            ) -> list[db.AudienceCustomer]:
    """A few customers a campaign could target, to preview a message for."""
    return await db.audience_sample(services.pool, salon_id, Audience(status=list(TARGETABLE)),
                                    limit)


async def import_batches(services: Services, salon_id: str) -> list[db.BatchChoice]:
    """The salon's import batches an audience may name, newest first."""
    return await db.import_batches(services.pool, salon_id, BATCH_CHOICES)


class NamedCustomer(msgspec.Struct, frozen=True):
    """A customer the builder names, the number masked ('+91******3210')."""

    id: str
    customer_name: str
    phone_masked: str


async def builder_customers(services: Services, salon_id: str, *, choices: int,
                            previewed: db.AudienceCustomer | None, actor: str,
                            request_id: str) -> tuple[list[NamedCustomer], NamedCustomer | None]:
    """Up to ``choices`` customers to preview a message for, and the previewed one, with their
    numbers decrypted only to mask them; the read is logged once to pii_access_log."""
    found = await preview_customers(services, salon_id, choices) if choices > 0 else []
    decrypt = services.cipher.decrypt
    named = [NamedCustomer(c.id, c.customer_name,
                           mask_phone(decrypt(c.normalized_phone_enc, "phone")))
             for c in [*found, *([previewed] if previewed else [])]]
    if named:
        await imports_db.log_pii_access(
            services.pool, actor=actor, salon_id=salon_id, action="builder_sample_customers",
            record_count=len({c.id for c in named}),
            details={"choices": len(found), "previewed": previewed.id if previewed else None,
                     "phones": "masked"}, request_id=request_id,
            customer_ids=list(dict.fromkeys(c.id for c in named)))
    return named[:len(found)], (named[-1] if previewed else None)


# -- send start, schedule, pause, resume -------------------------------------------------------

async def _assign_codes(conn: asyncpg.Connection, campaign_id: str) -> None:
    """Give every targeted customer lacking one an offer code and a download token."""
    for _ in range(CODE_ROUNDS):
        ids = await db.customers_lacking_codes(conn, campaign_id)
        if not ids:
            return
        offer_codes: set[str] = set()
        while len(offer_codes) < len(ids):
            offer_codes.add(codes.generate_offer_code())
        tokens = [codes.download_token() for _ in ids]
        try:
            async with conn.transaction():  # a savepoint: a racing salon may take a code
                await db.assign_codes(conn, ids, list(offer_codes), tokens)
        except asyncpg.UniqueViolationError:
            continue
    raise RuntimeError(f"could not draw unique offer codes in {CODE_ROUNDS} rounds")


async def start(pool: asyncpg.Pool, campaign_id: str, salon_id: str,
                allowed: Sequence[str] = EDITABLE) -> db.Campaign:
    """In one transaction: status sending, audience frozen into messages, codes assigned.

    Raises ServiceError: not_found; conflict (a status not in ``allowed``: details.status; or
    code campaign_already_sending); invalid (the audience matches no customer).
    """

    async def work(conn: asyncpg.Connection) -> db.Campaign:
        current = await db.lock(conn, campaign_id, salon_id)
        if current is None:
            raise ServiceError("not_found", f"no campaign {campaign_id!r} in this salon")
        if current.status not in allowed:
            raise _wrong_state(current.status, "it cannot be sent")
        try:
            async with conn.transaction():
                await db.set_sending(conn, campaign_id, salon_id)
        except asyncpg.UniqueViolationError:
            raise _busy() from None
        first_channel = "sms" if current.channel == "sms" else "whatsapp"
        if await db.freeze_audience(conn, current, first_channel) == 0:
            raise _empty()
        await _assign_codes(conn, campaign_id)
        return await db.set_target(conn, campaign_id)

    # Assigning codes locks thousands of customer rows, which the offer matcher and imports
    # also write: a deadlock aborts the whole start, which is then simply run again.
    return await in_transaction(pool, work, what="campaign_start")


async def _recheck_offer(services: Services, found: db.Campaign) -> None:
    """The offer may have been deactivated since the campaign was written."""
    if found.welcome_offer_id is None:
        return
    offer = await _offer(services, found.salon_id, found.welcome_offer_id)
    if offer is None or not offer.is_active:
        raise invalid_field("welcomeOfferId", f"welcome offer {found.welcome_offer_id!r} is no "
                            "longer active: activate it or edit the campaign")


async def send(services: Services, salon_id: str, campaign_id: str,
               scheduled_for: datetime | None) -> db.Campaign:
    """Start sending now, or schedule it when a time (given, else the campaign's) is set; the
    result's status says which."""
    found = await campaign(services, salon_id, campaign_id)
    when = scheduled_for if scheduled_for is not None else found.scheduled_for
    if found.status not in EDITABLE:
        raise _wrong_state(found.status, "only a draft or scheduled campaign can be sent" + (
            " (use /resume)" if found.status == "paused" else ""))
    await _recheck_offer(services, found)
    if when is not None:
        try:
            check_schedule(when, _now())
        except CampaignProblem as exc:
            raise _problem(exc) from None
        scheduled = await db.schedule(services.pool, campaign_id, salon_id, when)
        if scheduled is None:
            raise ServiceError("conflict", "campaign changed state meanwhile; reload it")
        return scheduled
    started = await start(services.pool, campaign_id, salon_id)
    nudge(services.queues.campaigns, CampaignWake("campaign_changed", campaign_id))
    return started


async def pause(services: Services, salon_id: str, campaign_id: str) -> db.Campaign:
    """Stop new sends at once; messages in flight finish, every message keeps its state."""
    current = await campaign(services, salon_id, campaign_id)
    paused = await db.pause(services.pool, campaign_id, salon_id)
    if paused is None:
        raise _wrong_state(current.status, "only a sending campaign can be paused")
    nudge(services.queues.campaigns, CampaignWake("campaign_changed", campaign_id))
    return paused


async def resume(services: Services, salon_id: str, campaign_id: str) -> db.Campaign:
    """Continue a paused campaign with exactly the customers not yet sent."""
    current = await campaign(services, salon_id, campaign_id)
    try:
        resumed = await db.resume(services.pool, campaign_id, salon_id)
    except asyncpg.UniqueViolationError:
        raise _busy() from None
    if resumed is None:
        raise _wrong_state(current.status, "only a paused campaign can be resumed")
    # Every message may have settled while it was paused: then it is complete now, not at the
    # next reconciliation pass.
    if await delivery_db.complete_campaigns(services.pool, services.cfg.campaigns.delivery_wait_s,
                                            [campaign_id]):
        return await campaign(services, salon_id, campaign_id)
    nudge(services.queues.campaigns, CampaignWake("campaign_changed", campaign_id))
    return resumed


# -- preview ----------------------------------------------------------------------------------

class PreviewRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """A template (or a stored campaign's) to render for a customer."""

    message_template: str | None = None
    channel: str | None = None
    welcome_offer_id: str | None = None
    whatsapp_content_sid: str | None = None
    campaign_id: str | None = None
    customer_id: str | None = None
    audience: Audience | None = None


class Preview(msgspec.Struct, frozen=True):
    """A rendered template and what the admin should know about it."""

    text: str
    channel: str
    sms: templates.SmsInfo
    warnings: list[str]
    content_variables: dict[str, str] | None
    customer: db.AudienceCustomer | None


async def preview(services: Services, salon_id: str, body: PreviewRequest) -> Preview:
    """Render a template for a chosen or sample customer: text, SMS encoding, warnings."""
    stored = None
    if body.campaign_id is not None:
        stored = await campaign(services, salon_id, body.campaign_id)
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
        raise invalid_field("messageTemplate", str(exc)) from None
    offer = await _offer(services, salon_id, offer_id)
    if offer_id is not None and offer is None:
        raise invalid_field("welcomeOfferId", f"no welcome offer {offer_id!r} in this salon")
    salon = await db.salon(services.pool, salon_id)
    customer = await _preview_customer(services, salon_id, body, stored)
    ctx = render.context(
        customer_name=customer.customer_name if customer else SAMPLE_NAME,
        salon_name=salon.name if salon else "",
        offer=offer,
        offer_code=(customer.offer_code if customer and customer.offer_code
                    else codes.generate_offer_code()),
        app_link=salon.app_download_link if salon else None,
        token=(customer.download_token if customer and customer.download_token
               else codes.download_token()),
        default_expiry_days=services.cfg.offers.invitation_expiry_days)
    text = templates.render(template, ctx)
    return Preview(
        text=text, channel=channel, sms=templates.sms_info(text),
        warnings=templates.preview_warnings(text, channel, content_sid is not None,
                                            services.cfg.campaigns.max_segments),
        content_variables=templates.variables_for_contentsid(ctx) if content_sid else None,
        customer=customer)


async def _preview_customer(services: Services, salon_id: str, body: PreviewRequest,
                            stored: db.Campaign | None) -> db.AudienceCustomer | None:
    """The chosen customer (not found if not in this salon), else the audience's first."""
    if body.customer_id is not None:
        found = await db.customer(services.pool, body.customer_id, salon_id)
        if found is None:
            raise ServiceError("not_found",
                               f"no imported customer {body.customer_id!r} in this salon")
        return found
    chosen = body.audience or (stored.audience if stored else Audience())
    try:
        chosen = check_audience(chosen)
    except AudienceError as exc:
        raise _problem(exc) from None
    await _check_audience_campaign(services, salon_id, chosen)
    sample = await db.audience_sample(services.pool, salon_id, chosen, 1)
    return sample[0] if sample else None
