"""Validation of imported customer rows (spec §3.4) and duplicates within one file."""

from __future__ import annotations

import re
from typing import Final

import msgspec

from onboardd.domain.phones import INVALID_PHONE, NOT_MOBILE, PhoneError, normalize_phone
from onboardd.importing.files import Table
from onboardd.importing.mapping import ColumnMapping

__all__ = [
    "DUPLICATE_PHONE",
    "INVALID_EMAIL",
    "INVALID_PHONE",
    "NAME_REQUIRED",
    "NOT_MOBILE",
    "ROW_TOO_LONG",
    "RowResult",
    "mark_in_file_duplicates",
    "validate_row",
    "validate_table",
]

NAME_REQUIRED: Final = "Name is required"
INVALID_EMAIL: Final = "Invalid email format"
DUPLICATE_PHONE: Final = "Duplicate phone number"
ROW_TOO_LONG: Final = "Row exceeds maximum length"

MAX_NAME_CHARS: Final = 255
# Spec zod schema: the raw phone cell is a string of 10..20 characters.
MIN_PHONE_CHARS: Final = 10
MAX_PHONE_CHARS: Final = 20
MAX_EMAIL_CHARS: Final = 254
# Generous bounds for a customer row; anything longer is a broken file, not a customer.
MAX_CELL_CHARS: Final = 1000
MAX_ROW_CHARS: Final = 4096

# Pragmatic: one @, a local part, a dotted domain, no spaces. Deliverability is
# the mail server's business, not the importer's.
_EMAIL = re.compile(r"[^@\s]+@(?:[^@\s.]+\.)+[^@\s.]+")


class RowResult(msgspec.Struct, frozen=True):
    """The outcome of validating one data row of an uploaded file."""

    row_number: int
    original: dict[str, str]
    name: str | None
    phone: str | None
    email: str | None
    errors: list[str]

    @property
    def valid(self) -> bool:
        """True when the row has no errors and can be imported."""
        return not self.errors


def validate_row(
    cells: list[str],
    row_number: int,
    headers: list[str],
    mapping: ColumnMapping,
    region: str,
) -> RowResult:
    """Validate one row; a row can carry several errors."""
    errors: list[str] = []
    name = _name(cells, mapping, errors)
    phone = _phone(_cell(cells, mapping.phone), region, errors)
    email = _email(_cell(cells, mapping.email), errors)
    if _too_long(cells) and ROW_TOO_LONG not in errors:
        errors.append(ROW_TOO_LONG)
    return RowResult(row_number, _original(cells, headers), name, phone, email, errors)


def _cell(cells: list[str], index: int | None) -> str:
    """The trimmed cell at index, or '' when unmapped or missing."""
    if index is None or index >= len(cells):
        return ""
    return cells[index].strip()


def _name(cells: list[str], mapping: ColumnMapping, errors: list[str]) -> str | None:
    """Full name, or first and last joined with a space."""
    if mapping.name is not None:
        name = _cell(cells, mapping.name)
    else:
        parts = (_cell(cells, mapping.first_name), _cell(cells, mapping.last_name))
        name = " ".join(part for part in parts if part)
    if not name:
        errors.append(NAME_REQUIRED)
        return None
    if len(name) > MAX_NAME_CHARS:
        errors.append(ROW_TOO_LONG)
        return None
    return name


def _phone(raw: str, region: str, errors: list[str]) -> str | None:
    """E.164 phone after the spec's raw length check."""
    if not MIN_PHONE_CHARS <= len(raw) <= MAX_PHONE_CHARS:
        errors.append(INVALID_PHONE)
        return None
    try:
        return normalize_phone(raw, region)
    except PhoneError as exc:
        errors.append(exc.message)
        return None


def _email(raw: str, errors: list[str]) -> str | None:
    """Trimmed email, None when empty."""
    if not raw:
        return None
    if len(raw) > MAX_EMAIL_CHARS or _EMAIL.fullmatch(raw) is None:
        errors.append(INVALID_EMAIL)
        return None
    return raw


def _too_long(cells: list[str]) -> bool:
    """True when a cell or the whole row is longer than a customer row can be."""
    total = 0
    for cell in cells:
        if len(cell) > MAX_CELL_CHARS:
            return True
        total += len(cell)
    return total > MAX_ROW_CHARS


def _original(cells: list[str], headers: list[str]) -> dict[str, str]:
    """Header -> cell; cells past the last header are keyed 'Column N'."""
    original = dict(zip(headers, cells, strict=False))
    for index in range(len(headers), len(cells)):
        original[f"Column {index + 1}"] = cells[index]
    return original


def mark_in_file_duplicates(results: list[RowResult]) -> list[RowResult]:
    """Mark valid rows whose phone already appeared in an earlier valid row."""
    seen: set[str] = set()
    marked: list[RowResult] = []
    for result in results:
        if result.errors or result.phone is None:
            marked.append(result)
        elif result.phone in seen:
            marked.append(msgspec.structs.replace(result, errors=[DUPLICATE_PHONE]))
        else:
            seen.add(result.phone)
            marked.append(result)
    return marked


def validate_table(table: Table, mapping: ColumnMapping, region: str) -> list[RowResult]:
    """Validate every data row of a table, then mark duplicates within the file."""
    headers = table.headers
    results = [
        validate_row(cells, number, headers, mapping, region)
        for cells, number in zip(table.rows, table.row_numbers, strict=True)
    ]
    return mark_in_file_duplicates(results)
