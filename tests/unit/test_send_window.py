"""The hard one-second cap behind each sender's limiter (onboardd.domain.campaigns.outcomes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onboardd.domain.campaigns.outcomes import SendWindow


def test_the_limit_plus_one_waits_for_the_oldest_write_to_leave_the_window() -> None:
    window = SendWindow(3)
    for at in (0.0, 0.1, 0.2):
        assert window.reserve_wait_s(at) == 0.0
        window.reserve()
        assert window.write_wait_s(at) == 0.0
        window.record(at)
    assert window.reserve_wait_s(0.5) == 0.5  # until 1.0, when the write at 0.0 is a second old
    assert window.reserve_wait_s(1.0) == 0.0


def test_reserved_places_count_until_written_or_released() -> None:
    window = SendWindow(2)
    window.reserve()
    window.reserve()
    assert window.reserve_wait_s(0.0) is None  # only a reserved request can free a place
    window.release()
    assert window.reserve_wait_s(0.0) == 0.0
    window.reserve()
    window.record(0.0)
    # One written at 0.0, one still reserved:
    assert window.reserve_wait_s(0.1) == pytest.approx(0.9)
    assert window.write_wait_s(0.1) == 0.0  # the reserved one may go out: one write so far


def test_a_write_later_than_its_reservation_still_keeps_the_cap() -> None:
    """Reserved at 0.0 but written at 0.3 (a stalled loop): the write that would make it the
    limit plus one inside 0.3..1.3 waits, although the reservations were a second apart."""
    window = SendWindow(1)
    window.reserve()
    window.record(0.3)
    assert window.reserve_wait_s(1.0) == pytest.approx(0.3)
    window.reserve()  # say the caller reserved early anyway
    assert window.write_wait_s(1.0) == pytest.approx(0.3)
    assert window.write_wait_s(1.3) == 0.0


@given(st.lists(st.tuples(st.floats(min_value=0.0, max_value=0.2),
                          st.floats(min_value=0.0, max_value=0.3)), min_size=1, max_size=300),
       st.integers(min_value=1, max_value=50))
def test_no_one_second_window_ever_holds_more_than_the_limit(steps: list[tuple[float, float]],
                                                             limit: int) -> None:
    """Whatever the arrival of wishes to start (bursts after a stall included) and however late
    each write follows its reservation, the writes never put more than ``limit`` into any
    half-open second."""
    window = SendWindow(limit)
    now, writes = 0.0, []
    for gap, delay in steps:
        now += gap
        wait = window.reserve_wait_s(now)
        assert wait is not None  # one request at a time here: nothing else is reserved
        now += wait  # the dispatcher sleeps exactly this long
        window.reserve()
        now += delay  # the loop turns between the reservation and the socket write
        now += window.write_wait_s(now)
        window.record(now)
        writes.append(now)
    for i, at in enumerate(writes):
        in_window = [s for s in writes[i:] if s - at < 1.0 - 2e-6]
        assert len(in_window) <= limit


def test_a_fractional_rate_rounds_down_and_never_below_one() -> None:
    assert SendWindow(2.9).limit == 2
    assert SendWindow(0.5).limit == 1
