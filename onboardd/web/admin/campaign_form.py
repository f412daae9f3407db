"""The campaign builder's form: what the admin typed (kept, to show the form again), read into
the service's CampaignInput and Audience, and every problem keyed by the field it names (the
same names as the API's `details.field`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from multidict import MultiMapping

from onboardd.db.campaigns import Campaign
from onboardd.domain import templates
from onboardd.domain.campaigns.audience import DEFAULT_STATUSES, MAX_DAYS_SINCE_INVITE, Audience
from onboardd.domain.campaigns.builder import (
    LocalTimeError,
    local_date_input,
    local_datetime,
    local_input,
    local_midnight,
)
from onboardd.domain.campaigns.validation import CampaignInput
from onboardd.services.analytics import stage_audience
from onboardd.web.admin.formats import problem_sentence

# A problem's field (the API's details.field) -> the id of the control it is shown next to.
FIELD_IDS: Final = {
    "name": "f-name",
    "channel": "f-channel",
    "messageTemplate": "f-template",
    "welcomeOfferId": "f-offer",
    "whatsappContentSid": "f-content-sid",
    "audience.status": "f-status",
    "audience.importBatchIds": "f-batch",
    "audience.importedAfter": "f-imported-after",
    "audience.minDaysSinceInvite": "f-min-days",
    "audience.campaignId": "f-audience",
    "audience.funnelStage": "f-audience",
    "audience": "f-audience",
    "scheduledFor": "f-scheduled-for",
}
# What the dashboard hands over: the customers at this stage and not at the next.
STAGE_SENTENCES: Final = {
    "imported": "Customers imported but not invited yet",
    "invited": "Customers invited whose message was not delivered",
    "delivered": "Customers delivered but not registered",
}

# The page's own words where the service's name the API's fields.
UI_WORDS: Final = {
    "audience": "No customer matches this audience now: tick more statuses, choose another "
                "import or an earlier date, or import customers first.",
}


class FormProblem(ValueError):
    """One field the form cannot use."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class BuilderForm(msgspec.Struct, kw_only=True):
    """The builder's fields as typed (strings, as the browser sends them)."""

    name: str = ""
    channel: str = "whatsapp"
    message_template: str = templates.DEFAULT_TEMPLATE
    welcome_offer_id: str = ""
    whatsapp_content_sid: str = ""
    statuses: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_STATUSES))
    batch_ids: list[str] = msgspec.field(default_factory=list)
    imported_after: str = ""
    min_days_since_invite: str = ""
    stage: str = ""
    stage_campaign: str = ""
    schedule: str = "now"
    scheduled_for: str = ""
    customer_id: str = ""


def _one(post: MultiMapping[Any], key: str, *, strip: bool = True) -> str:
    value = post.get(key)
    if not isinstance(value, str):
        return ""
    return value.strip() if strip else value


def _all(post: MultiMapping[Any], key: str) -> list[str]:
    return [v.strip() for v in post.getall(key, []) if isinstance(v, str) and v.strip()]


def read(post: MultiMapping[Any]) -> BuilderForm:
    """The form as posted (a textarea's CRLF line ends become LF, as the API stores them). An
    audience handed over from the dashboard counts while its box `handover` stays ticked."""
    handed = _one(post, "handover") == "1"
    return BuilderForm(
        name=_one(post, "name"), channel=_one(post, "channel") or "whatsapp",
        message_template=_one(post, "message_template", strip=False).replace("\r\n", "\n"),
        welcome_offer_id=_one(post, "welcome_offer_id"),
        whatsapp_content_sid=_one(post, "whatsapp_content_sid"),
        statuses=_all(post, "status"), batch_ids=_all(post, "import_batch_id"),
        imported_after=_one(post, "imported_after"),
        min_days_since_invite=_one(post, "min_days_since_invite"),
        stage=_one(post, "stage") if handed else "",
        stage_campaign=_one(post, "stage_campaign") if handed else "",
        schedule="later" if _one(post, "schedule") == "later" else "now",
        scheduled_for=_one(post, "scheduled_for"), customer_id=_one(post, "customer_id"))


def handed_over(query: Mapping[str, str], offer_id: str) -> BuilderForm:
    """A new form; with `?stage=&campaign=` (the dashboard's "invite them"), its audience is
    that stage's customers."""
    stage = query.get("stage", "").strip()
    campaign = query.get("campaign", "").strip()
    form = BuilderForm(welcome_offer_id=offer_id, stage=stage, stage_campaign=campaign)
    handed = stage_audience(stage, campaign or None) if stage else None
    if handed is not None:
        form.statuses = list(handed.status)
    return form


def audience(form: BuilderForm, timezone: str) -> Audience:
    """The audience the form describes; FormProblem naming the field."""
    if not form.statuses:
        raise FormProblem("audience.status", "tick at least one status")
    after = None
    if form.imported_after:
        try:
            after = local_midnight(form.imported_after, timezone)
        except LocalTimeError as exc:
            raise FormProblem("audience.importedAfter", str(exc)) from None
    days = None
    if form.min_days_since_invite:
        try:
            days = int(form.min_days_since_invite)
        except ValueError:
            raise FormProblem("audience.minDaysSinceInvite",
                              f"give a whole number of days from 0 to {MAX_DAYS_SINCE_INVITE}"
                              ) from None
    campaign_id, stage = form.stage_campaign or None, None
    if form.stage:
        handed = stage_audience(form.stage, form.stage_campaign or None)
        if handed is None:
            raise FormProblem("audience.funnelStage", f"the dashboard stage {form.stage!r} "
                              "cannot be invited (registered customers are not invited "
                              "again): clear it")
        campaign_id, stage = handed.campaign_id, handed.funnel_stage
    return Audience(status=list(form.statuses), import_batch_ids=form.batch_ids or None,
                    imported_after=after, campaign_id=campaign_id, funnel_stage=stage,
                    min_days_since_invite=days)


def scheduled_for(form: BuilderForm, timezone: str, now: datetime | None = None
                  ) -> datetime | None:
    """The send time the form asks for (None: now), as UTC; FormProblem naming scheduledFor."""
    if form.schedule != "later":
        return None
    if not form.scheduled_for:
        raise FormProblem("scheduledFor", "pick the date and time to send, or choose Now")
    try:
        when = local_datetime(form.scheduled_for, timezone)
    except LocalTimeError as exc:
        raise FormProblem("scheduledFor", str(exc)) from None
    if when <= (now or datetime.now(UTC)):
        raise FormProblem("scheduledFor", "this time has passed: pick a time in the future, or "
                          "choose Now")
    return when


def campaign_input(form: BuilderForm, timezone: str) -> tuple[CampaignInput, dict[str, str]]:
    """The service's input, and the problems the form alone shows (by field); the service
    checks the rest."""
    problems: dict[str, str] = {}
    if not form.name:
        problems["name"] = "Give the campaign a name, e.g. \"Welcome – March\"."
    try:
        templates.check_template(form.message_template)
    except templates.TemplateError as exc:
        problems["messageTemplate"] = str(exc)
    chosen = Audience()
    try:
        chosen = audience(form, timezone)
    except FormProblem as exc:
        problems[exc.field] = problem_sentence(exc.message, exc.field)
    when = None
    try:
        when = scheduled_for(form, timezone)
    except FormProblem as exc:
        problems[exc.field] = problem_sentence(exc.message, exc.field)
    body = CampaignInput(
        name=form.name, channel=form.channel, message_template=form.message_template,
        welcome_offer_id=form.welcome_offer_id or None,
        whatsapp_content_sid=(form.whatsapp_content_sid or None) if form.channel != "sms"
        else None,
        audience=chosen, scheduled_for=when)
    return body, problems


def from_campaign(found: Campaign, timezone: str) -> BuilderForm:
    """A stored draft (or scheduled campaign) as the form shows it for editing."""
    chosen = found.audience
    return BuilderForm(
        name=found.name, channel=found.channel, message_template=found.message_template,
        welcome_offer_id=found.welcome_offer_id or "",
        whatsapp_content_sid=found.whatsapp_content_sid or "",
        statuses=list(chosen.status), batch_ids=list(chosen.import_batch_ids or []),
        imported_after=(local_date_input(chosen.imported_after, timezone)
                        if chosen.imported_after else ""),
        min_days_since_invite=("" if chosen.min_days_since_invite is None
                               else str(chosen.min_days_since_invite)),
        stage=chosen.funnel_stage or "", stage_campaign=chosen.campaign_id or "",
        schedule="later" if found.scheduled_for else "now",
        scheduled_for=local_input(found.scheduled_for, timezone) if found.scheduled_for else "")
