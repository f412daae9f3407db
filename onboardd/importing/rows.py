"""Validation of imported customer rows (spec §3.4) and duplicates within one file."""

from __future__ import annotations

import re
from typing import Final

import msgspec

from onboardd.domain.columns import ColumnMapping
from onboardd.domain.names import clean_name, collapse_spaces
from onboardd.domain.phones import INVALID_PHONE, NOT_MOBILE
from onboardd.importing.consent import (
    CONSENT_REQUIRED,
    UNKNOWN,
    Consent,
    DefaultConsent,
    verdict,
)
from onboardd.importing.files import Table
from onboardd.importing.phone_choice import MAX_PHONE_CHARS, MIN_PHONE_CHARS, choose_phone

__all__ = [
    "DUPLICATE_PHONE",
    "INVALID_EMAIL",
    "INVALID_PHONE",
    "MAX_PHONE_CHARS",
    "MIN_PHONE_CHARS",
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
MAX_EMAIL_CHARS: Final = 254
# Generous bounds for a customer row; anything longer is a broken file, not a customer.
MAX_CELL_CHARS: Final = 1000
MAX_ROW_CHARS: Final = 4096

# Pragmatic: one @, a local part, a dotted domain, no spaces. Deliverability is
# the mail server's business, not the importer's.
_EMAIL = re.compile(r"[^@\s]+@(?:[^@\s.]+\.)+[^@\s.]+")


class RowResult(msgspec.Struct, frozen=True):
    """The outcome of validating one data row of an uploaded file: the customer as it will be
    stored, where its number and name came from, and what its consent columns said.
    status is "opted_out" (with opt_out_reason) when the customer must never be invited."""

    row_number: int
    original: dict[str, str]
    name: str | None
    phone: str | None
    email: str | None
    errors: list[str]
    phone_column: int | None = None
    phone_value: str | None = None
    name_from_organisation: bool = False
    consent: Consent = "unknown"
    consent_column: int | None = None
    status: str = "pending"
    opt_out_reason: str | None = None

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
    default_consent: DefaultConsent = "assume",
) -> RowResult:
    """Validate one row; a row can carry several errors."""
    errors: list[str] = []
    name, from_organisation = _name(cells, mapping, errors)
    choice = choose_phone(cells, mapping, headers, region)
    if choice.error is not None:
        errors.append(choice.error)
    email = _email(_cell(cells, mapping.email), errors)
    if _too_long(cells) and ROW_TOO_LONG not in errors:
        errors.append(ROW_TOO_LONG)
    said = verdict(cells, mapping.consent) if mapping.consent else UNKNOWN
    status, reason = "pending", said.reason
    if said.consent == "no":
        status = "opted_out"
    elif said.consent == "unknown" and default_consent == "require":
        status, reason = "opted_out", CONSENT_REQUIRED
    return RowResult(row_number, _original(cells, headers), name, choice.e164, email, errors,
                     phone_column=choice.column, phone_value=choice.value,
                     name_from_organisation=from_organisation, consent=said.consent,
                     consent_column=said.column, status=status, opt_out_reason=reason)


def _cell(cells: list[str], index: int | None) -> str:
    """The trimmed cell at index, or '' when unmapped or missing."""
    if index is None or index >= len(cells):
        return ""
    return cells[index].strip()


def _name(cells: list[str], mapping: ColumnMapping, errors: list[str]
          ) -> tuple[str | None, bool]:
    """The cleaned full name, or first, middle and last joined; an organisation stands in
    when no personal name exists (True then)."""
    if mapping.name is not None:
        name = _cell(cells, mapping.name)
    else:
        parts = (_cell(cells, mapping.first_name), _cell(cells, mapping.middle_name),
                 _cell(cells, mapping.last_name))
        name = " ".join(part for part in parts if part)
    from_organisation = False
    if name:
        name = clean_name(name)
    else:
        name = collapse_spaces(_cell(cells, mapping.organisation))
        from_organisation = bool(name)
    if not name:
        errors.append(NAME_REQUIRED)
        return None, False
    if len(name) > MAX_NAME_CHARS:
        errors.append(ROW_TOO_LONG)
        return None, from_organisation
    return name, from_organisation


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
    lengths = list(map(len, cells))
    return bool(lengths) and (sum(lengths) > MAX_ROW_CHARS or max(lengths) > MAX_CELL_CHARS)


def _original(cells: list[str], headers: list[str]) -> dict[str, str]:
    """Header -> cell; cells past the last header are keyed 'Column N'."""
    original = dict(zip(headers, cells, strict=False))
    for index in range(len(headers), len(cells)):
        original[f"Column {index + 1}"] = cells[index]
    return original


def mark_in_file_duplicates(results: list[RowResult]) -> list[RowResult]:
    """Mark valid rows whose phone already appeared in an earlier valid row. A duplicate that
    says no to marketing opts out the row that is kept: a no anywhere in the file wins."""
    seen: dict[str, int] = {}
    marked: list[RowResult] = []
    for result in results:
        if result.errors or result.phone is None:
            marked.append(result)
        elif result.phone in seen:
            marked.append(msgspec.structs.replace(result, errors=[DUPLICATE_PHONE]))
            kept = marked[seen[result.phone]]
            if result.consent == "no" and kept.consent != "no":
                marked[seen[result.phone]] = msgspec.structs.replace(
                    kept, consent="no", consent_column=result.consent_column,
                    status="opted_out", opt_out_reason=result.opt_out_reason)
        else:
            seen[result.phone] = len(marked)
            marked.append(result)
    return marked


def validate_table(table: Table, mapping: ColumnMapping, region: str,
                   default_consent: DefaultConsent = "assume") -> list[RowResult]:
    """Validate every data row of a table, then mark duplicates within the file."""
    headers = table.headers
    results = [
        validate_row(cells, number, headers, mapping, region, default_consent)
        for cells, number in zip(table.rows, table.row_numbers, strict=True)
    ]
    return mark_in_file_duplicates(results)
