"""Request body and query parsing into typed structs, with errors that name the field."""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec
from aiohttp import web

from onboardd.web.errors import ApiError

T = TypeVar("T")

_PATH_RE = re.compile(r"`\$\.?([^`]*)`")
_MISSING_RE = re.compile(r"missing required field `([^`]+)`")
_UNKNOWN_RE = re.compile(r"unknown field `([^`]+)`")


def _field_of(exc: msgspec.ValidationError) -> str:
    match = _PATH_RE.search(str(exc))
    return match.group(1) if match else ""


def _validation_error(exc: msgspec.ValidationError) -> ApiError:
    """A 422 naming the field: the full path of a missing or unknown one, else where it failed."""
    path = _field_of(exc)
    text = str(exc)
    if missing := _MISSING_RE.search(text):
        field = f"{path}.{missing.group(1)}" if path else missing.group(1)
        return ApiError(422, f"{field}: is required", details={"field": field})
    if unknown := _UNKNOWN_RE.search(text):
        field = f"{path}.{unknown.group(1)}" if path else unknown.group(1)
        return ApiError(422, f"{field}: unknown field; check the spelling (field names are "
                        "camelCase, as in the API reference)", details={"field": field})
    message = text.split(" - at ")[0]
    return ApiError(422, f"{path or 'body'}: {message}",
                    details={"field": path} if path else {})


async def read_json(request: web.Request, kind: type[T]) -> T:
    """Decode the JSON body into kind; 415/400/422 with the offending field named."""
    if request.content_type != "application/json":
        raise ApiError(415, "send the body as JSON with Content-Type: application/json")
    raw = await request.read()
    if b"\\u0000" in raw:
        raise ApiError(422, "body: text must not contain NUL characters (\\u0000); remove them")
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None


def read_query(request: web.Request, kind: type[T]) -> T:
    """Decode the query string into kind (a struct whose fields are the parameters, with their
    bounds): numbers and booleans from text, an empty value as absent, surrounding spaces
    dropped, parameters the struct does not name ignored; 422 naming the parameter otherwise."""
    fields = query_fields(kind)
    given = {name: value.strip() for name, value in request.query.items()
             if name in fields and value.strip()}
    # (Unknown names never get here: contract.known_query_only refuses them first.)
    try:
        return msgspec.convert(given, type=kind, strict=False)
    except msgspec.ValidationError as exc:
        if missing := _MISSING_RE.search(str(exc)):
            name = missing.group(1)
            raise ApiError(422, f"{name}: is required", details={"field": name}) from None
        name = _field_of(exc)
        shown = given.get(name, "")[:40]
        rule = _rule(fields[name]) if name in fields else str(exc).split(" - at ")[0]
        raise ApiError(422, f"{name}: {rule}, got '{shown}'", details={"field": name}) from None


def query_fields(kind: type) -> dict[str, msgspec.inspect.Type]:
    """The parameters a query struct reads (by their names in the URL) and their types."""
    info = msgspec.inspect.type_info(kind)
    if not isinstance(info, msgspec.inspect.StructType):
        raise TypeError(f"{kind!r} is not a struct of query parameters")
    return {f.encode_name: f.type for f in info.fields}


def _rule(kind: msgspec.inspect.Type) -> str:
    """What a query parameter of this type must be, in words."""
    if isinstance(kind, msgspec.inspect.Metadata):
        return _rule(kind.type)
    if isinstance(kind, msgspec.inspect.UnionType):
        kinds = [t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType)]
        return _rule(kinds[0]) if len(kinds) == 1 else "has the wrong form"
    if isinstance(kind, msgspec.inspect.LiteralType):
        return "must be one of " + ", ".join(str(v) for v in kind.values)
    if isinstance(kind, msgspec.inspect.BoolType):
        return "must be true or false"
    if isinstance(kind, msgspec.inspect.IntType):
        low = "any" if kind.ge is None else kind.ge
        return (f"must be a whole number from {low} to {kind.le}" if kind.le is not None
                else f"must be a whole number of at least {low}")
    if isinstance(kind, msgspec.inspect.StrType) and kind.max_length is not None:
        return f"must be at most {kind.max_length} characters"
    return "has the wrong form"


# Large enough for any page or count, small enough that offsets stay within int64.
QUERY_INT_MAX = 1_000_000


def query_int(request: web.Request, name: str, default: int, *, minimum: int = 0,
              maximum: int = QUERY_INT_MAX) -> int:
    """An integer query parameter within bounds, else a 422 naming it."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, f"{name}: '{raw}' is not a whole number",
                       details={"field": name}) from None
    if not minimum <= value <= maximum:
        raise ApiError(422, f"{name}: must be between {minimum} and {maximum}, got {value}",
                       details={"field": name})
    return value


def query_choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str | None:
    """An optional query parameter restricted to choices."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise ApiError(422, f"{name}: must be one of {', '.join(choices)}, got '{raw}'",
                       details={"field": name, "allowed": list(choices)})
    return raw
