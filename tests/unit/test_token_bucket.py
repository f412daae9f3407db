"""The API rate limits' token buckets (onboardd.domain.token_bucket)."""

from __future__ import annotations

import pytest

from onboardd.domain.token_bucket import BucketTable, retry_after_header


def test_a_burst_then_the_rate() -> None:
    table = BucketTable(rate=2.0, burst=3)
    assert [table.take("a", now=10.0) for _ in range(3)] == [None, None, None]
    assert table.take("a", now=10.0) == pytest.approx(0.5)  # one token every half second
    assert table.take("a", now=10.25) == pytest.approx(0.25)  # refused: it is not spent
    assert table.take("a", now=10.5) is None
    assert table.take("a", now=10.5) == pytest.approx(0.5)


def test_keys_have_their_own_buckets() -> None:
    table = BucketTable(rate=1.0, burst=1)
    assert table.take("a", now=0.0) is None
    assert table.take("a", now=0.0) is not None
    assert table.take("b", now=0.0) is None


def test_a_bucket_refills_only_up_to_the_burst() -> None:
    table = BucketTable(rate=100.0, burst=2)
    assert table.take("a", now=0.0) is None
    # An hour idle gives back two tokens, not 360,000.
    assert [table.take("a", now=3600.0) is None for _ in range(3)] == [True, True, False]


def test_the_table_is_a_bounded_lru() -> None:
    table = BucketTable(rate=1.0, burst=1, max_keys=2)
    assert table.take("a", now=0.0) is None
    assert table.take("b", now=0.0) is None
    assert table.take("a", now=0.0) is not None  # "a" is now the most recently used
    assert table.take("c", now=0.0) is None  # drops "b", the least recently used
    assert len(table) == 2
    assert table.take("a", now=0.0) is not None  # still remembered: still refused
    assert table.take("b", now=0.0) is None  # forgotten: starts full


def test_a_clock_going_back_adds_nothing() -> None:
    table = BucketTable(rate=1.0, burst=1)
    assert table.take("a", now=5.0) is None
    assert table.take("a", now=4.0) is not None


@pytest.mark.parametrize(("wait", "header"), [(0.0001, 1), (0.5, 1), (1.0, 1), (1.2, 2),
                                              (59.5, 60)])
def test_retry_after_is_whole_seconds_at_least_one(wait: float, header: int) -> None:
    assert retry_after_header(wait) == header


@pytest.mark.parametrize(("rate", "burst", "keys"), [(0.0, 1, 1), (1.0, 0, 1), (1.0, 1, 0)])
def test_nonsense_budgets_are_refused(rate: float, burst: int, keys: int) -> None:
    with pytest.raises(ValueError, match="a token bucket needs"):
        BucketTable(rate, burst, keys)
