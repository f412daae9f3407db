"""The chaos benchmark's figures, computed from timestamps alone (pure, no I/O)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable

Interval = tuple[float, float]


def worst_window(times: Iterable[float], width_s: float = 1.0) -> tuple[int, float]:
    """(the most timestamps in any half-open window [t, t + width_s) sliding over them, the
    window's first timestamp)."""
    ordered = sorted(times)
    best, best_at, start = 0, 0.0, 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - width_s:
            start += 1
        if end - start + 1 > best:
            best, best_at = end - start + 1, ordered[start]
    return best, best_at


def windows_over(times: Iterable[float], limit: float, width_s: float = 1.0
                 ) -> list[tuple[float, int]]:
    """Each burst over the limit as (its first window's start, its most timestamps in one
    window): windows [t, t + width_s) starting at a timestamp and holding more than `limit`,
    those starting within width_s of the previous one counted in the same burst."""
    ordered = sorted(times)
    bursts: list[tuple[float, int]] = []
    end, last = 0, float("-inf")
    for start, at in enumerate(ordered):
        while end < len(ordered) and ordered[end] < at + width_s:
            end += 1
        count = end - start
        if count <= limit:
            continue
        if bursts and at - last < width_s:
            bursts[-1] = (bursts[-1][0], max(bursts[-1][1], count))
        else:
            bursts.append((at, count))
        last = at
    return bursts


def merged(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of intervals as disjoint intervals, in order."""
    out: list[Interval] = []
    for lo, hi in sorted(i for i in intervals if i[1] > i[0]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def covered(lo: float, hi: float, union: list[Interval]) -> float:
    """How much of [lo, hi] the disjoint intervals of `union` cover."""
    return sum(max(0.0, min(hi, b) - max(lo, a)) for a, b in union if a < hi and b > lo)


def max_stall(arrivals: Iterable[float], started: float, ended: float,
              up: Iterable[Interval], all_sent: bool) -> tuple[float, float]:
    """(longest stall in seconds, when it began): the longest gap between consecutive arrivals,
    counting only the time at least one daemon was up. The gaps run from the campaign's start
    to its last arrival, and on to `ended` when some messages were never sent."""
    union = merged(up)
    points = [started, *sorted(arrivals)]
    if not all_sent:
        points.append(ended)
    best, best_at = 0.0, started
    for a, b in itertools.pairwise(points):
        stall = covered(a, b, union)
        if stall > best:
            best, best_at = stall, a
    return best, best_at


def per_recipient(numbers: Iterable[str]) -> Counter[str]:
    """How many messages each recipient got (the whatsapp: prefix dropped)."""
    return Counter(n.removeprefix("whatsapp:") for n in numbers)
