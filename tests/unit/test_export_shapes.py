"""Each real export shape, read and validated as the importer does (no database): the shape is
recognised, and every row gets the expected number, name, status and consent."""

from __future__ import annotations

import pytest

from onboardd.importing.files import read_table
from onboardd.importing.mapping import guess
from onboardd.importing.rows import validate_table
from tests.export_shapes import SHAPES, ExportFile


@pytest.mark.parametrize("shape", list(SHAPES))
def test_shape_is_recognised_and_every_row_imports_as_expected(shape: str) -> None:
    export: ExportFile = SHAPES[shape]()
    table = read_table("csv", export.data, max_rows=100)
    mapping, detected = guess(table.headers)
    assert detected is not None and detected.slug == export.slug
    assert bool(mapping.consent) == export.has_consent
    results = validate_table(table, mapping, "IN")
    assert len(results) == len(export.rows)
    for result, want in zip(results, export.rows, strict=True):
        if want.e164 is None:
            assert result.errors == [want.error], result
            continue
        assert result.errors == [], result
        assert (result.name, result.phone, result.status, result.consent,
                result.opt_out_reason, result.name_from_organisation) == (
            want.name, want.e164, want.status, want.consent, want.reason, want.from_org), result
        assert result.phone_value is not None and result.phone_column is not None
        assert table.headers[result.phone_column] in result.original


def test_an_unknown_layout_is_not_named() -> None:
    assert guess(["Name", "Phone"])[1] is None
