"""The webhook benchmark's pure figures: its rounds and its ratios to the floor."""

from __future__ import annotations

import pytest

from tests.bench.bench_webhooks import Run, ratio_figures, split_rounds


def _run(events: int, seconds: float) -> Run:
    return Run(events, seconds, [1.0] * events, 0, {"server": 0.0})


def test_rounds_keep_every_event_in_order() -> None:
    events = [(f"SM{i}", "sent") for i in range(10)]
    parts = split_rounds(events, 4)
    assert [len(p) for p in parts] == [3, 3, 3, 1]
    assert [e for p in parts for e in p] == events
    assert split_rounds(events[:2], 4) == [[events[0]], [events[1]]]


def test_ratios_pool_the_rounds_and_set_each_between_its_floors() -> None:
    floors = [_run(100, 1.0), _run(100, 0.5), _run(100, 1.0)]  # 100, 200, 100 events/s
    durables = [_run(100, 2.0), _run(100, 1.0)]  # 50, 100 events/s
    figures = ratio_figures(floors, durables)
    # Pooled: 200 events in 3 s against 300 in 2.5 s.
    assert figures["ratio"] == pytest.approx((200 / 3) / (300 / 2.5), abs=1e-3)
    assert figures["round_ratios"] == [round(50 / 150, 3), round(100 / 150, 3)]
    assert figures["ratio_vs_best_floor"] == pytest.approx((200 / 3) / 200, abs=1e-3)
    assert figures["floor_runs_events_per_s"] == [100.0, 200.0, 100.0]
    assert figures["durable_runs_events_per_s"] == [50.0, 100.0]
