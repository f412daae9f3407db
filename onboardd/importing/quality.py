"""The whole-file quality summary an upload's preview shows before anything is imported.

Every row of the file is validated with the mapping in force, exactly as the importer will
(`validate_table`: the same row rules, the same "first occurrence wins" for a number seen twice,
the same "a no anywhere in the file wins" for consent). The sandboxed child that parses the
upload does this (`file_quality`), so the CPU work stays off the daemon's event loop; it answers
counts and, for each number that will be kept, what the import will do with it. Which of those
numbers the salon already has is the parent's single database lookup, and `summarise` turns
both into the counts the preview shows.

Each row is counted once: imported, a duplicate (in the file, or of a customer the salon
already has), or rejected under its first problem in this order: a landline, an invalid number,
no number at all, no name, an invalid email, anything else (a row or cell too long).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

import msgspec

from onboardd.domain.columns import ColumnMapping
from onboardd.domain.phones import INVALID_PHONE, NOT_MOBILE
from onboardd.importing.consent import DefaultConsent
from onboardd.importing.files import Table
from onboardd.importing.rows import (
    DUPLICATE_PHONE,
    INVALID_EMAIL,
    NAME_REQUIRED,
    RowResult,
    validate_table,
)

__all__ = ["FileQuality", "KeptRow", "Quality", "file_quality", "summarise"]

# The categories of a rejected row, in the order a row with several problems is counted.
_LANDLINE: Final = "landlines"
_INVALID_NUMBER: Final = "invalid_numbers"
_MISSING_NUMBER: Final = "missing_numbers"
_MISSING_NAME: Final = "missing_names"
_INVALID_EMAIL: Final = "invalid_emails"
_OTHER: Final = "other_invalid"


class KeptRow(msgspec.Struct, frozen=True, array_like=True):
    """The first row of the file with a number: the number (E.164) and what the import will do
    with it (its consent, whether it is imported opted out, whether its name is the
    organisation's)."""

    phone: str
    consent: str
    opted_out: bool
    from_organisation: bool


class FileQuality(msgspec.Struct, frozen=True):
    """What the file alone says: the rejected rows by first problem, the in-file duplicates,
    and the rows that will be kept unless the salon already has their number."""

    total_rows: int
    duplicates_in_file: int
    landlines: int
    invalid_numbers: int
    missing_numbers: int
    missing_names: int
    invalid_emails: int
    other_invalid: int
    kept: list[KeptRow]


class Quality(msgspec.Struct, frozen=True, rename="camel"):
    """The preview's summary of the whole file. will_import + duplicates_in_file +
    already_customers + invalid_rows == total_rows; invalid_rows is the sum of the six
    rejection counts (landlines .. other_invalid). The consent counts, named_after_organisation
    and imported_opted_out are among the rows that will be imported."""

    total_rows: int
    will_import: int
    duplicates_in_file: int
    already_customers: int
    invalid_rows: int
    landlines: int
    invalid_numbers: int
    missing_numbers: int
    missing_names: int
    invalid_emails: int
    other_invalid: int
    named_after_organisation: int
    imported_opted_out: int
    consent_yes: int
    consent_no: int
    consent_blank: int
    default_consent: str


def _phone_cells_blank(cells: list[str], mapping: ColumnMapping) -> bool:
    """True when no mapped phone column of the row holds anything."""
    width = len(cells)
    return all(not cells[s.column].strip() for s in mapping.phones if s.column < width)


def _first_problem(result: RowResult, cells: list[str], mapping: ColumnMapping) -> str:
    """The category a rejected row is counted under."""
    errors = result.errors
    if any(e.startswith(NOT_MOBILE) for e in errors):
        return _LANDLINE
    if any(e.startswith(INVALID_PHONE) for e in errors):
        return _MISSING_NUMBER if _phone_cells_blank(cells, mapping) else _INVALID_NUMBER
    if NAME_REQUIRED in errors:
        return _MISSING_NAME
    if INVALID_EMAIL in errors:
        return _INVALID_EMAIL
    return _OTHER


def file_quality(table: Table, mapping: ColumnMapping, region: str,
                 default_consent: DefaultConsent) -> FileQuality:
    """Validate every row as the importer will and count (CPU only; the child runs it)."""
    rejected = dict.fromkeys((_LANDLINE, _INVALID_NUMBER, _MISSING_NUMBER, _MISSING_NAME,
                              _INVALID_EMAIL, _OTHER), 0)
    duplicates = 0
    kept: list[KeptRow] = []
    for result, cells in zip(validate_table(table, mapping, region, default_consent),
                             table.rows, strict=True):
        if result.valid:
            assert result.phone is not None
            kept.append(KeptRow(result.phone, result.consent, result.status == "opted_out",
                                result.name_from_organisation))
        elif result.errors == [DUPLICATE_PHONE]:
            duplicates += 1
        else:
            rejected[_first_problem(result, cells, mapping)] += 1
    return FileQuality(
        total_rows=len(table.rows), duplicates_in_file=duplicates,
        landlines=rejected[_LANDLINE], invalid_numbers=rejected[_INVALID_NUMBER],
        missing_numbers=rejected[_MISSING_NUMBER], missing_names=rejected[_MISSING_NAME],
        invalid_emails=rejected[_INVALID_EMAIL], other_invalid=rejected[_OTHER], kept=kept)


def summarise(file: FileQuality, existing: Collection[str], default_consent: str) -> Quality:
    """The preview's counts, given the numbers (E.164) among `file.kept` the salon already
    has: those rows are duplicates of customers and are not imported."""
    imported = [row for row in file.kept if row.phone not in existing]
    consent = {"yes": 0, "no": 0, "unknown": 0}
    for row in imported:
        consent[row.consent] = consent.get(row.consent, 0) + 1
    invalid = (file.landlines + file.invalid_numbers + file.missing_numbers + file.missing_names
               + file.invalid_emails + file.other_invalid)
    return Quality(
        total_rows=file.total_rows, will_import=len(imported),
        duplicates_in_file=file.duplicates_in_file,
        already_customers=len(file.kept) - len(imported), invalid_rows=invalid,
        landlines=file.landlines, invalid_numbers=file.invalid_numbers,
        missing_numbers=file.missing_numbers, missing_names=file.missing_names,
        invalid_emails=file.invalid_emails, other_invalid=file.other_invalid,
        named_after_organisation=sum(row.from_organisation for row in imported),
        imported_opted_out=sum(row.opted_out for row in imported),
        consent_yes=consent["yes"], consent_no=consent["no"], consent_blank=consent["unknown"],
        default_consent=default_consent)
