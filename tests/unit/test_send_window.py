"""The hard one-second cap behind each sender's limiter (onboardd.domain.campaigns.outcomes)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from onboardd.domain.campaigns.outcomes import SendWindow


def test_the_limit_plus_one_waits_for_the_oldest_to_leave_the_window() -> None:
    window = SendWindow(3)
    for at in (0.0, 0.1, 0.2):
        assert window.wait_s(at) == 0.0
        window.record(at)
    assert window.wait_s(0.5) == 0.5  # until 1.0, when the start at 0.0 is a second old
    assert window.wait_s(1.0) == 0.0


@given(st.lists(st.floats(min_value=0.0, max_value=0.2), min_size=1, max_size=300),
       st.integers(min_value=1, max_value=50))
def test_no_one_second_window_ever_holds_more_than_the_limit(gaps: list[float], limit: int
                                                             ) -> None:
    """Whatever the arrival of wishes to start (bursts after a stall included), the starts the
    window lets through never put more than ``limit`` into any half-open second."""
    window = SendWindow(limit)
    now, starts = 0.0, []
    for gap in gaps:
        now += gap
        now += window.wait_s(now)  # the dispatcher sleeps exactly this long
        window.record(now)
        starts.append(now)
    for i, at in enumerate(starts):
        in_window = [s for s in starts[i:] if s - at < 1.0 - 2e-6]
        assert len(in_window) <= limit


def test_a_fractional_rate_rounds_down_and_never_below_one() -> None:
    assert SendWindow(2.9).limit == 2
    assert SendWindow(0.5).limit == 1
