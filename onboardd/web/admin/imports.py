"""The import wizard: upload (drop zone or file picker), the preview with its column dropdowns
and the whole file's quality summary, confirm, the progress to 100 % and the summary, the error
report and a sample file. Every step calls the service the import API calls."""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from onboardd.db.imports import BatchStatus
from onboardd.importing import quality_words
from onboardd.importing.preview import Preview
from onboardd.services import imports as service
from onboardd.services.errors import ServiceError
from onboardd.services.import_status import progress_percent
from onboardd.web import api_imports
from onboardd.web.admin import import_view as view
from onboardd.web.admin import render, session
from onboardd.web.admin.formats import problem_sentence
from onboardd.web.errors import ApiError, api_error
from onboardd.web.keys import request_id, services

routes = web.RouteTableDef()

PAGE: Final = "admin/import.html"
RESULTS: Final = "admin/import_results.html"
PREVIEW: Final = "admin/import_preview.html"
PROGRESS: Final = "admin/import_progress.html"
# Rows of the first errors listed on the summary (the report has them all).
SUMMARY_ERRORS: Final = 10
GONE: Final = ("This import no longer exists: a preview that is not confirmed within 24 hours "
               "is dropped with its file. Upload the file again.")


def _base(batch_id: str) -> str:
    return f"/admin/import/{batch_id}"


def _step(request: web.Request, step: str, ctx: dict[str, Any], *, status: int = 200,
          headers: dict[str, str] | None = None) -> web.Response:
    """A wizard step: swapped into #import-step for htmx, else the whole page."""
    svc = services(request)
    limits = svc.cfg.import_
    swapped = render.is_htmx(request)
    full = {"step": step, "max_bytes": limits.max_file_bytes, "max_rows": limits.max_rows,
            "max_mb": f"{limits.max_file_bytes / (1024 * 1024):g}", "problem": None,
            "swapped": swapped, **ctx}
    if swapped:
        return render.fragment(request, PAGE, "step", full, status=status, headers=headers)
    response = render.page(request, PAGE, full, status=status)
    response.headers.update(headers or {})
    return response


def _upload_step(request: web.Request, problem: str | None = None, status: int = 200,
                 headers: dict[str, str] | None = None) -> web.Response:
    return _step(request, "upload", {"problem": problem}, status=status, headers=headers)


def _preview_ctx(preview: Preview, form: Any = None,
                 field_problem: tuple[str, str] | None = None) -> dict[str, Any]:
    quality = preview.quality
    phone_columns = view.as_list(preview.mapping_fields.get("phone"))
    return {
        "p": preview, "base": _base(preview.batch_id), "choices": view.choices(preview, form),
        "field_problem": field_problem, "quality": quality, "oob": False,
        "lead": quality_words.quality_lead(quality) if quality else "",
        "lines": quality_words.quality_lines(quality) if quality else [],
        "consent": (quality_words.consent_sentence(quality, preview.consent.columns) if quality
                    else ""),
        "phones": {row.row_number: view.masked_phone(row, phone_columns)
                   for row in preview.preview},
    }


def _progress_ctx(state: BatchStatus, said_before: str | None = None) -> dict[str, Any]:
    """The step's figures; `said` is the 10 % step a screen reader hears, and `announce`
    whether a poll that last said `said_before` has a new step to say."""
    percent = progress_percent(state)
    said = percent // 10 * 10
    return {"state": state, "base": _base(state.id), "percent": percent, "said": said,
            "announce": said_before is not None and said_before != str(said),
            "first_errors": state.first_errors[:SUMMARY_ERRORS]}


def _state_step(request: web.Request, state: BatchStatus, *,
                headers: dict[str, str] | None = None) -> web.Response:
    """The progress step while the importer works, the summary once it is done."""
    step = "progress" if state.status == "processing" else "summary"
    return _step(request, step, _progress_ctx(state), headers=headers)


@routes.get("/admin/import")
async def upload_page(request: web.Request) -> web.Response:
    """Step 1: the drop zone, the file picker and the sample file."""
    return _upload_step(request)


@routes.get("/admin/import/sample.csv")
async def sample(_request: web.Request) -> web.Response:
    """A small customer file to start from; it imports as it is."""
    return web.Response(body=("\ufeff" + view.sample_csv()).encode(), content_type="text/csv",
                        charset="utf-8", headers={
                            "Content-Disposition": 'attachment; filename="customers-sample.csv"'})


@routes.post("/admin/import")
async def upload(request: web.Request) -> web.Response:
    """Parse and store the file (as the API's upload does), then show its preview."""
    svc = services(request)
    me = session.current(request)
    limit = svc.cfg.import_.max_file_bytes
    try:
        await service.claim_upload(svc, me.salon.id)
        file_name, data, _mapping = await api_imports.read_upload(request, limit)
        preview = await service.create_batch(svc, salon_id=me.salon.id, user=me.who.sub,
                                             file_name=file_name, data=data, requested=None)
    except (ServiceError, ApiError) as exc:
        err = api_error(exc) if isinstance(exc, ServiceError) else exc
        retry = exc.retry_after_s if isinstance(exc, ServiceError) else None
        details = err.details if isinstance(err.details, dict) else {}
        problem = view.upload_sentence(err.status, err.code, err.message, details,
                                       max_bytes=limit, retry_after_s=retry,
                                       timezone=me.salon.timezone)
        return _upload_step(request, problem, status=err.status, headers=err.headers)
    return _step(request, "preview", _preview_ctx(preview),
                 headers={"HX-Push-Url": _base(preview.batch_id)})


@routes.get("/admin/import/{batchId}")
async def batch_page(request: web.Request) -> web.Response:
    """The batch at whatever step it is: its preview, its progress or its summary."""
    svc = services(request)
    me = session.current(request)
    salon_id, batch_id = me.salon.id, request.match_info["batchId"]
    try:
        state = await service.batch_status(svc, salon_id, batch_id)
        if state.status != "preview":
            return _state_step(request, state)
        preview = await service.preview_again(svc, salon_id=salon_id, batch_id=batch_id,
                                              requested=None, actor=me.who.sub)
    except service.ImportProblem as exc:
        if exc.kind != "not_found":
            raise
        return _upload_step(request, GONE, status=404)
    return _step(request, "preview", _preview_ctx(preview))


def _results(request: web.Request, ctx: dict[str, Any], status: int = 200) -> web.Response:
    """The re-preview's answer: the summary and table, and the dropdowns' messages out of
    band (the dropdowns themselves stay, with the focus)."""
    if not render.is_htmx(request):
        return _step(request, "preview", ctx, status=status)
    return render.fragment(request, RESULTS, "results", {**ctx, "oob": True}, status=status)


@routes.post("/admin/import/{batchId}/preview")
async def preview_again(request: web.Request) -> web.Response:
    """A dropdown changed: preview the stored file again with the columns chosen."""
    svc = services(request)
    me = session.current(request)
    salon_id, batch_id = me.salon.id, request.match_info["batchId"]
    form = await request.post()
    try:
        preview = await service.preview_again(svc, salon_id=salon_id, batch_id=batch_id,
                                              requested=view.requested_from_form(form),
                                              actor=me.who.sub)
    except service.ImportProblem as exc:
        if exc.code != "mapping_invalid":
            return _gone_or_confirmed(request, exc, batch_id)
        # Refused columns: the last good preview, the choice kept, the sentence beside it.
        preview = await service.preview_again(svc, salon_id=salon_id, batch_id=batch_id,
                                              requested=None, actor=me.who.sub)
        field = view.problem_field(exc.details)
        return _results(request, _preview_ctx(preview, form, (field, problem_sentence(
            exc.message))), status=422)
    return _results(request, _preview_ctx(preview))


def _gone_or_confirmed(request: web.Request, exc: service.ImportProblem,
                       batch_id: str) -> web.Response:
    """The batch is gone (back to the upload, saying so) or was confirmed meanwhile (to its
    progress)."""
    if exc.kind == "not_found":
        return _upload_step(request, GONE, status=404,
                            headers={"HX-Retarget": "#import-step", "HX-Reswap": "innerHTML",
                                     "HX-Push-Url": "/admin/import"})
    if render.is_htmx(request):
        return web.Response(headers={"HX-Redirect": _base(batch_id)})
    raise web.HTTPSeeOther(_base(batch_id))


@routes.post("/admin/import/{batchId}/confirm")
async def confirm(request: web.Request) -> web.Response:
    """Hand the batch to the importer with the columns shown; then follow its progress."""
    svc = services(request)
    me = session.current(request)
    batch_id = request.match_info["batchId"]
    form = await request.post()
    requested = view.requested_from_form(form) if view.has_mapping(form) else None
    try:
        state, _confirmed = await service.confirm_batch(svc, salon_id=me.salon.id,
                                                        batch_id=batch_id, requested=requested)
    except service.ImportProblem as exc:
        err = api_error(exc)
        if exc.kind == "rate_limited":
            problem = view.retry_sentence("confirmed an import", exc.details, exc.retry_after_s,
                                          me.salon.timezone)
            problem += " This preview stays here for 24 hours."
        elif exc.kind == "not_found":
            problem = GONE
        else:
            problem = problem_sentence(exc.message)
        if not render.is_htmx(request):
            return render.problem(request, err.status, "Not imported yet", problem)
        return render.fragment(request, PREVIEW, "confirm_problem",
                               {"confirm_problem": problem},
                               status=err.status, headers={
                                   **err.headers, "HX-Retarget": "#confirm-problem",
                                   "HX-Reswap": "innerHTML"})
    return _state_step(request, state)


@routes.get("/admin/import/{batchId}/status")
async def status(request: web.Request) -> web.Response:
    """The progress bar (htmx polls it every second); once the batch is done, the summary
    takes the whole step."""
    salon_id, batch_id = session.current(request).salon.id, request.match_info["batchId"]
    if not render.is_htmx(request):
        raise web.HTTPSeeOther(_base(batch_id))
    try:
        state = await service.batch_status(services(request), salon_id, batch_id)
    except service.ImportProblem:
        return _upload_step(request, GONE, status=404, headers={
            "HX-Retarget": "#import-step", "HX-Reswap": "innerHTML"})
    if state.status == "processing":
        return render.fragment(request, PROGRESS, "meter",
                               _progress_ctx(state, request.query.get("said", "")))
    if state.status == "preview":
        return web.Response(headers={"HX-Redirect": _base(batch_id)})
    return _state_step(request, state, headers={"HX-Retarget": "#import-step",
                                                "HX-Reswap": "innerHTML"})


@routes.get("/admin/import/{batchId}/errors.csv")
async def errors_csv(request: web.Request) -> web.Response:
    """Every row that was not imported, as the API's errors.csv (the download is logged)."""
    me = session.current(request)
    batch_id = request.match_info["batchId"]
    text, _count = await service.error_report(
        services(request), salon_id=me.salon.id, batch_id=batch_id, actor=me.who.sub,
        request_id=request_id(request))
    return web.Response(body=("\ufeff" + text).encode(), content_type="text/csv",
                        charset="utf-8", headers={
                            "Content-Disposition":
                                f'attachment; filename="import-{batch_id}-errors.csv"',
                            "Cache-Control": "no-store"})
