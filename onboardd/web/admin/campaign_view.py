"""What the campaign pages show, gathered from the services: the builder's choices (offers,
import batches, customers to preview for), its live panels (preview, audience count, cost and
time estimate) and the live page's figures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from onboardd.db.campaigns import Campaign
from onboardd.domain import templates
from onboardd.domain.campaigns.audience import TARGETABLE
from onboardd.domain.campaigns.builder import Estimate, Prices, Rates, duration_text, estimate
from onboardd.domain.delivery import ERROR_EXPLANATIONS
from onboardd.runtime import Services
from onboardd.services import campaigns as service
from onboardd.services import delivery, sending_hours
from onboardd.services import offers as offers_service
from onboardd.services.errors import ServiceError
from onboardd.web.admin import campaign_form as forms
from onboardd.web.admin.campaign_form import BuilderForm, FormProblem
from onboardd.web.admin.formats import problem_sentence

PREVIEW_CUSTOMERS: Final = 8
STATUS_WORDS: Final = {"pending": "Not invited yet", "invited": "Invited, not registered",
                       "expired": "Invitation expired"}
CHANNEL_WORDS: Final = {"whatsapp": "WhatsApp", "sms": "SMS", "both": "WhatsApp, SMS fallback"}
BADGES: Final = {"draft": "", "scheduled": "warn", "sending": "ok", "paused": "warn",
                 "completed": "ok"}
SKIP_WORDS: Final = {
    "opted_out": "Opted out (replied STOP, or the file said no)",
    "recently_invited": "Invited by this salon within the resend window",
    "invalid_number": "Not a number the channel can reach",
    "unknown": "Other reason",
}
# While these hold, the live page asks for fresh figures every few seconds.
POLLING: Final = ("scheduled", "sending", "paused")


class Panels(msgspec.Struct, kw_only=True):
    """The builder's live panels for what the form says now, and the customers to preview
    for (id, "name · masked number")."""

    preview: service.Preview | None = None
    preview_problem: str | None = None
    preview_customer: str | None = None
    offer_warning: str | None = None
    count: int | None = None
    count_problem: str | None = None
    estimate: Estimate | None = None
    duration: str = ""
    customers: list[tuple[str, str]] = msgspec.field(default_factory=list)
    # Quiet hours: when sending would actually start (a warning), or that it is inside the
    # salon's sending window.
    window_note: str | None = None
    window_ok: str | None = None


def prices(services: Services) -> Prices:
    """The configured prices ([pricing])."""
    cfg = services.cfg.pricing
    return Prices(cfg.sms_paisa_per_segment, cfg.whatsapp_paisa_per_message)


def rates(services: Services) -> Rates:
    """The dispatcher's send rates ([twilio] whatsapp_rate_per_s, sms_rate_per_s)."""
    return Rates(services.cfg.twilio.whatsapp_rate_per_s, services.cfg.twilio.sms_rate_per_s)


async def _preview(services: Services, salon_id: str, form: BuilderForm,
                   chosen: Any, panels: Panels) -> None:
    if not form.message_template.strip():
        panels.preview_problem = "The message template is empty: write the message."
        return
    body = service.PreviewRequest(
        message_template=form.message_template, channel=form.channel,
        welcome_offer_id=form.welcome_offer_id or None,
        whatsapp_content_sid=(form.whatsapp_content_sid or None) if form.channel != "sms"
        else None,
        customer_id=form.customer_id or None, audience=chosen)
    try:
        panels.preview = found = await service.preview(services, salon_id, body)
    except ServiceError as exc:
        panels.preview_problem = problem_sentence(exc.message,
                                                  str(exc.details.get("field", "")))
        return
    if found.customer is None:
        panels.preview_customer = (f"a sample customer, {service.SAMPLE_NAME} (nobody matches "
                                   "the audience yet)")
    used = templates.check_template(form.message_template)
    if not form.welcome_offer_id and "offer_amount" in used:
        panels.offer_warning = ("The template uses {{offer_amount}}: choose a welcome offer, "
                                "or the amount stays empty.")


async def panels(services: Services, salon_id: str, timezone: str, form: BuilderForm, *,
                 actor: str, request_id: str, choices: int = 0) -> Panels:
    """Preview, audience count and estimate for the form as it stands, and (``choices``: how
    many) customers to preview for. Their numbers are masked by the service, which logs the
    read once for the render."""
    out = Panels()
    chosen = None
    try:
        chosen = forms.audience(form, timezone)
        out.count = await service.audience_size(services, salon_id, chosen)
    except FormProblem as exc:
        out.count_problem = problem_sentence(exc.message, exc.field)
        chosen = None
    except ServiceError as exc:
        out.count_problem = problem_sentence(exc.message, str(exc.details.get("field", "")))
        chosen = None
    await _preview(services, salon_id, form, chosen, out)
    if out.count is not None and out.preview is not None:
        out.estimate = estimate(form.channel, out.count, out.preview.sms.segments,
                                prices(services), rates(services))
        out.duration = duration_text(out.estimate.seconds)
    listed, previewed = await service.builder_customers(
        services, salon_id, choices=choices,
        previewed=out.preview.customer if out.preview else None, actor=actor,
        request_id=request_id)
    out.customers = [(c.id, f"{c.customer_name} · {c.phone_masked}") for c in listed]
    if previewed is not None:
        out.preview_customer = f"{previewed.customer_name} ({previewed.phone_masked})"
    await _window(services, salon_id, timezone, form, out)
    return out


async def _window(services: Services, salon_id: str, timezone: str, form: BuilderForm,
                  out: Panels) -> None:
    """When the form's send (now, or its time) would actually start sending."""
    try:
        when = forms.scheduled_for(form, timezone)
    except FormProblem:
        when = None  # the form's own error says what is wrong with the time
    found = await sending_hours.window(services, salon_id)
    now = datetime.now(UTC)
    out.window_note = found.start_note(when or now, now)
    if out.window_note is None:
        out.window_ok = (f"Inside the salon's sending window ({found.hours.label()}, "
                         f"{found.timezone}): sending starts "
                         + ("at the scheduled time." if when else "at once."))


async def choices(services: Services, salon_id: str) -> dict[str, Any]:
    """The builder's lists: active offers, import batches, statuses, variables (the customers
    to preview for come with the panels)."""
    return {
        "offers": await offers_service.list_offers(services, salon_id, True),
        "batches": await service.import_batches(services, salon_id),
        "statuses": [(s, STATUS_WORDS[s]) for s in TARGETABLE],
        "variables": [(v, "{{" + v + "}}") for v in templates.VARIABLES],
        "prices": prices(services), "rates": rates(services),
        "resend_window_h": services.cfg.campaigns.resend_window_h,
    }


async def handover(services: Services, salon_id: str, form: BuilderForm) -> str | None:
    """The sentence naming an audience handed over from the dashboard (None: none)."""
    if not form.stage and not form.stage_campaign:
        return None
    base = (forms.STAGE_SENTENCES.get(form.stage, f"Customers at the stage {form.stage!r}")
            if form.stage else "Customers this campaign targeted")
    if form.stage_campaign:
        try:
            found = await service.campaign(services, salon_id, form.stage_campaign)
        except ServiceError:
            return f"{base}, of a campaign that is not in this salon (from the dashboard)"
        return f"{base}, of the campaign “{found.name}” (from the dashboard)"
    return f"{base} (from the dashboard)"


def _eta_text(stats: dict[str, Any], now: datetime) -> str:
    eta: datetime | None = stats["estimatedCompletionAt"]
    if stats["status"] == "completed":
        return "Completed"
    if stats["status"] == "paused":
        return "Paused: resume to continue"
    if eta is None:
        return "Waiting for the first messages" if stats["status"] == "sending" else "–"
    return duration_text(max(0.0, (eta - now).total_seconds())) + " left"


async def live(services: Services, salon_id: str, campaign_id: str) -> dict[str, Any]:
    """The live page's campaign, figures and what can be done with it now."""
    found = await service.campaign(services, salon_id, campaign_id)
    stats = await delivery.campaign_stats(services, salon_id, campaign_id)
    failed = [{"code": f["errorCode"],
               "words": (ERROR_EXPLANATIONS.get(f["errorCode"]) if f["errorCode"] else None)
               or f["errorMessage"] or "No error code given",
               "count": f["count"]} for f in stats["failed"]["byErrorCode"]]
    skipped = [{"reason": SKIP_WORDS.get(reason, reason), "count": n}
               for reason, n in stats["skipped"]["byReason"].items()]
    offer = None
    if found.welcome_offer_id:
        try:
            offer = await offers_service.get_offer(services, salon_id, found.welcome_offer_id)
        except ServiceError:
            offer = None
    return {"campaign": found, "stats": stats, "failed": failed, "skipped": skipped,
            "offer": offer, "eta": _eta_text(stats, datetime.now(UTC)),
            "window_note": await _live_window_note(services, found, stats),
            "polling": found.status in POLLING, "channel_words": CHANNEL_WORDS,
            "badges": BADGES}


async def _live_window_note(services: Services, found: Campaign, stats: dict[str, Any]
                            ) -> str | None:
    """Quiet hours on the live page: what waits for the window and until when, or that the
    scheduled time is outside it."""
    if found.status == "scheduled":
        warnings = await sending_hours.send_warnings(services, found.salon_id,
                                                     found.scheduled_for)
        return warnings[0] if warnings else None
    held = stats.get("waitingForWindow", 0)
    if not held:
        return None
    window = await sending_hours.window(services, found.salon_id)
    note = window.start_note(datetime.now(UTC))
    return (f"{held:,} message{'' if held == 1 else 's'} wait for the salon's sending window."
            + (f" {note}" if note else ""))


def summary(stats: dict[str, Any]) -> str:
    """One sentence for the live region: where the campaign is now."""
    status = stats["status"]
    if status in ("draft", "scheduled"):
        return f"This campaign is {status}: nothing is sent yet."
    return (f"{stats['sent']:,} of {stats['target']:,} sent, {stats['delivered']:,} delivered, "
            f"{stats['failed']['total']:,} failed, {stats['skipped']['total']:,} skipped; "
            f"{stats['progressPercent']:g} % done ({status}).")


def editable(found: Campaign) -> bool:
    """Drafts and scheduled campaigns can still be edited."""
    return found.status in service.EDITABLE
