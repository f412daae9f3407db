"""Cell names and boxes of the grid checks."""

from __future__ import annotations

from onboardd.importing.grid import Box, Extent, GridLimits, cell_name, column_name


def test_cell_names() -> None:
    assert [column_name(i) for i in (0, 25, 26, 701, 702, 16383)] == [
        "A", "Z", "AA", "ZZ", "AAA", "XFD"]
    assert cell_name(1_048_575, 16_383) == "XFD1048576"
    assert Box(0, 0, 1_048_575, 16_383).reference() == "A1:XFD1048576"
    assert Box(4, 2, 4, 2).reference() == "C5"


def test_extent_and_limits() -> None:
    extent = Extent()
    extent.add(5, 3)
    box = extent.add(2, 7)
    assert box == Box(2, 3, 5, 7) and (box.rows, box.columns) == (4, 5)
    limits = GridLimits(max_rows=10, max_columns=5)
    assert limits.grid_rows == 1010
    assert limits.fits(box)
    assert not limits.fits(extent.add(2, 8))
    assert not limits.fits(Box(0, 0, 1010, 0))
    assert limits.fits(Box(0, 0, 1009, 0))
