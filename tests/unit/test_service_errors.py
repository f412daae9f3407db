"""Domain errors of the services and their one mapping to HTTP; the offer patch merge; the
mobile check's sliding minute."""

from __future__ import annotations

import asyncpg
import msgspec
import pytest

from onboardd.domain.offers import Offer, OfferInput, OfferPatch, editable, patched
from onboardd.domain.sliding_window import SlidingWindow
from onboardd.importing.errors import FileRejected
from onboardd.services.errors import KINDS, ServiceError
from onboardd.services.imports import ImportProblem, rejected
from onboardd.web.errors import STATUS_OF_KIND, api_error, unavailable

STORED = Offer(id="o1", name="Welcome", salon_id="s1", discount_type="percentage",
               discount_value=15, max_discount_in_paisa=20000, minimum_purchase_in_paisa=None,
               validity_days=30, usage_limit=1, is_active=True, total_redemptions=3)


def test_every_kind_has_one_status() -> None:
    assert set(STATUS_OF_KIND) == set(KINDS)
    assert STATUS_OF_KIND == {"invalid": 422, "not_found": 404, "conflict": 409,
                              "rate_limited": 429, "unsupported": 415, "too_large": 413}


def test_a_wait_becomes_retry_after_and_nothing_else_does() -> None:
    waited = api_error(ServiceError("rate_limited", "slow down", details={"x": 1},
                                    retry_after_s=7))
    assert (waited.status, waited.code, waited.headers, waited.details) == (
        429, "rate_limited", {"Retry-After": "7"}, {"x": 1})
    plain = api_error(ServiceError("not_found", "gone", code="offer_not_found"))
    assert (plain.status, plain.code, plain.headers) == (404, "offer_not_found", {})


def test_import_problems_carry_a_kind_not_a_status() -> None:
    problem = ImportProblem("rate_limited", "rate_limited", "later", retry_after_s=30)
    assert (problem.kind, problem.retry_after_s, problem.code) == ("rate_limited", 30,
                                                                   "rate_limited")
    assert not hasattr(problem, "status") and not hasattr(problem, "headers")
    assert rejected(FileRejected("unsupported_type", "no")).kind == "unsupported"
    assert rejected(FileRejected("too_large_uncompressed", "no")).kind == "too_large"
    assert rejected(FileRejected("bad_cells", "no")).kind == "invalid"


def test_a_patch_changes_only_the_given_fields() -> None:
    patch = msgspec.json.decode(b'{"discountValue": 20, "maxDiscountInPaisa": null}',
                                type=OfferPatch)
    merged = patched(STORED, patch)
    assert merged == OfferInput(name="Welcome", discount_type="percentage", discount_value=20,
                                max_discount_in_paisa=None, minimum_purchase_in_paisa=None,
                                validity_days=30, usage_limit=1, is_active=True)
    assert editable(STORED) == msgspec.structs.replace(merged, discount_value=15,
                                                       max_discount_in_paisa=20000)


def test_request_shapes_are_camel_case_on_the_wire() -> None:
    data = msgspec.json.decode(b'{"name": "x", "discountType": "fixed", "discountValue": 5, '
                               b'"isActive": false}', type=OfferInput)
    assert (data.discount_type, data.discount_value, data.is_active) == ("fixed", 5, False)
    assert msgspec.to_builtins(STORED)["isActive"] is True


@pytest.mark.parametrize("limit", [1, 3])
def test_the_check_budget_is_a_sliding_minute(limit: int) -> None:
    window = SlidingWindow()
    for i in range(limit):
        assert window.retry_after("u", limit, now=100.0 + i) is None
    assert window.retry_after("u", limit, now=101.0 + limit) == pytest.approx(59.0 - limit)
    assert window.retry_after("other", limit, now=101.0 + limit) is None
    # Still refused just before the first hit is a minute old, allowed from then on.
    assert window.retry_after("u", limit, now=159.9) is not None
    assert window.retry_after("u", limit, now=160.0) is None


@pytest.mark.parametrize(("exc", "reason", "retry_after"), [
    (asyncpg.DeadlockDetectedError("deadlock detected"), "conflict", "1"),
    (asyncpg.SerializationError("could not serialize access"), "conflict", "1"),
    (ConnectionRefusedError(111, "Connection refused"), "database_unreachable", "5"),
    (asyncpg.CannotConnectNowError("the database system is starting up"),
     "database_unreachable", "5"),
    (ExceptionGroup("parts", [ConnectionResetError(), TimeoutError()]),
     "database_unreachable", "5"),
])
def test_what_the_database_could_not_serve_now_is_503_with_retry_after(
        exc: Exception, reason: str, retry_after: str) -> None:
    err = unavailable(exc)
    assert err is not None
    assert (err.status, err.code, err.details, err.headers) == (
        503, "unavailable", {"reason": reason}, {"Retry-After": retry_after})
    assert f"in {retry_after}s" in err.message


@pytest.mark.parametrize("exc", [
    ValueError("a bug"), asyncpg.UniqueViolationError("duplicate key"),
    ExceptionGroup("parts", [ConnectionResetError(), KeyError("x")]),
])
def test_any_other_failure_is_not_called_unavailable(exc: Exception) -> None:
    assert unavailable(exc) is None
