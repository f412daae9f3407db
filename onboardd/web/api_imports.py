"""Import APIs (spec §7.1): upload + preview (with the whole file's quality summary), a
preview under other columns, confirm, status, error report, imported list, and erasing an
imported customer on request (spec §9.1)."""

from __future__ import annotations

from typing import Annotated, Final, Literal, get_args

import msgspec
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import BadHttpMessage

from onboardd.importing.mapping import Requested
from onboardd.importing.preview import Preview
from onboardd.logging import get_logger
from onboardd.services import customers
from onboardd.services import imports as service
from onboardd.services.import_status import ImportStatus, import_status
from onboardd.web.body import QUERY_INT_MAX, read_json, read_query
from onboardd.web.contract import Media, Multipart, follow, operation
from onboardd.web.errors import ApiError, json_response
from onboardd.web.keys import principal, request_id, salon_of, services

routes = web.RouteTableDef()
log = get_logger("imports")

# Room for multipart boundaries and part headers on top of the file limit.
MULTIPART_OVERHEAD: Final = 64 * 1024
MAX_MAPPING_BYTES: Final = 16 * 1024
READ_CHUNK: Final = 64 * 1024
CustomerStatus = Literal["pending", "invited", "registered", "expired", "opted_out"]
CUSTOMER_STATUSES: Final[tuple[str, ...]] = get_args(CustomerStatus)
MAX_SEARCH_CHARS: Final = 100
MAX_PAGE_SIZE: Final = 100
MALFORMED: Final = ("file: the upload arrived incomplete or garbled (the multipart body is not "
                    "well-formed); send the file again as multipart/form-data in a field "
                    "named 'file'")

_BASE = "/api/salons/{salonId}/customers/import"


class ConfirmBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Optional confirm (or preview-again) body: a mapping overriding the one shown in the
    preview."""

    mapping: dict[str, str | list[str] | None] | None = None


class PreviewAnswer(Preview, frozen=True, kw_only=True):
    """The upload's preview: what was found and how the first rows will be imported.

    confirmUrl is where to POST to import it (optionally with another mapping)."""

    confirm_url: str


class CustomerQuery(msgspec.Struct, frozen=True, rename="camel"):
    """Which imported customers to list: by status, by name or phone (search), a page."""

    status: CustomerStatus | None = None
    search: Annotated[str, msgspec.Meta(max_length=MAX_SEARCH_CHARS)] | None = None
    page: Annotated[int, msgspec.Meta(ge=1, le=QUERY_INT_MAX)] = 1
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAGE_SIZE)] = 20


BATCH_MISSING: Final = "No such import batch in this salon (code not_found)"
MAPPING_REFUSED: Final = ("The body or a field of the mapping is invalid, e.g. a column that "
                          "is not in the file (code mapping_invalid; details.columns lists "
                          "the file's columns)")


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"file: larger than the {limit // (1024 * 1024)} MB limit "
                    f"({limit} bytes); split the customer list into smaller files",
                    code="file_too_large", details={"field": "file", "limit": limit},
                    headers={"Connection": "close"})


async def _read_file_part(part: BodyPartReader, limit: int) -> bytes:
    """Read the file part, refusing as soon as it passes the limit (the rest stays unread)."""
    buffer = bytearray()
    while chunk := await part.read_chunk(READ_CHUNK):
        buffer += chunk
        if len(buffer) > limit:
            raise _too_large(limit)
    return bytes(buffer)


def _requested_mapping(raw: dict[str, str | list[str] | None] | None) -> Requested | None:
    """None values unmap a field; mapping_from_request reads '' the same way."""
    if not raw:
        return None
    return {key: "" if value is None else value for key, value in raw.items()}


def _decode_mapping(raw: bytes) -> Requested | None:
    try:
        decoded = (msgspec.json.decode(raw, type=dict[str, str | list[str] | None])
                   if raw.strip() else None)
    except msgspec.DecodeError:
        raise ApiError(422, 'mapping: must be a JSON object such as {"name": "Client", '
                       '"phone": ["Mobile", "Home Phone"], "consent": "Accepts Marketing"}',
                       details={"field": "mapping"}) from None
    return _requested_mapping(decoded)


async def read_upload(request: web.Request, limit: int
                       ) -> tuple[str, bytes, Requested | None]:
    """Stream the multipart body: the file (with its limit) and the optional mapping. A body
    that is not well-formed multipart (cut short, another boundary, broken part headers) is a
    400 in words."""
    if request.content_length is not None and (
            request.content_length > limit + MULTIPART_OVERHEAD):
        raise _too_large(limit)
    if request.content_type != "multipart/form-data":
        raise ApiError(415, "send the file as multipart/form-data in a field named 'file'")
    try:
        return await _read_parts(request, limit)
    except (ValueError, BadHttpMessage) as exc:
        log.info("import_upload_malformed", reason=str(exc)[:200])
        raise ApiError(400, MALFORMED, code="malformed_upload",
                       details={"field": "file"}) from None


async def _read_parts(request: web.Request, limit: int
                      ) -> tuple[str, bytes, Requested | None]:
    reader = await request.multipart()
    file_name: str | None = None
    data: bytes | None = None
    mapping: Requested | None = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise ApiError(422, "nested multipart bodies are not supported")
        if part.name == "file":
            file_name = part.filename or ""
            data = await _read_file_part(part, limit)
        elif part.name == "mapping":
            raw = await part.read_chunk(MAX_MAPPING_BYTES + 1)
            if len(raw) > MAX_MAPPING_BYTES or not part.at_eof():
                raise ApiError(422, "mapping: too long", details={"field": "mapping"})
            mapping = _decode_mapping(raw)
        else:
            await part.release()
    if data is None or file_name is None:
        raise ApiError(422, "file: missing; send the customer list as the multipart field "
                       "'file' (a .csv, .xlsx or .xls file)", details={"field": "file"})
    if not file_name:
        raise ApiError(422, "file: the part has no filename; send it as a file upload so its "
                       "type (.csv, .xlsx, .xls) is known", details={"field": "file"})
    return file_name, data, mapping


class UploadForm(msgspec.Struct, frozen=True):
    """The upload's parts: the customer list as a file (with its name), and optionally a
    mapping naming the column(s) of each field, e.g. {"name": "Client", "phone": ["Mobile",
    "Home Phone"], "consent": "Accepts Marketing"}."""

    file: bytes
    mapping: dict[str, str | list[str] | None] | None = None


def _status_url(request: web.Request, salon_id: str, batch_id: str) -> str:
    return str(request.url.with_path(f"/api/salons/{salon_id}/customers/import/{batch_id}/status"
                                     ).with_query(None))


@routes.post(_BASE)
@operation(
    "Upload a customer file (.csv, .xlsx, .xls) and answer its preview",
    body=Multipart(UploadForm, json_parts=("mapping",)), answers={201: PreviewAnswer},
    links={201: {
        name: follow(method, _BASE + "/{batchId}" + tail, batchId="$response.body#/batchId")
        for name, method, tail in (
            ("PreviewAgain", "post", "/preview"), ("Confirm", "post", "/confirm"),
            ("Status", "get", "/status"), ("Errors", "get", "/errors.csv"))}},
    description="The file is stored awaiting confirmation; nothing is imported until "
                "confirmUrl is posted.",
    refusals={400: "The multipart body is not well-formed (code malformed_upload)",
              404: "No such salon",
              413: "The file is over [import] max_file_bytes (code file_too_large), or a "
                   "workbook unpacks to more than the limit (code too_large_uncompressed)",
              415: "Not multipart/form-data, or a file type that is not supported or whose "
                   "content does not match its name (codes unsupported_type, "
                   "content_mismatch)",
              422: "The file part is missing or empty, the file cannot be read as a "
                   "customer list (too many rows or columns, no header), or the mapping is "
                   "invalid; the message says which and the fix",
              429: "The salon has used [import] uploads_per_hour; retry after Retry-After "
                   "seconds"})
async def upload(request: web.Request) -> web.Response:
    """Parse and map the file, store it awaiting confirmation, answer the preview. The upload
    counts against [import] uploads_per_hour before its body is read."""
    svc = services(request)
    salon_id = salon_of(request)
    await service.claim_upload(svc, salon_id)
    file_name, data, mapping = await read_upload(request, svc.cfg.import_.max_file_bytes)
    preview = await service.create_batch(svc, salon_id=salon_id, user=principal(request).sub,
                                         file_name=file_name, data=data, requested=mapping,
                                         request_id=request_id(request))
    return json_response(_preview_body(request, salon_id, preview), status=201)


def _preview_body(request: web.Request, salon_id: str, preview: Preview) -> PreviewAnswer:
    return PreviewAnswer(**msgspec.structs.asdict(preview), confirm_url=str(request.url.with_path(
        f"/api/salons/{salon_id}/customers/import/{preview.batch_id}/confirm").with_query(None)))


@routes.post(_BASE + "/{batchId}/preview")
@operation("The preview of a stored upload under another mapping (kept for the confirm)",
           body=ConfirmBody, body_optional=True, answers={200: PreviewAnswer},
           description="Without a body (or without a mapping) the stored mapping is shown.",
           refusals={404: "No such import batch in this salon (code not_found), or its preview "
                          "was dropped after 24 hours unconfirmed (code preview_expired)",
                     409: "The batch has been confirmed; its columns can no longer change "
                          "(code already_confirmed)",
                     422: MAPPING_REFUSED})
async def preview_again(request: web.Request) -> web.Response:
    """The preview of a stored upload under another mapping (kept for the confirm), or with
    the stored one when the body has none."""
    salon_id, batch_id = salon_of(request), request.match_info["batchId"]
    body = ConfirmBody()
    if request.can_read_body and request.content_length != 0:
        body = await read_json(request, ConfirmBody)
    preview = await service.preview_again(services(request), salon_id=salon_id,
                                          batch_id=batch_id,
                                          requested=_requested_mapping(body.mapping),
                                          actor=principal(request).sub,
                                          request_id=request_id(request))
    return json_response(_preview_body(request, salon_id, preview))


@routes.post(_BASE + "/{batchId}/confirm")
@operation("Import a previewed batch (optionally under another mapping); answers at once",
           body=ConfirmBody, body_optional=True, answers={202: ImportStatus, 200: ImportStatus},
           description="202 when this call confirmed the batch, 200 with its current state "
                       "when it had been confirmed before. Location is the status URL.",
           refusals={404: BATCH_MISSING, 422: MAPPING_REFUSED,
                     429: "The salon has used [import] imports_per_hour; retry after "
                          "Retry-After seconds"})
async def confirm(request: web.Request) -> web.Response:
    """Hand the batch to the importer; answers at once with the counters so far."""
    svc = services(request)
    salon_id, batch_id = salon_of(request), request.match_info["batchId"]
    body = ConfirmBody()
    if request.can_read_body and request.content_length != 0:
        body = await read_json(request, ConfirmBody)
    state, confirmed = await service.confirm_batch(
        svc, salon_id=salon_id, batch_id=batch_id, requested=_requested_mapping(body.mapping))
    url = _status_url(request, salon_id, batch_id)
    return json_response(import_status(state, url), status=202 if confirmed else 200,
                         headers={"Location": url})


@routes.get(_BASE + "/{batchId}/status")
@operation("An import's progress, counters and first 100 errors", answers={200: ImportStatus},
           refusals={404: BATCH_MISSING})
async def status(request: web.Request) -> web.Response:
    """Progress, counters and the first 100 errors."""
    salon_id, batch_id = salon_of(request), request.match_info["batchId"]
    state = await service.batch_status(services(request), salon_id, batch_id)
    return json_response(import_status(state, _status_url(request, salon_id, batch_id)))


@routes.get(_BASE + "/{batchId}/errors.csv")
@operation("Every rejected or skipped row of an import, as CSV (the read is logged)",
           answers={200: Media("text/csv", "UTF-8 with a BOM: Row, the file's original "
                                           "columns, Errors; one line per rejected or "
                                           "skipped row")},
           refusals={404: BATCH_MISSING,
                     409: "The batch has not been confirmed yet (code not_confirmed)"})
async def errors_csv(request: web.Request) -> web.Response:
    """Every rejected or skipped row: row number, original cells, errors."""
    salon_id, batch_id = salon_of(request), request.match_info["batchId"]
    text, _count = await service.error_report(
        services(request), salon_id=salon_id, batch_id=batch_id,
        actor=principal(request).sub, request_id=request_id(request))
    # The BOM makes Excel read the report as UTF-8.
    return web.Response(body=("\ufeff" + text).encode(), content_type="text/csv",
                        charset="utf-8", headers={
                            "Content-Disposition":
                                f'attachment; filename="import-{batch_id}-errors.csv"',
                            "Cache-Control": "no-store"})


@routes.get("/api/salons/{salonId}/customers/imported")
@operation("The salon's imported customers, searchable by name or phone (the read is logged)",
           query=CustomerQuery, answers={200: customers.CustomerPage})
async def imported(request: web.Request) -> web.Response:
    """The salon's imported customers, searchable by name or phone; PII access is logged."""
    query = read_query(request, CustomerQuery)
    body = await customers.list_customers(
        services(request), salon_id=salon_of(request), status=query.status,
        search=query.search, page=query.page, limit=query.limit, actor=principal(request).sub,
        request_id=request_id(request))
    return json_response(body, headers={"Cache-Control": "no-store"})


@routes.delete("/api/salons/{salonId}/customers/imported/{customerId}")
@operation("Erase an imported customer and what is stored about them (GDPR)",
           answers={204: None},
           refusals={404: "No such imported customer in this salon (code customer_not_found)",
                     409: "An import awaiting confirmation or running holds their number; "
                          "the message says when to retry (code import_in_progress, "
                          "details.imports), or uploads keep arriving (code "
                          "imports_arriving; Retry-After)"})
async def erase(request: web.Request) -> web.Response:
    """GDPR erase of one imported customer (onboardd.services.customers.erase says what goes
    and what stays)."""
    await customers.erase(services(request), salon_id=salon_of(request),
                          customer_id=request.match_info["customerId"],
                          actor=principal(request).sub, request_id=request_id(request))
    return web.Response(status=204)
