"""Hostile uploads over real HTTP and Postgres: far-cell workbooks, wide headers, huge cells,
upload floods. Each is refused in the one error shape or answered small, and the server
keeps serving."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient

from onboardd.runtime import Services
from tests.conftest import AppFor
from tests.hostile_files import far_cell_xlsx, shared_string_bomb, wide_header_csv
from tests.web.test_imports_api import form, upload
from tests.xls_support import xls_bytes

Client = TestClient[Any, Any]
# The preview's documented bounds (onboardd.importing.preview), spelled out so this file also
# runs against code without them.
PREVIEW_MAX_BYTES = 512 * 1024
PREVIEW_CELL_CHARS = 100
HEADER_AND_ONE = {(0, 0): "Name", (0, 1): "Phone", (1, 0): "Asha", (1, 1): "9876543210"}


async def batches(services: Services, salon: str) -> int:
    count: int = await services.pool.fetchval(
        "SELECT count(*) FROM customer_import_batches WHERE salon_id = $1", salon)
    return count


async def still_serving(client: Client) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200


@pytest.mark.parametrize("cell", ["XFD1048576", "ZZ100000"])
async def test_tiny_far_cell_xlsx_is_422_naming_max_columns(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services,
        cell: str) -> None:
    body = await upload(client, salon, admin_headers, far_cell_xlsx(cell), "list.xlsx",
                        expect=422)
    error = body["error"]
    assert error["code"] == "too_many_columns"
    assert error["details"]["limit"] == 200
    assert error["details"]["limitKey"] == "[import] max_columns"
    assert "[import] max_columns" in error["message"] and "Delete the columns" in error["message"]
    assert await batches(services, salon) == 0
    await still_serving(client)


async def test_shared_string_bomb_and_xls_dimensions_bomb_are_422(
        client: Client, salon: str, admin_headers: dict[str, str]) -> None:
    body = await upload(client, salon, admin_headers, shared_string_bomb(), "list.xlsx",
                        expect=422)
    assert body["error"]["code"] == "unreadable"
    body = await upload(client, salon, admin_headers,
                        xls_bytes(HEADER_AND_ONE, (0, 0xFFFF_FFFF, 0, 0xFFFF)), "old.xls",
                        expect=422)
    assert body["error"]["code"] == "too_many_columns"
    await still_serving(client)


async def test_damaged_xls_compound_file_is_422_unreadable(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services) -> None:
    """The workbook stream's last sector is cut off: olefile's error, named, not a 500."""
    data = xls_bytes(HEADER_AND_ONE, (0, 2, 0, 2))[:-512]
    body = await upload(client, salon, admin_headers, data, "old.xls", expect=422)
    error = body["error"]
    assert error["code"] == "unreadable"
    assert "sector index out of range" in error["details"]["reason"]
    assert "sector index out of range" in error["message"]
    assert await batches(services, salon) == 0
    await still_serving(client)


async def test_wide_header_csv_is_422_naming_max_columns(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services) -> None:
    body = await upload(client, salon, admin_headers, wide_header_csv(50_002), expect=422)
    error = body["error"]
    assert error["code"] == "too_many_columns"
    assert (error["details"]["columns"], error["details"]["limit"]) == (50_002, 200)
    assert "[import] max_columns" in error["message"]
    assert await batches(services, salon) == 0


async def test_ragged_rows_are_previewed_without_padding(
        client: Client, salon: str, admin_headers: dict[str, str]) -> None:
    header = ",".join(["Name", "Phone"] + [f"Extra {i}" for i in range(150)])
    body = await upload(client, salon, admin_headers,
                        f"{header}\nAsha,9876543210\nRavi,9876543211,x\n")
    assert body["preview"][0]["originalData"] == {"Name": "Asha", "Phone": "9876543210"}
    assert body["preview"][1]["originalData"] == {
        "Name": "Ravi", "Phone": "9876543211", "Extra 0": "x"}
    assert body["previewTruncated"] is False


async def test_preview_stays_under_512_kb_whatever_the_cells(
        client: Client, salon: str, admin_headers: dict[str, str]) -> None:
    """10 rows x 200 columns of 2,000-character cells: a 4 MB file, the preview answer small."""
    header = ",".join(["Name", "Phone"] + [f"Note {i}" for i in range(198)])
    rows = "".join(
        f"Customer {i},98765432{i:02d}," + ",".join(["y" * 2000] * 198) + "\n" for i in range(12))
    data = f"{header}\n{rows}".encode()
    assert len(data) > 4_000_000
    resp = await client.post(f"/api/salons/{salon}/customers/import",
                             data=form(data), headers=admin_headers)
    raw = await resp.read()
    assert resp.status == 201, raw[:300]
    assert len(raw) < PREVIEW_MAX_BYTES
    body = msgspec.json.decode(raw)
    assert body["previewTruncated"] is True
    assert body["totalRows"] == 12 and len(body["columns"]) == 200
    first = body["preview"][0]
    assert first["name"] == "Customer 0"
    assert first["errors"] == ["Row exceeds maximum length"]
    assert first["originalData"]["Name"] == "Customer 0"
    assert first["originalData"]["Note 0"] == "y" * PREVIEW_CELL_CHARS + "\u2026"


async def test_uploads_per_hour_is_429_across_instances_and_counts_refusals(
        app_for: AppFor, salon: str, admin_headers: dict[str, str]) -> None:
    async with app_for(import_uploads_per_hour="3") as (client_a, svc), \
            app_for(import_uploads_per_hour="3") as (client_b, _):
        await upload(client_a, salon, admin_headers, "Name,Phone\nA,9876543210\n")
        await upload(client_b, salon, admin_headers, wide_header_csv(300), expect=422)
        await upload(client_a, salon, admin_headers, "Name,Phone\nB,9876543211\n")
        body = await upload(client_b, salon, admin_headers, "Name,Phone\nC,9876543212\n",
                            expect=429)
        assert body["error"]["code"] == "rate_limited"
        assert body["error"]["details"]["limitKey"] == "[import] uploads_per_hour"
        resp = await client_a.post(f"/api/salons/{salon}/customers/import",
                                   data=form("Name,Phone\nC,9876543212\n"),
                                   headers=admin_headers)
        assert resp.status == 429
        assert 3500 < int(resp.headers["Retry-After"]) <= 3600
        # The oldest upload leaves the rolling hour: one slot frees up.
        await svc.pool.execute(
            "UPDATE import_uploads SET uploaded_at = now() - interval '61 minutes' WHERE "
            "uploaded_at = (SELECT min(uploaded_at) FROM import_uploads WHERE salon_id = $1)",
            salon)
        await upload(client_b, salon, admin_headers, "Name,Phone\nC,9876543212\n")


async def test_a_reader_that_exhausts_memory_ends_only_its_child(
        app_for: AppFor, salon: str, admin_headers: dict[str, str]) -> None:
    """Limits so high that no grid check stops the file: the reader's 11 PB allocation
    aborts the sandboxed child, and the upload is a 422; the server keeps serving."""
    async with app_for(import_max_rows="5000000000", import_max_columns="100000") as (client, _):
        body = await upload(client, salon, admin_headers,
                            xls_bytes(HEADER_AND_ONE, (0, 0xFFFF_FFFF, 0, 0xFFFF)), "old.xls",
                            expect=422)
        assert body["error"]["code"] == "too_costly_to_read"
        assert "MB of memory" in body["error"]["message"]
        await still_serving(client)
        await upload(client, salon, admin_headers, "Name,Phone\nA,9876543210\n")
