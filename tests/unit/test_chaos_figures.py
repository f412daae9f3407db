"""The chaos benchmark's figures: sliding one-second windows and stalls while a daemon was up."""

from __future__ import annotations

from tests.bench.chaos_figures import (
    max_stall,
    merged,
    per_recipient,
    windows_over,
    worst_window,
)


def test_worst_window_counts_a_half_open_second_and_says_where_it_starts() -> None:
    assert worst_window([0.0, 0.1, 0.5, 0.99, 1.0, 1.5, 2.2]) == (4, 0.0)
    assert worst_window([5.0, 5.2, 5.4, 5.6, 7.0]) == (4, 5.0)
    assert worst_window([]) == (0, 0.0)


def test_bursts_over_the_limit_are_listed_once_each() -> None:
    times = [0.0, 0.1, 0.2, 0.3, 5.0, 5.1, 5.2, 9.0]
    assert windows_over(times, 3) == [(0.0, 4)]
    assert windows_over(times, 2) == [(0.0, 4), (5.0, 3)]
    assert windows_over(times, 4) == []


def test_a_stall_counts_only_the_time_some_daemon_was_up() -> None:
    up = [(0.0, 5.0), (8.0, 30.0)]
    # The gap from 2 to 10 holds 3 s of (0, 5) and 2 s of (8, 30).
    assert max_stall([1.0, 2.0, 10.0, 11.0], 0.0, 20.0, up, all_sent=True) == (5.0, 2.0)


def test_unsent_messages_stretch_the_last_stall_to_the_end() -> None:
    assert max_stall([1.0, 2.0], 0.0, 20.0, [(0.0, 30.0)], all_sent=False) == (18.0, 2.0)
    assert max_stall([1.0, 2.0], 0.0, 20.0, [(0.0, 30.0)], all_sent=True) == (1.0, 0.0)


def test_spans_are_merged_and_recipients_counted_without_the_channel_prefix() -> None:
    assert merged([(1.0, 3.0), (0.0, 2.0), (5.0, 6.0), (4.0, 4.0)]) == [(0.0, 3.0), (5.0, 6.0)]
    assert per_recipient(["whatsapp:+91981", "+91981", "+91982"]) == {"+91981": 2, "+91982": 1}
