"""The admin UI's campaign pages: the list, the builder (new, or editing a draft or scheduled
campaign) with its live preview, audience count and cost/time estimate, and the live page of
one campaign (figures refreshed while it sends; pause and resume). Every change goes through
onboardd.services.campaigns, as POST /api/salons/{salonId}/invitation-campaigns... does."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from onboardd.logging import get_logger
from onboardd.services import campaigns as service
from onboardd.services import offers as offers_service
from onboardd.services.errors import ServiceError
from onboardd.web.admin import campaign_form as forms
from onboardd.web.admin import campaign_view as view
from onboardd.web.admin import render, session
from onboardd.web.admin.campaign_form import BuilderForm
from onboardd.web.admin.formats import problem_sentence
from onboardd.web.body import query_int
from onboardd.web.errors import api_error
from onboardd.web.keys import request_id, services

routes = web.RouteTableDef()
log = get_logger("admin")

LIST: Final = "/admin/campaigns"
NEW: Final = LIST + "/new"
ONE: Final = LIST + "/{id}"
PAGE_SIZE: Final = 20
BUILDER: Final = "admin/campaign_builder.html"
LIVE: Final = "admin/campaign_live.html"
DELETE: Final = "admin/campaign_delete.html"
DELETE_PAGE: Final = "admin/campaign_delete_page.html"


def _redirect(request: web.Request, target: str) -> web.StreamResponse:
    """To another page: htmx follows HX-Redirect, a plain form a 303."""
    if render.is_htmx(request):
        return web.Response(status=200, headers={"HX-Redirect": target})
    raise web.HTTPSeeOther(target)


def _not_found(request: web.Request) -> web.StreamResponse:
    return render.problem(request, 404, "No such campaign",
                          f"There is no campaign at this address in "
                          f"{session.current(request).salon.name}. It may have been deleted, "
                          "or belong to another salon: see the campaigns list.")


async def _campaign(request: web.Request) -> Any:
    """The campaign of the address in this salon, or None."""
    me = session.current(request)
    try:
        return await service.campaign(services(request), me.salon.id, request.match_info["id"])
    except ServiceError as exc:
        if exc.kind == "not_found":
            return None
        raise


@routes.get(LIST)
async def campaign_list(request: web.Request) -> web.StreamResponse:
    """The salon's campaigns, newest first, twenty a page."""
    me = session.current(request)
    page = query_int(request, "page", 1, minimum=1)
    found = await service.list_page(services(request), me.salon.id, None, page, PAGE_SIZE)
    pages = max(1, -(-found.total // PAGE_SIZE))
    return render.page(request, "admin/campaigns.html", {
        "campaigns": found.items, "total": found.total, "page": page, "pages": pages,
        "channel_words": view.CHANNEL_WORDS, "badges": view.BADGES})


async def _builder(request: web.Request, form: BuilderForm, *, errors: dict[str, str],
                   action: str, campaign: Any = None, alert: str | None = None,
                   status: int = 200) -> web.StreamResponse:
    me = session.current(request)
    svc = services(request)
    shown = {field: text for field, text in errors.items() if field in forms.FIELD_IDS}
    alerts = [text for field, text in errors.items() if field not in forms.FIELD_IDS]
    panels = await view.panels(svc, me.salon.id, me.salon.timezone, form, actor=me.who.sub,
                               request_id=request_id(request), choices=view.PREVIEW_CUSTOMERS)
    ctx: dict[str, Any] = {
        **await view.choices(svc, me.salon.id),
        "form": form, "errors": shown, "field_ids": forms.FIELD_IDS, "action": action,
        "campaign": campaign, "alerts": ([alert] if alert else []) + alerts,
        "handover": await view.handover(svc, me.salon.id, form),
        "panels": panels, "customers": panels.customers,
    }
    return render.page(request, BUILDER, ctx, status=status)


@routes.get(NEW)
async def builder(request: web.Request) -> web.StreamResponse:
    """A new campaign; `?stage=&campaign=` hands over a dashboard stage's customers."""
    me = session.current(request)
    offers = await offers_service.list_offers(services(request), me.salon.id, True)
    form = forms.handed_over(request.query, offers[0].id if offers else "")
    return await _builder(request, form, errors={}, action=NEW)


@routes.post(NEW + "/panels")
async def builder_panels(request: web.Request) -> web.StreamResponse:
    """The live preview, audience count and estimate for the form as it stands (swapped into
    their places out of band)."""
    me = session.current(request)
    form = forms.read(await request.post())
    ctx = {"form": form, "panels": await view.panels(
        services(request), me.salon.id, me.salon.timezone, form, actor=me.who.sub,
        request_id=request_id(request))}
    return render.fragment(request, "admin/campaign_panels.html", "panels", ctx)


async def _save(request: web.Request, campaign: Any) -> web.StreamResponse:
    """Create (or update) the campaign, then send or schedule it when asked to."""
    me = session.current(request)
    svc = services(request)
    post = await request.post()
    form = forms.read(post)
    sending = post.get("action") == "send"
    action = NEW if campaign is None else f"{LIST}/{campaign.id}/edit"
    body, problems = forms.campaign_input(form, me.salon.timezone)
    if problems:
        return await _builder(request, form, errors=problems, action=action, campaign=campaign,
                              status=422)
    try:
        saved = (await service.create(svc, me.salon.id, me.who.sub, body) if campaign is None
                 else await service.update(svc, me.salon.id, campaign.id, body))
    except ServiceError as exc:
        return await _refused(request, form, exc, action, campaign)
    log.info("admin_campaign_saved", campaign_id=saved.id, user_id=me.who.sub,
             salon_id=me.salon.id)
    if sending:
        try:
            saved = await service.send(svc, me.salon.id, saved.id, body.scheduled_for)
        except ServiceError as exc:
            return await _refused(request, form, exc, f"{LIST}/{saved.id}/edit", saved,
                                  prefix="Saved as a draft, not sent. ")
        log.info("admin_campaign_sent", campaign_id=saved.id, status=saved.status,
                 user_id=me.who.sub, salon_id=me.salon.id)
    return _redirect(request, f"{LIST}/{saved.id}")


async def _refused(request: web.Request, form: BuilderForm, exc: ServiceError, action: str,
                   campaign: Any, prefix: str = "") -> web.StreamResponse:
    """The form again, with the service's problem next to the field it names (or on top)."""
    if exc.kind == "not_found":
        raise exc
    field = str(exc.details.get("field") or "form")
    text = forms.UI_WORDS.get(field) or problem_sentence(exc.message, field)
    return await _builder(request, form, errors={field: text}, action=action,
                          campaign=campaign, status=api_error(exc).status,
                          alert=(prefix + ("Fix the field marked below." if field in
                                           forms.FIELD_IDS else "")).strip() or None)


@routes.post(NEW)
async def create(request: web.Request) -> web.StreamResponse:
    """Save as a draft, or save and send (now or at the scheduled time)."""
    return await _save(request, None)


@routes.get(ONE + "/edit")
async def edit(request: web.Request) -> web.StreamResponse:
    """The builder for a draft or scheduled campaign."""
    found = await _campaign(request)
    if found is None:
        return _not_found(request)
    if not view.editable(found):
        raise web.HTTPSeeOther(f"{LIST}/{found.id}")
    form = forms.from_campaign(found, session.current(request).salon.timezone)
    return await _builder(request, form, errors={}, action=f"{LIST}/{found.id}/edit",
                          campaign=found)


@routes.post(ONE + "/edit")
async def save_edit(request: web.Request) -> web.StreamResponse:
    """Save the edited campaign (and send it when asked to)."""
    found = await _campaign(request)
    if found is None:
        return _not_found(request)
    return await _save(request, found)


async def _live_ctx(request: web.Request) -> dict[str, Any] | None:
    me = session.current(request)
    try:
        ctx = await view.live(services(request), me.salon.id, request.match_info["id"])
    except ServiceError as exc:
        if exc.kind == "not_found":
            return None
        raise
    ctx["summary"] = view.summary(ctx["stats"])
    ctx["editable"] = view.editable(ctx["campaign"])
    return ctx


@routes.get(ONE)
async def live_page(request: web.Request) -> web.StreamResponse:
    """One campaign: its figures, refreshed while it sends, and pause / resume."""
    ctx = await _live_ctx(request)
    if ctx is None:
        return _not_found(request)
    return render.page(request, LIVE, ctx)


@routes.get(ONE + "/live")
async def live_figures(request: web.Request) -> web.StreamResponse:
    """The figures for the page's poll; a changed status reloads the page (its actions)."""
    ctx = await _live_ctx(request)
    if ctx is None:
        return _not_found(request)
    if request.query.get("status") != ctx["campaign"].status:
        return web.Response(status=200, headers={"HX-Refresh": "true", **render.NO_STORE})
    return render.fragment(request, LIVE, "live", {**ctx, "oob": True})


async def _act(request: web.Request, verb: str) -> web.StreamResponse:
    me = session.current(request)
    found = await _campaign(request)
    if found is None:
        return _not_found(request)
    act = {"pause": service.pause, "resume": service.resume}[verb]
    changed = await act(services(request), me.salon.id, found.id)
    log.info(f"admin_campaign_{verb}d", campaign_id=found.id, status=changed.status,
             user_id=me.who.sub, salon_id=me.salon.id)
    return _redirect(request, f"{LIST}/{found.id}")


@routes.post(ONE + "/pause")
async def pause(request: web.Request) -> web.StreamResponse:
    """Stop new sends at once."""
    return await _act(request, "pause")


@routes.post(ONE + "/resume")
async def resume(request: web.Request) -> web.StreamResponse:
    """Continue with the customers not yet sent."""
    return await _act(request, "resume")


def _delete_step(request: web.Request, found: Any, *, asking: bool, status: int = 200,
                 headers: dict[str, str] | None = None) -> web.StreamResponse:
    """The live page's delete control: the button, or the question with "Delete for good" and
    Cancel (inline for htmx; for a plain browser the question as a page)."""
    standalone = not render.is_htmx(request)
    ctx = {"campaign": found, "asking": asking, "standalone": standalone, "focus": True}
    if standalone:
        return render.page(request, DELETE_PAGE, ctx, status=status)
    return render.fragment(request, DELETE, "delete", ctx, status=status, headers=headers)


async def _draft(request: web.Request) -> tuple[Any, web.StreamResponse | None]:
    """The draft of the address, or the answer when there is none (404, or its live page)."""
    found = await _campaign(request)
    if found is None:
        return None, _not_found(request)
    if found.status != "draft":
        return None, _redirect(request, f"{LIST}/{found.id}")
    return found, None


@routes.get(ONE + "/delete")
async def delete_question(request: web.Request) -> web.StreamResponse:
    """The confirmation step of deleting a draft (changes nothing)."""
    found, answer = await _draft(request)
    return answer or _delete_step(request, found, asking=True)


@routes.get(ONE + "/delete-button")
async def delete_button(request: web.Request) -> web.StreamResponse:
    """The "Delete draft" button again (Cancel on the question)."""
    found, answer = await _draft(request)
    return answer or _delete_step(request, found, asking=False)


@routes.post(ONE + "/delete")
async def delete(request: web.Request) -> web.StreamResponse:
    """Delete a draft, only with the question's `confirm=yes` (else the question)."""
    me = session.current(request)
    found = await _campaign(request)
    if found is None:
        return _not_found(request)
    if (await request.post()).get("confirm") != "yes":
        return _delete_step(request, found, asking=True, headers={
            "HX-Retarget": "#delete-draft", "HX-Reswap": "innerHTML"})
    await service.delete(services(request), me.salon.id, found.id)
    log.info("admin_campaign_deleted", campaign_id=found.id, user_id=me.who.sub,
             salon_id=me.salon.id)
    return _redirect(request, LIST)
