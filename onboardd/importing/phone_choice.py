"""Choosing a row's number from several phone columns and multi-number cells.

Each cell is split on the separators real exports use (Google's " ::: ", ";", new lines, and
"/" or "," between whole numbers). Candidates are tried mobile-labelled first, then numbers of
unknown kind, then home, then work; the first that can receive SMS or WhatsApp wins. A landline
is reported only when nothing better was found.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from onboardd.domain.columns import ColumnMapping
from onboardd.domain.masking import mask_digits
from onboardd.domain.phones import INVALID_PHONE, NOT_MOBILE, PhoneError, normalize_phone
from onboardd.importing.headers import label_rank

# Spec zod schema: the raw phone cell is a string of 10..20 characters (here: each number).
MIN_PHONE_CHARS: Final = 10
MAX_PHONE_CHARS: Final = 20
# "/" and "," separate numbers only when every piece has this many digits ("022/2345678" is
# one number with its area code).
_MIN_PIECE_DIGITS: Final = 7
_HARD_SEPARATORS = re.compile(r"\s*(?::::|;|\r\n|\n|\r)\s*")
_SOFT_SEPARATORS = re.compile(r"\s*[/,]\s*")
_ANY_SEPARATOR = re.compile(r"[:;\n\r/,]")
_DIGIT = re.compile(r"\d")


class PhoneChoice(msgspec.Struct, frozen=True):
    """The chosen number (E.164), the column and the text it came from; or the error and,
    when several numbers were tried, the attempts (masked) for the error report."""

    e164: str | None
    column: int | None = None
    value: str | None = None
    error: str | None = None


def split_numbers(cell: str) -> list[str]:
    """The numbers one cell holds."""
    if _ANY_SEPARATOR.search(cell) is None:
        return [cell]
    pieces: list[str] = []
    for part in _HARD_SEPARATORS.split(cell):
        if not part:
            continue
        soft = [p for p in _SOFT_SEPARATORS.split(part) if p]
        if len(soft) > 1 and all(len(_DIGIT.findall(p)) >= _MIN_PIECE_DIGITS for p in soft):
            pieces.extend(soft)
        else:
            pieces.append(part)
    return pieces


def _try(raw: str, region: str) -> tuple[str | None, str]:
    """(E.164, '') or (None, the error) for one number, after the raw length check."""
    if not MIN_PHONE_CHARS <= len(raw) <= MAX_PHONE_CHARS:
        return None, INVALID_PHONE
    try:
        return normalize_phone(raw, region), ""
    except PhoneError as exc:
        return None, exc.message


def _candidates(cells: list[str], mapping: ColumnMapping) -> list[tuple[int, str]]:
    """(column, text) of every number in the row, in the order to try them."""
    ranked: list[tuple[int, int, str]] = []
    width = len(cells)
    for source in mapping.phones:
        if source.column >= width:
            continue
        cell = cells[source.column].strip()
        if not cell:
            continue
        numbers = split_numbers(cell)
        rank = source.rank
        if mapping.by_label and source.label is not None and source.label < width:
            labels = split_numbers(cells[source.label])
            if len(labels) == len(numbers) > 1:
                for label, number in zip(labels, numbers, strict=True):
                    found = label_rank(label)
                    ranked.append((rank if found is None else found, source.column, number))
                continue
            found = label_rank(cells[source.label])
            rank = rank if found is None else found
        ranked.extend((rank, source.column, number) for number in numbers)
    if mapping.by_label:
        ranked.sort(key=lambda candidate: candidate[0])
    return [(column, number) for _, column, number in ranked]


def choose_phone(cells: list[str], mapping: ColumnMapping, headers: list[str],
                 region: str) -> PhoneChoice:
    """The row's number, or its error naming every number tried."""
    sources = mapping.phones
    if len(sources) == 1 and sources[0].label is None:
        # The common file: one phone column, one number per cell.
        column = sources[0].column
        cell = cells[column].strip() if column < len(cells) else ""
        if _ANY_SEPARATOR.search(cell) is None:
            e164, error = _try(cell, region)
            if e164 is None:
                return PhoneChoice(None, error=error)
            return PhoneChoice(e164, column=column, value=cell)
    candidates = _candidates(cells, mapping)
    tried: list[str] = []
    landline = False
    for column, number in candidates:
        e164, error = _try(number, region)
        if e164 is not None:
            return PhoneChoice(e164, column=column, value=number)
        landline = landline or error == NOT_MOBILE
        kind = "landline" if error == NOT_MOBILE else "invalid"
        tried.append(f"{headers[column] if column < len(headers) else f'column {column + 1}'} "
                     f"{mask_digits(number)} ({kind})")
    error = NOT_MOBILE if landline else INVALID_PHONE
    if len(tried) > 1:
        error = f"{error}. Tried: {'; '.join(tried)}"
    return PhoneChoice(None, error=error)
