"""Spreadsheet rules with no I/O: safe sheet names, cell text within Excel's limits, local
wall-clock times for date cells, rupees from paisa, the export's file name."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

SHEET_NAME_MAX: Final = 31
CELL_TEXT_MAX: Final = 32_767
FALLBACK_SHEET_NAME: Final = "Sheet"
# Characters Excel refuses in a sheet name, and the ASCII control characters.
_FORBIDDEN = re.compile(r"[\[\]:*?/\\\x00-\x1f\x7f]")
# Excel keeps "History" for its change-tracking sheet (any case).
_RESERVED: Final = frozenset({"history"})


def _cut(text: str, limit: int) -> str:
    """The longest start of text within limit UTF-16 code units (how Excel counts)."""
    used = 0
    for i, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            return text[:i]
    return text


def sheet_name(raw: str, fallback: str = FALLBACK_SHEET_NAME) -> str:
    """A name Excel accepts for a sheet: each of []:*?/\\ (and control characters) becomes
    '_', no leading or trailing apostrophe or space, at most 31 characters (UTF-16 units, as
    Excel counts), never empty nor the reserved 'History'."""
    cleaned = _FORBIDDEN.sub("_", raw).strip(" '")
    cleaned = _cut(cleaned, SHEET_NAME_MAX).rstrip(" '")
    if not cleaned:
        return fallback
    if cleaned.casefold() in _RESERVED:
        return cleaned + "_"  # "History" is 7 characters: the suffix fits
    return cleaned


def unique_sheet_names(raws: Iterable[str]) -> list[str]:
    """Safe names for several sheets, made distinct (Excel compares them ignoring case) by a
    ' (2)', ' (3)'... suffix that still fits in 31 characters."""
    taken: set[str] = set()
    out: list[str] = []
    for raw in raws:
        base = sheet_name(raw)
        name, n = base, 1
        while name.casefold() in taken:
            n += 1
            suffix = f" ({n})"
            name = _cut(base, SHEET_NAME_MAX - len(suffix)).rstrip(" '") + suffix
        taken.add(name.casefold())
        out.append(name)
    return out


def cell_text(value: str) -> str:
    """Text cut to the 32,767 characters an Excel cell holds."""
    return value[:CELL_TEXT_MAX]


def local_time(at: datetime | None, timezone: str) -> datetime | None:
    """A moment as the wall-clock time in the timezone, without tzinfo (Excel date cells have
    no zone); None stays None. A naive value is taken as already local."""
    if at is None or at.tzinfo is None:
        return at
    return at.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


def rupees(paisa: int) -> float:
    """An amount in paisa as rupees (a number for a ₹ cell format)."""
    return paisa / 100


def export_filename(first_day: date, last_day: date) -> str:
    """onboardd-analytics-<from>-<to>.xlsx, dates as YYYY-MM-DD."""
    return f"onboardd-analytics-{first_day.isoformat()}-{last_day.isoformat()}.xlsx"
