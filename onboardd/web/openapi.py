"""The published API contract: OpenAPI 3.1, built from the app's router and the operations
marked beside the handlers (``onboardd.web.contract``), with the JSON Schemas msgspec derives
from the very types the handlers decode and encode.

GET /api/openapi.json   the document (no token needed: it describes, it holds no data)
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

import msgspec
from aiohttp import web

from onboardd import __version__
from onboardd.web.contract import (
    Form,
    Media,
    Multipart,
    Operation,
    operation,
    operation_of,
)
from onboardd.web.errors import ErrorBody
from onboardd.web.middleware import api_area

routes = web.RouteTableDef()

PATH: Final = "/api/openapi.json"
# The admin UI's pages are HTML for people, not part of the API.
UNPUBLISHED_PREFIXES: Final = ("/admin",)
_PARAM_RE = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_REF: Final = "#/components/schemas/{name}"
_ERROR_REF: Final = {"$ref": "#/components/schemas/ErrorBody"}

SECURITY_SCHEMES: Final = {
    "adminToken": {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "A JWT from the host app (see the README's JWT contract) with role "
                       "admin and the salon's id in its salons claim.",
    },
    "customerToken": {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "A JWT from the host app for a customer (role user); its phone claim, "
                       "set once the app has verified the number, proves the number is theirs.",
    },
    "twilioSignature": {
        "type": "apiKey", "in": "header", "name": "X-Twilio-Signature",
        "description": "Twilio's request signature over [http] public_base_url + path and the "
                       "form, with the account's auth token.",
    },
    "metricsToken": {
        "type": "http", "scheme": "bearer",
        "description": "[metrics] token, when one is configured.",
    },
}

# Why each refusal happens, for the statuses every operation of an area can answer.
_UNAVAILABLE: Final = ("The database is unreachable (details.reason database_unreachable) or a "
                       "lock conflict outlasted its retries (conflict); retry after Retry-After "
                       "seconds")
_AREA_REFUSALS: Final[Mapping[str, Mapping[int, str]]] = {
    "admin": {401: "No token, or a token that is invalid, expired or not an admin's "
                   "(details.reason says which)",
              403: "The token does not grant this salon",
              404: "No such salon, or no such resource in it",
              429: "Too many requests; retry after Retry-After seconds",
              503: _UNAVAILABLE},
    "mobile": {401: "No token, or a token that is invalid or expired (details.reason says "
                    "which)",
               403: "Not a customer token",
               429: "Too many requests; retry after Retry-After seconds",
               503: _UNAVAILABLE},
    "webhook": {400: "Not a UTF-8 form, or a field is missing or malformed (the message "
                     "names it)",
                403: "X-Twilio-Signature is missing or does not match",
                429: "Too many requests; retry after Retry-After seconds",
                503: _UNAVAILABLE + " (Twilio retries)"},
}
_BODY_REFUSALS: Final = {400: "The body is not valid JSON",
                         408: "The body came too slowly",
                         413: "The body is too large",
                         415: "The body is not sent as application/json",
                         422: "A field is missing, unknown or invalid (the message names it)"}
_QUERY_REFUSALS: Final = {422: "A query parameter is invalid (the message names it and what "
                                "it must be)"}


def published(path: str) -> bool:
    """Whether a route path belongs in the contract."""
    return not path.startswith(UNPUBLISHED_PREFIXES)


def route_operations(app: web.Application
                     ) -> Iterator[tuple[str, str, Operation | None, object]]:
    """(method, path, its operation or None, handler) for every published route."""
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method in ("HEAD", "*"):
            continue
        path = resource.canonical
        if published(path):
            yield route.method.lower(), path, operation_of(route.handler), route.handler


def build(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the app's published routes."""
    found = [(m, p, op) for m, p, op, _h in route_operations(app) if op is not None]
    kinds = _types(op for _m, _p, op in found)
    schemas, components = msgspec.json.schema_components(kinds, ref_template=_REF)
    by_type = dict(zip(kinds, schemas, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for method, path, op in sorted(found, key=lambda f: (f[1], f[0])):
        paths.setdefault(path, {})[method] = _operation(method, path, op, by_type, components)
    for op_query in {op.query for _m, _p, op in found if op.query is not None}:
        components.pop(op_query.__name__, None)  # inlined as parameters
    return {
        "openapi": "3.1.0",
        "info": {"title": "onboardd", "version": __version__,
                 "description": "Import a salon's customers, invite them with a welcome offer, "
                                "recognise them when they register, apply the offer when they "
                                "book. Every refusal has the one error shape (ErrorBody)."},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }


def _types(ops: Iterator[Operation]) -> tuple[type, ...]:
    kinds: list[type] = [ErrorBody]
    for op in ops:
        body = op.body.kind if isinstance(op.body, Form | Multipart) else op.body
        for kind in (body, op.query, *op.answers.values()):
            if isinstance(kind, type) and kind not in kinds:
                kinds.append(kind)
    return tuple(kinds)


def _operation(method: str, path: str, op: Operation, by_type: Mapping[type, Any],
               components: dict[str, Any]) -> dict[str, Any]:
    area = api_area(path)
    out: dict[str, Any] = {
        "operationId": operation_id(method, path),
        "summary": op.summary,
        "tags": [area or "service"],
        "parameters": _path_parameters(path) + (
            _query_parameters(components[op.query.__name__]) if op.query else []),
        "responses": _responses(op, area, by_type),
        "security": _security(area, path),
    }
    if op.description:
        out["description"] = op.description
    if op.body is not None:
        out["requestBody"] = _request_body(op, by_type, components)
    if not out["parameters"]:
        del out["parameters"]
    return out


def operation_id(method: str, path: str) -> str:
    """getApiSalonsBySalonIdSettings and the like: unique per method and path."""
    return f"{method.lower()}{_camel(path)}"


def _camel(path: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", _PARAM_RE.sub(lambda m: "By " + m.group(1), path))
    return "".join(w[:1].upper() + w[1:] for w in words if w)


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True,
             "schema": {"type": "string", "minLength": 1}}
            for name in _PARAM_RE.findall(path)]


def _query_parameters(schema: Mapping[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = _without_null(prop)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                 "schema": prop}
        if "description" in prop:
            param["description"] = prop["description"]
        out.append(param)
    return out


def _without_null(prop: Mapping[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: drop the null alternative."""
    prop = dict(prop)
    if "default" in prop and prop["default"] is None:
        del prop["default"]
    options = prop.get("anyOf")
    if options is not None:
        kept = [o for o in options if o != {"type": "null"}]
        del prop["anyOf"]
        if len(kept) == 1:
            prop.update(kept[0])
        else:
            prop["anyOf"] = kept
    return prop


def _binary_files(ref: Mapping[str, Any], components: dict[str, Any]) -> Mapping[str, Any]:
    """A multipart struct's bytes parts are files (binary), not base64 text."""
    name = str(ref.get("$ref", "")).rsplit("/", 1)[-1]
    schema = components.get(name)
    if schema is not None:
        for prop in schema.get("properties", {}).values():
            if prop.get("contentEncoding") == "base64":
                prop.pop("contentEncoding")
                prop["format"] = "binary"
    return ref


def _request_body(op: Operation, by_type: Mapping[type, Any],
                  components: dict[str, Any]) -> dict[str, Any]:
    if isinstance(op.body, Form):
        content = {"application/x-www-form-urlencoded": {"schema": by_type[op.body.kind]}}
    elif isinstance(op.body, Multipart):
        content = {"multipart/form-data": {
            "schema": _binary_files(by_type[op.body.kind], components),
            "encoding": {part: {"contentType": "application/json"}
                         for part in op.body.json_parts}}}
    else:
        assert op.body is not None
        content = {"application/json": {"schema": by_type[op.body]}}
    return {"required": not op.body_optional, "content": content}


def _responses(op: Operation, area: str | None, by_type: Mapping[type, Any]
               ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, answer in op.answers.items():
        out[str(status)] = _answer(status, answer, by_type)
        if status in op.links:
            out[str(status)]["links"] = {
                name: {"operationId": operation_id(link.method, link.path),
                       "parameters": dict(link.parameters)}
                for name, link in op.links[status].items()}
    refusals: dict[int, str] = dict(_AREA_REFUSALS.get(area or "", {}))
    if op.body is not None and not isinstance(op.body, Form | Multipart):
        refusals.update(_BODY_REFUSALS)
    if op.query is not None:
        refusals.setdefault(422, _QUERY_REFUSALS[422])
    refusals.update(op.refusals)
    for status, why in sorted(refusals.items()):
        headers = ({"Retry-After": {"schema": {"type": "integer"},
                                    "description": "Seconds to wait before retrying"}}
                   if status in (429, 503) else None)
        entry: dict[str, Any] = {"description": why,
                                 "content": {"application/json": {"schema": _ERROR_REF}}}
        if headers:
            entry["headers"] = headers
        out[str(status)] = entry
    return out


def _answer(status: int, answer: type | Media | None, by_type: Mapping[type, Any]
            ) -> dict[str, Any]:
    if answer is None:
        return {"description": "Done; no content" if status == 204 else "Done"}
    if isinstance(answer, Media):
        return {"description": answer.description,
                "content": {answer.media_type: {"schema": dict(answer.schema)}}}
    doc = (answer.__doc__ or "").strip().splitlines()
    return {"description": doc[0] if doc else answer.__name__,
            "content": {"application/json": {"schema": by_type[answer]}}}


def _security(area: str | None, path: str) -> list[dict[str, list[str]]]:
    if area == "admin":
        return [{"adminToken": []}]
    if area == "mobile":
        return [{"customerToken": []}]
    if area == "webhook":
        return [{"twilioSignature": []}]
    if path == "/metrics":
        return [{}, {"metricsToken": []}]
    return []


class OpenApiDocument(msgspec.Struct, frozen=True):
    """The OpenAPI 3.1 document (see https://spec.openapis.org/oas/v3.1.0)."""

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


_DOCUMENT: Final = web.AppKey("openapi_document", dict[str, bytes])


def setup(app: web.Application) -> None:
    """Serve the document; it is built at the first request, once every route is added."""
    app[_DOCUMENT] = {}
    app.add_routes(routes)


@routes.get(PATH)
@operation("The API's OpenAPI 3.1 document", answers={200: OpenApiDocument})
async def openapi_json(request: web.Request) -> web.StreamResponse:
    """Built once per app (the routes do not change after start-up)."""
    built = request.app[_DOCUMENT]
    if "json" not in built:
        built["json"] = msgspec.json.encode(build(request.app))
    return web.Response(body=built["json"], content_type="application/json")
