"""Checks on a campaign as the admin writes it; each failure names the field and the fix."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

import msgspec

from onboardd.domain import templates
from onboardd.domain.campaigns.audience import Audience, AudienceError, check_audience
from onboardd.domain.offers import Offer

CHANNELS: Final = ("whatsapp", "sms", "both")
MAX_NAME: Final = 255
MAX_TEMPLATE: Final = 1600
# Twilio Content SIDs: HX + 32 hex characters.
_CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")
OFFER_VARIABLES: Final = ("offer_amount",)


class CampaignInput(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """POST/PUT body of a campaign."""

    name: str
    channel: str = "whatsapp"
    message_template: str | None = None
    welcome_offer_id: str | None = None
    whatsapp_content_sid: str | None = None
    audience: Audience = msgspec.field(default_factory=Audience)
    scheduled_for: datetime | None = None


class CampaignProblem(ValueError):
    """One invalid field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_channel(channel: str) -> str:
    """The channel, or a problem naming the allowed ones."""
    if channel not in CHANNELS:
        raise CampaignProblem("channel", f"must be one of {', '.join(CHANNELS)}, got {channel!r}")
    return channel


def check_schedule(scheduled_for: datetime | None, now: datetime) -> datetime | None:
    """A future, zone-aware send time (or None)."""
    if scheduled_for is None:
        return None
    if scheduled_for.tzinfo is None:
        raise CampaignProblem("scheduledFor", "give a time zone, e.g. 2024-05-01T09:30:00+05:30")
    if scheduled_for <= now:
        raise CampaignProblem(
            "scheduledFor",
            f"{scheduled_for.isoformat()} is in the past: pick a future time, or leave it out "
            "to send now",
        )
    return scheduled_for


def check_offer(offer_id: str | None, offer: Offer | None, used: list[str]) -> None:
    """The offer exists in this salon (offer is None when the salon has no such offer), is
    active, and is there when the template needs one."""
    if offer_id is None:
        needing = [v for v in used if v in OFFER_VARIABLES]
        if needing:
            raise CampaignProblem(
                "welcomeOfferId",
                f"the template uses {{{{{needing[0]}}}}}: choose a welcome offer",
            )
        return
    if offer is None:
        raise CampaignProblem("welcomeOfferId",
                              f"no welcome offer {offer_id!r} in this salon")
    if not offer.is_active:
        raise CampaignProblem("welcomeOfferId",
                              f"welcome offer {offer_id!r} is inactive: activate it or pick "
                              "another")


def check_campaign(body: CampaignInput, *, offer: Offer | None, now: datetime
                   ) -> CampaignInput:
    """Validate a campaign body; return it with defaults filled (template, audience)."""
    name = body.name.strip()
    if not name:
        raise CampaignProblem("name", "is required: give the campaign a name")
    if len(name) > MAX_NAME:
        raise CampaignProblem("name", f"at most {MAX_NAME} characters, got {len(name)}")
    channel = check_channel(body.channel)
    template = body.message_template if body.message_template is not None \
        else templates.DEFAULT_TEMPLATE
    if len(template) > MAX_TEMPLATE:
        raise CampaignProblem("messageTemplate",
                              f"at most {MAX_TEMPLATE} characters, got {len(template)}")
    try:
        used = templates.check_template(template)
    except templates.TemplateError as exc:
        raise CampaignProblem("messageTemplate", str(exc)) from None
    sid = (body.whatsapp_content_sid or "").strip() or None
    if sid is not None and not _CONTENT_SID.fullmatch(sid):
        raise CampaignProblem("whatsappContentSid",
                              "must be a Twilio Content SID: HX followed by 32 hex characters")
    check_offer(body.welcome_offer_id, offer, used)
    try:
        audience = check_audience(body.audience)
    except AudienceError as exc:
        raise CampaignProblem(exc.field, exc.message) from None
    return CampaignInput(
        name=name,
        channel=channel,
        message_template=template,
        welcome_offer_id=body.welcome_offer_id,
        whatsapp_content_sid=sid,
        audience=audience,
        scheduled_for=check_schedule(body.scheduled_for, now),
    )
