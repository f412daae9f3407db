"""Twilio's Messages list: To/From/DateSent filters and PageToken paging, newest first.

DateSent filters compare against ``date_sent``, or ``date_created`` while a message is still
queued (an assumption: the simulator would rather over-report than hide a message a caller is
reconciling). ``DateSent>`` and ``DateSent<`` are inclusive, as Twilio documents them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from onboardd.simulator.resource import render
from onboardd.simulator.store import MessageRecord, MessageStore

_FILTERS = ("To", "From", "DateSent", "DateSent>", "DateSent<")


class _Range:
    """A DateSent value: a whole day (date form) or one second (datetime form)."""

    __slots__ = ("end", "start")

    def __init__(self, text: str) -> None:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            self.start = int(start.timestamp())
            self.end = int((start + timedelta(days=1)).timestamp())
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            self.start = int(moment.timestamp())
            self.end = self.start + 1


def _ranges(query: Mapping[str, str]) -> dict[str, _Range] | None:
    """Parse the DateSent filters; None when one is malformed."""
    out: dict[str, _Range] = {}
    for key in ("DateSent", "DateSent>", "DateSent<"):
        text = query.get(key)
        if text:
            try:
                out[key] = _Range(text)
            except ValueError:
                return None
    return out


def _matches(
    record: MessageRecord, from_: str | None, ranges: dict[str, _Range], now: float
) -> bool:
    if from_ is not None and record.from_ != from_:
        return False
    if not ranges:
        return True
    state = record.state_at(now)
    second = int(state.date_sent if state.date_sent is not None else record.created_at)
    on, after, before = ranges.get("DateSent"), ranges.get("DateSent>"), ranges.get("DateSent<")
    if on is not None and not on.start <= second < on.end:
        return False
    if after is not None and second < after.start:
        return False
    return before is None or second < before.end


def list_page(
    store: MessageStore, path: str, query: Mapping[str, str], now: float
) -> dict[str, Any] | None:
    """One page of Twilio's list JSON; None when a parameter is invalid."""
    ranges = _ranges(query)
    try:
        page_size = max(1, min(1000, int(query.get("PageSize", "50"))))
        page = max(0, int(query.get("Page", "0")))
    except ValueError:
        return None
    if ranges is None:
        return None
    after_sid = query.get("PageToken", "").removeprefix("PA") or None
    from_ = query.get("From") or None
    rows: list[MessageRecord] = []
    for record in store.newest_first(query.get("To") or None):
        if after_sid is not None:
            if record.sid == after_sid:
                after_sid = None
            continue
        if _matches(record, from_, ranges, now):
            rows.append(record)
            if len(rows) > page_size:
                break
    more = len(rows) > page_size
    rows = rows[:page_size]
    filters = [(key, query[key]) for key in _FILTERS if query.get(key)]

    def uri(number: int, token: str | None) -> str:
        params = [*filters, ("PageSize", str(page_size)), ("Page", str(number))]
        if token is not None:
            params.append(("PageToken", token))
        return f"{path}?{urlencode(params)}"

    start = page * page_size
    return {
        "end": start + max(len(rows) - 1, 0),
        "first_page_uri": uri(0, None),
        "messages": [render(record, now) for record in rows],
        "next_page_uri": uri(page + 1, "PA" + rows[-1].sid) if more else None,
        "page": page,
        "page_size": page_size,
        "previous_page_uri": None,
        "start": start,
        "uri": uri(page, query.get("PageToken") or None),
    }
