"""The admin UI's welcome offers: the list (amounts as customers read them), the create and
edit forms (rupees in, paisa stored; each error next to its field) and the deactivation behind
a short inline confirmation.

The forms are plain POST forms; the "Customers will read" line follows them with htmx, and the
deactivation swaps the row's actions cell for its confirmation (web/admin/confirm.py), then the
row for its new state.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from onboardd.domain.offers import OfferPatch
from onboardd.services import offers as service
from onboardd.services.errors import ServiceError
from onboardd.web.admin import confirm, offer_form, render, session
from onboardd.web.keys import services

routes = web.RouteTableDef()

BASE: Final = "/admin/offers"
FORM: Final = "admin/offer_form.html"
ROW: Final = "admin/offers_row.html"
ACTIONS: Final = "admin/offers_actions.html"
QUESTION_PAGE: Final = "admin/offers_deactivate.html"


def _salon(request: web.Request) -> str:
    return session.current(request).salon.id


@routes.get(BASE)
async def offers_page(request: web.Request) -> web.StreamResponse:
    """Every offer of the salon, newest first."""
    offers = await service.list_offers(services(request), _salon(request), None)
    saved = next((o for o in offers if o.id == request.query.get("saved")), None)
    deactivated = next((o for o in offers if o.id == request.query.get("deactivated")), None)
    return render.page(request, "admin/offers.html",
                       {"offers": offers, "saved": saved, "deactivated": deactivated})


def _form_page(request: web.Request, *, values: dict[str, str], is_active: bool,
               errors: dict[str, str], offer_id: str | None, status: int = 200
               ) -> web.Response:
    preview = offer_form.preview_offer(values)
    return render.page(request, FORM, {
        "values": values, "is_active": is_active, "errors": errors, "offer_id": offer_id,
        "preview": preview, "general": errors.get(offer_form.GENERAL)}, status=status)


@routes.get(BASE + "/new")
async def new_offer(request: web.Request) -> web.StreamResponse:
    """The form for a new offer."""
    return _form_page(request, values=dict(offer_form.DEFAULTS), is_active=True, errors={},
                      offer_id=None)


def _refused(exc: ServiceError, read: offer_form.OfferForm) -> dict[str, str]:
    """The service's refusal as errors by form field (raised again when it is not about the
    form's fields)."""
    listed = exc.details.get("errors")
    if exc.kind != "invalid" or not isinstance(listed, list):
        raise exc
    return offer_form.service_errors(read.data, listed)


def _saved(offer_id: str, what: str = "saved") -> web.HTTPSeeOther:
    """Back to the list, which says what was done to which offer."""
    return web.HTTPSeeOther(f"{BASE}?{what}={offer_id}")


@routes.post(BASE + "/new")
async def create_offer(request: web.Request) -> web.StreamResponse:
    """Create the offer; with a problem, the form again (422) with each error by its field."""
    read = offer_form.read_form(await request.post())
    errors = read.errors
    if not errors:
        try:
            offer = await service.create_offer(services(request), _salon(request), read.data)
        except ServiceError as exc:
            errors = _refused(exc, read)
        else:
            raise _saved(offer.id)
    return _form_page(request, values=read.values, is_active=True, errors=errors,
                      offer_id=None, status=422)


@routes.get(BASE + "/{offerId}/edit")
async def edit_offer(request: web.Request) -> web.StreamResponse:
    """The form for changing an offer."""
    offer = await service.get_offer(services(request), _salon(request),
                                    request.match_info["offerId"])
    return _form_page(request, values=offer_form.form_values(offer), is_active=offer.is_active,
                      errors={}, offer_id=offer.id)


@routes.post(BASE + "/{offerId}/edit")
async def save_offer(request: web.Request) -> web.StreamResponse:
    """Save the changes (every field of the form; an empty cap or minimum clears it)."""
    offer_id = request.match_info["offerId"]
    read = offer_form.read_form(await request.post(), editing=True)
    errors = read.errors
    if not errors:
        data = read.data
        patch = OfferPatch(
            name=data.name, discount_type=data.discount_type, discount_value=data.discount_value,
            max_discount_in_paisa=data.max_discount_in_paisa,
            minimum_purchase_in_paisa=data.minimum_purchase_in_paisa,
            validity_days=data.validity_days, usage_limit=data.usage_limit,
            is_active=data.is_active)
        try:
            await service.update_offer(services(request), _salon(request), offer_id, patch)
        except ServiceError as exc:
            errors = _refused(exc, read)
        else:
            raise _saved(offer_id)
    return _form_page(request, values=read.values, is_active=read.is_active, errors=errors,
                      offer_id=offer_id, status=422)


@routes.get(BASE + "/preview")
async def preview(request: web.Request) -> web.StreamResponse:
    """The "Customers will read" line for the form as it is now (htmx, on every change)."""
    return render.fragment(request, FORM, "preview",
                           {"preview": offer_form.preview_offer(request.query)})


def _cell_id(offer_id: str) -> str:
    return f"offer-actions-{offer_id}"


@routes.get(BASE + "/{offerId}/deactivate")
async def deactivate_question(request: web.Request) -> web.StreamResponse:
    """Ask before deactivating: inline for htmx, as a page for a plain browser."""
    offer = await service.get_offer(services(request), _salon(request),
                                    request.match_info["offerId"])
    return confirm.ask(request, ACTIONS, QUESTION_PAGE, {"offer": offer},
                       cell_id=_cell_id(offer.id))


@routes.get(BASE + "/{offerId}/actions")
async def row_actions(request: web.Request) -> web.StreamResponse:
    """The row's buttons again (Cancel on the confirmation)."""
    offer = await service.get_offer(services(request), _salon(request),
                                    request.match_info["offerId"])
    return confirm.buttons(request, ACTIONS, {"offer": offer}, cell_id=_cell_id(offer.id))


@routes.post(BASE + "/{offerId}/deactivate")
async def deactivate(request: web.Request) -> web.StreamResponse:
    """Deactivate, only with the confirmation's `confirm=yes`; the row shows it inactive."""
    form = await request.post()
    if form.get("confirm") != "yes":
        return await deactivate_question(request)
    offer = await service.deactivate_offer(services(request), _salon(request),
                                           request.match_info["offerId"])
    if render.is_htmx(request):
        return render.fragment(request, ROW, "row", {"offer": offer, "focus": True})
    raise _saved(offer.id, "deactivated")
