"""Pure rules of the web front: which salon ids can route, and the caller's error for a
request aiohttp could not parse (never echoing its bytes)."""

from __future__ import annotations

import pytest
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, InvalidHeader, LineTooLong

from onboardd.domain.salons import salon_id_problem
from onboardd.web.server import unparseable_request_error


@pytest.mark.parametrize("salon_id", ["87084764-9d1c-4479-8f8f-fbd91a4f560e", "s1", "A..B",
                                      "salon 7", "ü", "a%2Fb"])
def test_ordinary_ids_route(salon_id: str) -> None:
    assert salon_id_problem(salon_id) is None


@pytest.mark.parametrize(("salon_id", "problem"), [
    ("", "is empty"),
    ("A/../B", "must not contain '/'"),
    ("/", "must not contain '/'"),
    ("a\x00b", "control characters"),
    ("a\nb", "control characters"),
    ("a\x7fb", "control characters"),
])
def test_ids_that_can_never_name_a_salon(salon_id: str, problem: str) -> None:
    found = salon_id_problem(salon_id)
    assert found is not None and problem in found


SECRET = b"Bearer eyJhbGciOiJIUzI1NiJ9.secret-part"


@pytest.mark.parametrize(("exc", "status", "code"), [
    (LineTooLong(SECRET[:100] + b"...", 8190), 431, "headers_too_large"),
    (BadHttpMessage("Too many headers received"), 431, "headers_too_large"),
    (InvalidHeader(SECRET), 400, "bad_request"),
    (BadHttpMethod(SECRET.decode()), 400, "bad_request"),
    (RuntimeError(SECRET.decode()), 500, "internal_error"),
])
def test_unparseable_requests_get_a_status_and_never_their_bytes(
        exc: BaseException, status: int, code: str) -> None:
    error = unparseable_request_error(exc, "rid-1")
    assert (error.status, error.code) == (status, code)
    assert "secret-part" not in error.message + repr(error.details)
    if isinstance(exc, LineTooLong):
        assert error.details == {"limitBytes": 8190}
    if status == 500:
        assert "rid-1" in error.message
