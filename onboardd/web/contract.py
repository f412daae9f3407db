"""What each API operation takes and answers, declared once beside its handler.

A handler is marked with ``@operation(...)``: its summary, the msgspec type of its JSON body
and of its query parameters (the same types ``read_json`` and ``read_query`` decode into),
and its answers by status (the types it encodes). ``onboardd.web.openapi`` builds the
published OpenAPI document from these marks and the app's router, so the contract cannot
drift from the code: a route without a mark fails a test, and so does a mark without a route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import msgspec
from aiohttp import web

from onboardd.web.body import query_fields
from onboardd.web.errors import ApiError
from onboardd.web.middleware import api_area

Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])

MARK: Final = "__onboardd_operation__"
# Every marked handler, so a test can find a mark whose route was never added.
MARKED: Final[list[Callable[..., Awaitable[Any]]]] = []


@dataclass(frozen=True)
class Media:
    """An answer that is not JSON: its media type and a sentence about it."""

    media_type: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


# What an answer carries: a msgspec type (JSON), Media, or None (no content).
Answer = type | Media | None


@dataclass(frozen=True)
class Form:
    """A form-encoded request body (Twilio's webhooks): the struct naming its fields."""

    kind: type


@dataclass(frozen=True)
class Multipart:
    """A multipart/form-data request body: the struct naming its parts (bytes for a file)."""

    kind: type
    json_parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: a value of this answer (``$response.body#/id``) or of this request
    (``$request.path.salonId``) feeds a parameter of the operation at method + path."""

    method: str
    path: str
    parameters: Mapping[str, str]


def follow(method: str, path: str, **parameters: str) -> Link:
    """A link to the operation at method + path; salonId is passed on unless given."""
    params = {"salonId": "$request.path.salonId"} if "{salonId}" in path else {}
    params.update(parameters)
    return Link(method, path, params)


@dataclass(frozen=True)
class Operation:
    """One documented operation."""

    summary: str
    answers: Mapping[int, Answer]
    body: type | Form | Multipart | None = None
    query: type | None = None
    refusals: Mapping[int, str] = field(default_factory=dict)
    description: str = ""
    body_optional: bool = False
    links: Mapping[int, Mapping[str, Link]] = field(default_factory=dict)


def operation(summary: str, *, answers: Mapping[int, Answer],
              body: type | Form | Multipart | None = None, query: type | None = None,
              refusals: Mapping[int, str] | None = None, description: str = "",
              body_optional: bool = False,
              links: Mapping[int, Mapping[str, Link]] | None = None
              ) -> Callable[[Handler], Handler]:
    """Mark a handler with its operation (apply below the route decorator)."""
    op = Operation(summary=summary, answers=answers, body=body, query=query,
                   refusals=refusals or {}, description=description,
                   body_optional=body_optional, links=links or {})

    def mark(handler: Handler) -> Handler:
        setattr(handler, MARK, op)
        MARKED.append(handler)
        return handler

    return mark


def operation_of(handler: object) -> Operation | None:
    """The operation a handler was marked with, if any."""
    found = getattr(handler, MARK, None)
    return found if isinstance(found, Operation) else None


class Status(msgspec.Struct, frozen=True):
    """A probe's answer."""

    status: str


def query_names(kind: type | None) -> frozenset[str]:
    """The query parameters an operation takes (by their names in the URL)."""
    return frozenset() if kind is None else frozenset(query_fields(kind))


@web.middleware
async def known_query_only(request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                           ) -> web.StreamResponse:
    """A documented operation refuses query parameters it does not take (a misspelt pageSize
    would otherwise be silently ignored), naming the first and those it takes."""
    # Twilio's webhooks may carry what the operator put in the callback URL (it is signed).
    # (The area first: a webhook's query is not parsed here at all.)
    checked = api_area(request.path) in ("admin", "mobile") and request.query
    op = operation_of(request.match_info.handler) if checked else None
    if op is not None:
        allowed = query_names(op.query)
        unknown = next((name for name in request.query if name not in allowed), None)
        if unknown is not None:
            takes = (f"it takes {', '.join(sorted(allowed))}" if allowed
                     else "it takes none")
            raise ApiError(422, f"{unknown[:40]}: not a parameter of this operation; {takes} "
                           "(names are camelCase, as in /api/openapi.json)",
                           details={"field": unknown[:200], "allowed": sorted(allowed)})
        repeated = next((name for name in allowed if len(request.query.getall(name, ())) > 1),
                        None)
        if repeated is not None:
            raise ApiError(422, f"{repeated}: given more than once; give it once",
                           details={"field": repeated})
    return await handler(request)
