"""How far a spreadsheet's cells may reach before a reader builds its grid, and the refusals.

A spreadsheet reader builds a dense grid from the first to the last cell of a sheet: one far
cell (XFD1048576) makes a grid of 17 billion cells out of a tiny file. The scanners of the
workbook formats find a sheet's declared range and its real cell extent from the file itself,
streaming, and check them here before the reader is asked for the grid.
"""

from __future__ import annotations

from typing import Final, NamedTuple, NoReturn

import msgspec

from onboardd.importing.errors import FileRejected

# Rows a sheet may hold beyond max_rows for titles, the header and blank lines.
ROW_ALLOWANCE: Final = 1000
# What Excel itself allows; a reference beyond it is not a real cell.
EXCEL_MAX_ROWS: Final = 1_048_576
EXCEL_MAX_COLUMNS: Final = 16_384


class Box(NamedTuple):
    """A rectangle of cells, 0-based and inclusive."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def rows(self) -> int:
        """Rows from top to bottom."""
        return self.bottom - self.top + 1

    @property
    def columns(self) -> int:
        """Columns from left to right."""
        return self.right - self.left + 1

    def reference(self) -> str:
        """The range as Excel writes it, e.g. A1:XFD1048576."""
        first, last = cell_name(self.top, self.left), cell_name(self.bottom, self.right)
        return first if first == last else f"{first}:{last}"


class GridLimits(msgspec.Struct, frozen=True):
    """The configured limits and the grid they allow."""

    max_rows: int
    max_columns: int

    @property
    def grid_rows(self) -> int:
        """Rows a sheet may span: the customer rows plus titles, header and blank lines."""
        return self.max_rows + ROW_ALLOWANCE

    def fits(self, box: Box) -> bool:
        """True when a grid over this box stays within the limits."""
        return box.rows <= self.grid_rows and box.columns <= self.max_columns


class Extent:
    """The smallest box holding every cell added so far."""

    __slots__ = ("box",)

    def __init__(self) -> None:
        self.box: Box | None = None

    def add(self, row: int, column: int) -> Box:
        """Grow the box to hold this cell; returns the new box."""
        box = self.box
        if box is None:
            box = Box(row, column, row, column)
        elif not (box.top <= row <= box.bottom and box.left <= column <= box.right):
            box = Box(min(box.top, row), min(box.left, column), max(box.bottom, row),
                      max(box.right, column))
        self.box = box
        return box


def column_name(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA, 16383 -> XFD."""
    name = ""
    index += 1
    while index > 0:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def cell_name(row: int, column: int) -> str:
    """(0, 0) -> A1."""
    return f"{column_name(column)}{row + 1}"


def refuse_declared(sheet: str, box: Box, limits: GridLimits) -> NoReturn:
    """The sheet's own declared range (its used range) is beyond the limits."""
    _refuse(sheet, box, limits,
            f"The sheet '{sheet}' declares its used range as {box.reference()}")


def refuse_cell(sheet: str, box: Box, row: int, column: int, limits: GridLimits) -> NoReturn:
    """A cell of the sheet lies beyond the limits, measured from the sheet's first cell."""
    _refuse(sheet, box, limits,
            f"The sheet '{sheet}' has a cell at {cell_name(row, column)}, so its cells span "
            f"at least {box.reference()}")


def _refuse(sheet: str, box: Box, limits: GridLimits, what: str) -> NoReturn:
    """422 naming the limit that is passed and how to fix the file."""
    wide = box.columns > limits.max_columns
    if wide:
        code, limit, key = "too_many_columns", limits.max_columns, "max_columns"
        size = (f"{box.columns:,} columns; one import reads at most {limits.max_columns:,} "
                "columns ([import] max_columns)")
        fix = ("Delete the columns to the right of the customer list (select them, right-click, "
               "Delete), or copy just the customer columns into a new sheet, save and upload "
               "it again.")
    else:
        code, limit, key = "too_many_rows", limits.max_rows, "max_rows"
        size = (f"{box.rows:,} rows; one import takes at most {limits.max_rows:,} customer rows "
                f"([import] max_rows) plus {ROW_ALLOWANCE:,} rows of titles and blank lines")
        fix = ("Delete the rows below the customer list (select them, right-click, Delete), or "
               f"split the list into files of at most {limits.max_rows:,} rows, and upload "
               "again.")
    if wide and box.rows > limits.grid_rows:
        fix += f" It also spans {box.rows:,} rows: delete the rows below the list too."
    raise FileRejected(code, f"{what}: {size}. {fix}", {
        "sheet": sheet, "range": box.reference(), "rows": box.rows, "columns": box.columns,
        "limit": limit, "limitKey": f"[import] {key}", "maxRows": limits.max_rows,
        "maxColumns": limits.max_columns,
    })


def reject(code: str, message: str, details: dict[str, object] | None = None) -> NoReturn:
    """Raise FileRejected."""
    raise FileRejected(code, message, details)


def damaged(reason: str) -> NoReturn:
    """The workbook's structure is broken or not what Excel writes."""
    reject("unreadable",
           "The workbook is damaged or not a real Excel file and cannot be opened "
           f"({reason}). Open it in Excel, save it again as .xlsx and upload the new file.",
           {"reason": reason[:300]})
