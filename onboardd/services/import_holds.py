"""Where a salon's imports hold one person's number: the original cells of error rows, and the
uploaded files of imports still awaiting confirmation or running (an erase waits for those).

A cell holds a number when it, one of the numbers it lists (' ::: ', ';', '/', ...) or a
number written inside its text reads as that E.164 number in the batch's region, the way the
importer reads phone cells. Every cell
is looked at, not only the mapped phone columns: a number in a notes column is theirs too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterable
from typing import Final

import msgspec

from onboardd.db import privacy as db
from onboardd.domain.phones import PhoneError, normalize_phone
from onboardd.importing.files import FileRejected, read_table
from onboardd.importing.phone_choice import split_numbers
from onboardd.runtime import Services

_NON_DIGITS = re.compile(r"\D")
# A number written inside other text ("call 98765 43210 after 6").
_PHONE_RUN = re.compile(r"\+?\d[\d\s().-]{5,}\d")
# Digits of the number a cell must contain before it is worth normalising.
_TAIL_DIGITS: Final = 8


def cell_holds(cell: str, e164: str, region: str) -> bool:
    """True when the cell is, or lists, this E.164 number (read in the batch's region)."""
    if e164[-_TAIL_DIGITS:] not in _NON_DIGITS.sub("", cell):
        return False
    for piece in dict.fromkeys([cell, *split_numbers(cell), *_PHONE_RUN.findall(cell)]):
        try:
            if normalize_phone(piece, region) == e164:
                return True
        except PhoneError:
            continue
    return False


def row_holds(cells: Iterable[str], e164: str, region: str) -> bool:
    """True when a cell of the row is, or lists, this number. One pass over the digits of the
    whole row first (digits of neighbouring cells joined can only add candidates), so a row
    without the number's last digits costs one substitution."""
    cells = list(cells)
    if e164[-_TAIL_DIGITS:] not in _NON_DIGITS.sub("", "".join(cells)):
        return False
    return any(cell_holds(cell, e164, region) for cell in cells)


def holds_phone(original: dict[str, str], e164: str, region: str) -> bool:
    """True when a cell of an import row (header -> cell) is this number."""
    return row_holds(original.values(), e164, region)


def _rows_holding(cells_of_rows: Iterable[list[str]], e164: str, region: str) -> int:
    return sum(1 for cells in cells_of_rows if row_holds(cells, e164, region))


class OpenImport(msgspec.Struct, frozen=True):
    """An import of the salon whose stored file holds the number."""

    batch_id: str
    status: str
    file_name: str | None
    rows: int
    created_at: dt.datetime
    progress: int


def _file_rows_holding(services: Services, batch: db.OpenImportFile, e164: str) -> int:
    """How many rows of the stored file hold the number (CPU only; a worker thread)."""
    limits = services.cfg.import_
    try:
        table = read_table(batch.file_kind,  # type: ignore[arg-type]
                           batch.file_data, max_rows=max(limits.max_rows, batch.total_records),
                           max_columns=limits.max_columns,
                           max_uncompressed_bytes=limits.max_uncompressed_bytes)
    except (FileRejected, ValueError):
        # A file the importer cannot read either: the batch fails without importing anyone.
        return 0
    return _rows_holding(table.rows, e164, batch.region)


async def open_imports_holding(services: Services, salon_id: str, e164: str
                               ) -> tuple[list[OpenImport], set[str]]:
    """The salon's imports awaiting confirmation or running whose stored file holds the number,
    and the ids of every open import looked at."""
    found: list[OpenImport] = []
    looked: set[str] = set()
    for batch in await db.open_imports(services.pool, salon_id):
        looked.add(batch.id)
        rows = await asyncio.to_thread(_file_rows_holding, services, batch, e164)
        if rows:
            progress = (min(100, batch.processed * 100 // batch.total_records)
                        if batch.total_records > 0 else 0)
            found.append(OpenImport(batch_id=batch.id, status=batch.status,
                                    file_name=batch.file_name, rows=rows,
                                    created_at=batch.created_at, progress=progress))
    return found, looked
