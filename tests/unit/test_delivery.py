"""Tests for Twilio delivery status merging, error classification and the folding of a flush's
events (one row update per SID or message)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onboardd.domain.delivery import (
    ERROR_EXPLANATIONS,
    STATUS_RANK,
    ErrorKind,
    FoldedCallback,
    backoff_s,
    classify,
    error_message,
    fold_callbacks,
    fold_outcomes,
    merge_status,
    outcome_error,
    storable_status,
)
from onboardd.domain.status_events import SendOutcome, StatusCallback

PROGRESS = ["pending", "accepted", "scheduled", "queued", "sending", "sent", "delivered", "read"]
FAILURES = ["failed", "undelivered", "canceled"]
ALL = PROGRESS + FAILURES


def test_status_rank() -> None:
    assert STATUS_RANK == {
        "pending": 0,
        "accepted": 1,
        "scheduled": 1,
        "queued": 1,
        "sending": 1,
        "sent": 2,
        "delivered": 3,
        "read": 4,
    }


def expected_merge(current: str, incoming: str) -> str:
    """State the merge rule independently of the implementation's table."""
    if incoming == current:
        return current
    if incoming in FAILURES:
        # A failure ends anything short of delivery; the first failure stays.
        return incoming if current in PROGRESS[:6] else current
    if current in FAILURES:
        # Only proof of delivery overrides a failure.
        return incoming if incoming in ("delivered", "read") else current
    return incoming if PROGRESS.index(incoming) > PROGRESS.index(current) else current


@pytest.mark.parametrize(("current", "incoming"), list(itertools.product(ALL, ALL)))
def test_merge_every_pair(current: str, incoming: str) -> None:
    assert merge_status(current, incoming) == expected_merge(current, incoming)


@pytest.mark.parametrize(
    ("current", "incoming", "result"),
    [
        ("queued", "sent", "sent"),
        ("sent", "queued", "sent"),
        ("delivered", "sent", "delivered"),
        ("read", "delivered", "read"),
        ("sent", "failed", "failed"),
        ("failed", "sent", "failed"),
        ("failed", "delivered", "delivered"),
        ("undelivered", "read", "read"),
        ("delivered", "undelivered", "delivered"),
        ("failed", "undelivered", "failed"),
        ("undelivered", "failed", "undelivered"),
        ("sent", "sent", "sent"),
        ("pending", "queued", "queued"),
    ],
)
def test_merge_examples(current: str, incoming: str, result: str) -> None:
    assert merge_status(current, incoming) == result


@pytest.mark.parametrize("status", ALL)
def test_unknown_incoming_changes_nothing(status: str) -> None:
    assert merge_status(status, "receiving") == status
    assert merge_status(status, "") == status


def test_unknown_current_takes_any_known_status() -> None:
    assert merge_status("weird", "queued") == "queued"


# True lifecycles Twilio can report for one outbound message.
LIFECYCLES = [
    ["queued"],
    ["queued", "sending", "sent"],
    ["accepted", "queued", "sending", "sent", "delivered"],
    ["queued", "sent", "delivered", "read"],
    ["queued", "sent", "read"],  # WhatsApp may skip the delivered callback
    ["queued", "failed"],
    ["queued", "sending", "failed"],
    ["queued", "sent", "undelivered"],
    ["scheduled", "canceled"],
    ["scheduled", "queued", "sent", "delivered"],
]


@given(
    lifecycle=st.sampled_from(LIFECYCLES),
    data=st.data(),
)
def test_any_arrival_order_converges_on_the_true_status(
    lifecycle: list[str], data: st.DataObject
) -> None:
    extra = data.draw(st.lists(st.sampled_from(lifecycle), max_size=6), label="duplicates")
    events = data.draw(st.permutations(lifecycle + extra), label="arrival order")
    status = "pending"
    for event in events:
        status = merge_status(status, event)
    assert status == lifecycle[-1]


# --- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        20003,
        20429,
        21211,
        21408,
        21606,
        21610,
        21612,
        21614,
        30003,
        30004,
        30005,
        30006,
        30007,
        30008,
        63003,
        63005,
        63016,
        63018,
        63024,
    ],
)
def test_common_codes_are_explained(code: int) -> None:
    assert ERROR_EXPLANATIONS[code]


@pytest.mark.parametrize(
    ("code", "fallback", "message"),
    [
        (30003, None, "Twilio error: 30003 (Unreachable destination handset)"),
        (30003, "ignored", "Twilio error: 30003 (Unreachable destination handset)"),
        (21610, None, "Twilio error: 21610 (The recipient has unsubscribed (replied STOP))"),
        (99999, "Something odd", "Twilio error: 99999 (Something odd)"),
        (99999, None, "Twilio error: 99999"),
        (None, "Connection reset", "Connection reset"),
        (None, None, None),
        (0, None, None),
    ],
)
def test_error_message(code: int | None, fallback: str | None, message: str | None) -> None:
    assert error_message(code, fallback) == message


@pytest.mark.parametrize(
    ("code", "fallback", "message"),
    [
        (21999, "The 'To' number +15005550001 is not a valid phone number.",
         "Twilio error: 21999 (The 'To' number *******0001 is not a valid phone number.)"),
        (99999, "Cannot route to whatsapp:+91 98765 43210 today",
         "Twilio error: 99999 (Cannot route to whatsapp:********3210 today)"),
        (None, "Send to 9876543210 failed", "Send to ******3210 failed"),
        # Short numbers and dates in Twilio's texts stay readable.
        (99999, "Retry after 2026-01-05, limit 100", "Twilio error: 99999 (Retry after "
         "2026-01-05, limit 100)"),
    ],
)
def test_error_message_masks_phones_in_twilio_text(code: int | None, fallback: str,
                                                    message: str) -> None:
    """Twilio's raw texts can embed the recipient; the campaign APIs serve them."""
    assert error_message(code, fallback) == message


@pytest.mark.parametrize(
    ("http_status", "code", "kind"),
    [
        (None, None, ErrorKind.TRANSIENT),  # timeout / connection error
        (500, None, ErrorKind.TRANSIENT),
        (502, None, ErrorKind.TRANSIENT),
        (503, 20500, ErrorKind.TRANSIENT),
        (None, 30003, ErrorKind.TRANSIENT),
        (400, 30003, ErrorKind.TRANSIENT),
        (None, 30001, ErrorKind.TRANSIENT),
        (429, None, ErrorKind.RATE_LIMITED),
        (429, 20429, ErrorKind.RATE_LIMITED),
        (400, 20429, ErrorKind.RATE_LIMITED),
        (None, 63018, ErrorKind.RATE_LIMITED),
        (400, 21610, ErrorKind.OPTED_OUT),
        (None, 21610, ErrorKind.OPTED_OUT),
        (400, 63003, ErrorKind.WHATSAPP_UNREACHABLE),
        (None, 63003, ErrorKind.WHATSAPP_UNREACHABLE),
        (None, 63024, ErrorKind.WHATSAPP_UNREACHABLE),
        (400, 63005, ErrorKind.WHATSAPP_UNREACHABLE),
        (400, 21211, ErrorKind.INVALID_NUMBER),
        (400, 21614, ErrorKind.INVALID_NUMBER),
        (400, 21612, ErrorKind.INVALID_NUMBER),
        (400, 21408, ErrorKind.INVALID_NUMBER),
        (401, 20003, ErrorKind.PERMANENT),
        (400, 21606, ErrorKind.PERMANENT),
        (400, 63016, ErrorKind.PERMANENT),
        (None, 30004, ErrorKind.PERMANENT),
        (None, 30005, ErrorKind.PERMANENT),
        (None, 30006, ErrorKind.PERMANENT),
        (None, 30007, ErrorKind.PERMANENT),
        (None, 30008, ErrorKind.PERMANENT),
        (400, None, ErrorKind.PERMANENT),
        (404, 20404, ErrorKind.PERMANENT),
        (403, None, ErrorKind.PERMANENT),
    ],
)
def test_classify(http_status: int | None, code: int | None, kind: ErrorKind) -> None:
    assert classify(http_status, code) is kind


def test_backoff_ceilings_double_up_to_the_cap() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    ceilings = [backoff_s(n, rng=Top()) for n in range(1, 9)]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff_s(3, base=0.5, cap=100.0, rng=Top()) == 2.0
    assert backoff_s(10_000, rng=Top()) == 30.0


def test_backoff_is_full_jitter() -> None:
    rng = random.Random(7)
    delays = [backoff_s(4, rng=rng) for _ in range(2_000)]
    assert all(0.0 <= d <= 8.0 for d in delays)
    assert min(delays) < 0.5
    assert max(delays) > 7.5


def test_backoff_is_reproducible_with_a_seed() -> None:
    assert backoff_s(3, rng=random.Random(1)) == backoff_s(3, rng=random.Random(1))


def test_backoff_without_rng() -> None:
    assert 0.0 <= backoff_s(2) <= 2.0


def test_backoff_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_s(0)


# Folding a flush's events ----------------------------------------------------------------------

T0 = datetime(2025, 1, 1, tzinfo=UTC)
SID = "SM" + "0" * 32
OTHER = "SM" + "1" * 32


def cb(status: str, seconds: int, sid: str = SID, code: int | None = None,
       message: str | None = None) -> StatusCallback:
    return StatusCallback(sid=sid, status=status, at=T0 + timedelta(seconds=seconds),
                          error_code=code, error_message=message)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(("twilio", "stored"), [
    ("accepted", "queued"), ("scheduled", "queued"), ("queued", "queued"),
    ("sending", "queued"), (" Sent ", "sent"), ("DELIVERED", "delivered"), ("read", "read"),
    ("failed", "failed"), ("undelivered", "undelivered"), ("canceled", "failed"),
    ("receiving", None), ("received", None), ("partially_delivered", None), ("bogus", None),
])
def test_storable_status(twilio: str, stored: str | None) -> None:
    assert storable_status(twilio) == stored


def test_fold_in_order_keeps_the_last_status_and_each_earliest_time() -> None:
    folded = fold_callbacks([cb("queued", 0), cb("sent", 1), cb("delivered", 2), cb("read", 3)])
    assert folded == {SID: FoldedCallback(SID, "read", sent_at=at(1), delivered_at=at(2),
                                          read_at=at(3))}


def test_fold_out_of_order_never_moves_back() -> None:
    folded = fold_callbacks([cb("read", 3), cb("sent", 1), cb("delivered", 2), cb("queued", 0)])
    assert folded[SID].status == "read"
    # Each time is the earliest event proving it, whatever order the events came in.
    assert (folded[SID].sent_at, folded[SID].delivered_at, folded[SID].read_at) == (
        at(1), at(2), at(3))


def test_fold_read_alone_proves_sent_and_delivered() -> None:
    assert fold_callbacks([cb("read", 5)])[SID] == FoldedCallback(
        SID, "read", sent_at=at(5), delivered_at=at(5), read_at=at(5))


def test_fold_duplicates_keep_the_first_time() -> None:
    folded = fold_callbacks([cb("delivered", 4), cb("delivered", 2), cb("delivered", 9)])
    assert folded[SID] == FoldedCallback(SID, "delivered", sent_at=at(2), delivered_at=at(2))


def test_fold_failure_is_kept_against_a_late_sent_but_not_a_late_delivered() -> None:
    failed = fold_callbacks([cb("failed", 1, code=30003), cb("sent", 2)])[SID]
    assert (failed.status, failed.sent_at, failed.delivered_at) == ("failed", at(2), None)
    assert failed.error_code == 30003
    assert failed.error_message == "Twilio error: 30003 (Unreachable destination handset)"
    arrived = fold_callbacks([cb("undelivered", 1, code=30003), cb("delivered", 2)])[SID]
    assert (arrived.status, arrived.sent_at, arrived.delivered_at) == ("delivered", at(1), at(2))


def test_fold_keeps_the_first_error_code_and_ignores_zero() -> None:
    folded = fold_callbacks([cb("sent", 0, code=0, message="none"),
                             cb("failed", 1, code=30007, message="filtered"),
                             cb("failed", 2, code=30008, message="unknown")])[SID]
    assert folded.error_code == 30007
    assert folded.error_message == "Twilio error: 30007 (Message filtered by the carrier)"


def test_fold_unknown_error_code_keeps_twilio_text_masked() -> None:
    folded = fold_callbacks([cb("failed", 1, code=12345, message="no route to +919876543210")])
    assert folded[SID].error_message == "Twilio error: 12345 (no route to ********3210)"


def test_fold_drops_untracked_statuses_and_keeps_sids_apart() -> None:
    folded = fold_callbacks([cb("receiving", 0), cb("sent", 1, sid=OTHER), cb("received", 2)])
    assert list(folded) == [OTHER]
    assert fold_callbacks([cb("receiving", 0)]) == {}
    # A canceled send is stored as failed, and Twilio's "sending" as queued.
    assert fold_callbacks([cb("canceled", 0)])[SID].status == "failed"
    assert fold_callbacks([cb("sending", 0)])[SID] == FoldedCallback(SID, "queued")


@pytest.mark.parametrize(("code", "unreachable"), [
    (63003, True), (63005, True), (63024, True), (30003, False), (None, False)])
def test_folded_whatsapp_unreachable(code: int | None, unreachable: bool) -> None:
    assert fold_callbacks([cb("failed", 0, code=code)])[SID].whatsapp_unreachable is unreachable


@given(st.permutations([("queued", 0), ("sent", 1), ("delivered", 2), ("read", 3)]))
def test_fold_any_order_gives_the_same_row(events: list[tuple[str, int]]) -> None:
    assert fold_callbacks([cb(s, t) for s, t in events])[SID] == FoldedCallback(
        SID, "read", sent_at=at(1), delivered_at=at(2), read_at=at(3))


def outcome(message_id: str, kind: Literal["accepted", "retry", "failed", "skipped", "fallback"],
            code: int | None = None, *, sid: str | None = None, opted_out: bool = False,
            error_message: str | None = None) -> SendOutcome:
    return SendOutcome(message_id=message_id, outcome=kind, at=T0, channel="whatsapp",
                       error_code=code, sid=sid, opted_out=opted_out, error_message=error_message)


def test_fold_outcomes_keeps_the_last_per_message_and_counts_requests() -> None:
    rows, attempts = fold_outcomes([
        outcome("m1", "retry", 30001), outcome("m2", "skipped"), outcome("m1", "accepted",
                                                                          sid=SID),
        outcome("m3", "skipped", 21610, opted_out=True), outcome("m4", "fallback", 63003),
    ])
    assert [(r.message_id, r.outcome) for r in rows] == [
        ("m1", "accepted"), ("m2", "skipped"), ("m3", "skipped"), ("m4", "fallback")]
    # A skip decided before any request (no error code) is no attempt; Twilio's refusal is one.
    assert attempts == {"m1": 2, "m2": 0, "m3": 1, "m4": 1}
    assert fold_outcomes([]) == ([], {})


def test_outcome_error_is_none_for_an_accepted_send() -> None:
    assert outcome_error(outcome("m1", "accepted", 30001)) is None
    assert outcome_error(outcome("m1", "failed", 21211)) == (
        "Twilio error: 21211 (Invalid 'To' phone number)")
    assert outcome_error(outcome("m1", "skipped", None, error_message="opted out")) == "opted out"
