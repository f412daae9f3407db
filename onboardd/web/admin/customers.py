"""The admin UI's customers page: the salon's imported customers, searched by name or whole
phone number and filtered by status, with their numbers masked; a logged reveal of one number;
the GDPR erase behind an inline confirmation.

Every action works as a plain form and is enhanced with htmx: the search swaps the results
(`#results`) and pushes the address (never for a search with a phone number in it: see
`looks_like_phone`), a reveal swaps one phone cell, the erase swaps the row's actions cell for a
confirmation (web/admin/confirm.py) and then the row for a sentence saying it was erased.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

import msgspec
from aiohttp import web

from onboardd.services import customers as service
from onboardd.services.errors import ServiceError
from onboardd.web.admin import confirm, render, session
from onboardd.web.api_imports import CUSTOMER_STATUSES, MAX_SEARCH_CHARS
from onboardd.web.errors import api_error
from onboardd.web.keys import request_id, services

routes = web.RouteTableDef()

BASE: Final = "/admin/customers"
PAGE_SIZE: Final = 20
MAX_PAGE: Final = 1_000_000
LIST: Final = "admin/customers.html"
ACTIONS: Final = "admin/customers_actions.html"

STATUS_LABELS: Final = {
    "pending": "Not invited yet", "invited": "Invited", "registered": "Registered",
    "expired": "Invitation expired", "opted_out": "Opted out"}
STATUS_BADGES: Final = {"registered": "ok", "opted_out": "bad", "expired": "warn"}
CONSENT_WORDS: Final = {"yes": "Agreed", "no": "Refused", "unknown": "Not stated"}
OPT_OUT_WORDS: Final = {
    "refused": "Said no in the imported file", "blocked": "Blocked by the salon",
    "unsubscribed": "Unsubscribed, as the imported file said",
    "consent_required": "No consent in the file (consent is required)",
    "stop": "Replied STOP"}
ERASE_PAGE: Final = "admin/customers_erase.html"
# A page number as the pager writes it (ASCII digits: "²".isdigit() is true, int("²") fails).
_PAGE: Final = re.compile(r"[0-9]{1,7}")
# A search with this many digits may hold a phone number (the service searches by phone when
# the text reads as a whole one), so it is never pushed into the address bar or the history.
PHONE_DIGITS: Final = 6
NUL_IN_SEARCH: Final = ("The search has an invisible character in it (NUL) that cannot be "
                        "searched for. Type the search again.")
GONE: Final = ("This customer is no longer in the list: they may have been erased already. "
               "Reload the page to see the list as it is now.")


class Filters(msgspec.Struct, frozen=True):
    """What the list is showing: the search, the status and the page."""

    search: str = ""
    status: str = ""
    page: int = 1

    def query(self, page: int | None = None) -> str:
        """The list's address query for these filters (at another page when given)."""
        shown = self.page if page is None else page
        pairs = [(k, v) for k, v in (("search", self.search), ("status", self.status),
                                     ("page", str(shown) if shown > 1 else "")) if v]
        return urlencode(pairs)

    def without_phone(self) -> Filters:
        """These filters, less a search that may hold a phone number (for an address)."""
        return msgspec.structs.replace(self, search="") if looks_like_phone(self.search) else self

    def hidden(self) -> dict[str, str]:
        """The filters as hidden form fields, so a plain form can come back to this list."""
        return {k: v for k, v in (("search", self.search), ("status", self.status),
                                  ("page", str(self.page) if self.page > 1 else "")) if v}


def looks_like_phone(search: str) -> bool:
    """Whether a search may hold a phone number: it has 6 digits or more (in any script)."""
    return sum(char.isdigit() for char in search) >= PHONE_DIGITS


def read_filters(values: Mapping[str, Any]) -> tuple[Filters, dict[str, str]]:
    """The filters of a query string or form, and the problem with each field that has one."""
    errors: dict[str, str] = {}
    raw_search = values.get("search")
    search = " ".join(raw_search.split()) if isinstance(raw_search, str) else ""
    if "\x00" in search:
        errors["search"] = NUL_IN_SEARCH
    elif len(search) > MAX_SEARCH_CHARS:
        errors["search"] = (f"A search can be at most {MAX_SEARCH_CHARS} characters "
                            f"(this one has {len(search)}). Shorten it.")
    raw_status = values.get("status")
    status = raw_status if isinstance(raw_status, str) else ""
    if status and status not in CUSTOMER_STATUSES:
        errors["status"] = "Choose one of the statuses in the list."
        status = ""
    raw_page = values.get("page")
    page = int(raw_page) if isinstance(raw_page, str) and _PAGE.fullmatch(raw_page) else 1
    return Filters(search, status, min(max(page, 1), MAX_PAGE)), errors


def _wants_results(request: web.Request) -> bool:
    """htmx asking for the results only (not a history restore, which needs the page)."""
    return render.is_htmx(request) and request.headers.get("HX-Target") == "results"


def _count_text(found: service.CustomerList | None, filters: Filters) -> str:
    if found is None:
        return "Fix the search to see customers."
    if found.total == 0:
        return "No customers match." if filters.search or filters.status else "No customers."
    noun = "customer" if found.total == 1 else "customers"
    what = "matching" if filters.search or filters.status else "in all"
    first = (found.page - 1) * found.limit + 1
    last = first + len(found.customers) - 1
    return f"Showing {first}–{last} of {found.total:,} {noun} {what}."


def _common(request: web.Request) -> dict[str, Any]:
    return {"status_labels": STATUS_LABELS, "status_badges": STATUS_BADGES,
            "consent_words": CONSENT_WORDS, "opt_out_words": OPT_OUT_WORDS,
            "timezone": session.current(request).salon.timezone}


@routes.get(BASE)
async def customers_page(request: web.Request) -> web.StreamResponse:
    """The list; with htmx aiming at #results, only the results and the count line."""
    me = session.current(request)
    filters, errors = read_filters(request.query)
    found = None
    if not errors:
        found = await service.masked_page(
            services(request), salon_id=me.salon.id, status=filters.status or None,
            search=filters.search or None, page=filters.page, limit=PAGE_SIZE,
            actor=me.who.sub, request_id=request_id(request))
        filters = msgspec.structs.replace(filters, page=found.page)
    ctx = {**_common(request), "filters": filters, "errors": errors, "found": found,
           "count_text": _count_text(found, filters), "oob": False,
           "erased": request.query.get("erased") == "1",
           "statuses": [(s, STATUS_LABELS[s]) for s in CUSTOMER_STATUSES]}
    status = 422 if errors else 200
    if not _wants_results(request):
        return render.page(request, LIST, ctx, status=status)
    # htmx reads HX-Push-Url before the form's hx-push-url: "false" pushes nothing.
    headers = {"HX-Push-Url": "false"} if looks_like_phone(filters.search) else None
    response = render.fragment(request, LIST, "results", ctx, status=status, headers=headers)
    count = render.fragment(request, LIST, "count", {**ctx, "oob": True})
    response.text = f"{response.text}\n{count.text}"
    return response


@routes.post(BASE + "/{customerId}/reveal")
async def reveal(request: web.Request) -> web.StreamResponse:
    """One customer's whole number, written to pii_access_log with the admin and request id."""
    me = session.current(request)
    found = await service.reveal_phone(
        services(request), salon_id=me.salon.id, customer_id=request.match_info["customerId"],
        actor=me.who.sub, request_id=request_id(request))
    ctx = {"cid": found.id, "name": found.customer_name, "masked": "", "revealed": found.phone}
    if render.is_htmx(request):
        return render.fragment(request, "admin/customers_phone.html", "phone", ctx)
    filters, _ = read_filters(await request.post())
    return render.page(request, "admin/customers_reveal.html", {**ctx, "filters": filters})


def _cell_id(cid: str) -> str:
    return f"customer-actions-{cid}"


async def _question(request: web.Request, filters: Filters, *, message: str | None = None,
                    status: int = 200) -> web.StreamResponse:
    """Ask before erasing: inline for htmx, as a page for a plain browser."""
    me = session.current(request)
    cid = request.match_info["customerId"]
    try:
        name = await service.customer_name(services(request), salon_id=me.salon.id,
                                           customer_id=cid)
    except ServiceError as exc:
        if exc.kind != "not_found":
            raise
        return _gone(request, cid, filters)
    return confirm.ask(request, ACTIONS, ERASE_PAGE, {"cid": cid, "name": name,
                                                     "filters": filters},
                       cell_id=_cell_id(cid), message=message, status=status)


def _gone(request: web.Request, cid: str, filters: Filters) -> web.StreamResponse:
    return confirm.ask(request, ACTIONS, ERASE_PAGE, {"cid": cid, "name": "",
                                                     "filters": filters},
                       cell_id=_cell_id(cid), mode="error", message=GONE, status=404)


@routes.get(BASE + "/{customerId}/erase")
async def erase_question(request: web.Request) -> web.StreamResponse:
    """The confirmation step of the erase (changes nothing)."""
    filters, _ = read_filters(request.query)
    return await _question(request, filters)


@routes.get(BASE + "/{customerId}/actions")
async def row_actions(request: web.Request) -> web.StreamResponse:
    """The row's buttons again (Cancel on the confirmation)."""
    filters, _ = read_filters(request.query)
    cid = request.match_info["customerId"]
    return confirm.buttons(request, ACTIONS, {"cid": cid, "name": "", "filters": filters},
                           cell_id=_cell_id(cid))


@routes.post(BASE + "/{customerId}/erase")
async def erase(request: web.Request) -> web.StreamResponse:
    """The GDPR erase, only with the confirmation's `confirm=yes`; the row becomes a sentence."""
    me = session.current(request)
    cid = request.match_info["customerId"]
    form = await request.post()
    filters, _ = read_filters(form)
    if form.get("confirm") != "yes":
        return await _question(request, filters)
    try:
        name = await service.customer_name(services(request), salon_id=me.salon.id,
                                           customer_id=cid)
        await service.erase(services(request), salon_id=me.salon.id, customer_id=cid,
                            actor=me.who.sub, request_id=request_id(request))
    except ServiceError as exc:
        if exc.kind == "not_found":
            return _gone(request, cid, filters)
        return await _question(request, filters, message=api_error(exc).message,
                               status=api_error(exc).status)
    if render.is_htmx(request):
        return render.fragment(request, "admin/customers_erased.html", "erased",
                               {"cid": cid, "name": name})
    query = filters.without_phone().query()
    raise web.HTTPSeeOther(f"{BASE}?{query + '&' if query else ''}erased=1")
