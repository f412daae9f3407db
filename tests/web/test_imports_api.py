"""Import APIs over real HTTP and Postgres, with the importer actor running: upload + preview,
confirm, status, errors.csv, the imported list, limits, tenancy and the rate limit."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import xlsxwriter
from aiohttp.test_utils import TestClient
from yarl import URL

from onboardd.auth import TokenCodec
from onboardd.db.delivery import recount
from onboardd.runtime import Services
from tests.conftest import AppFor, bearer

Client = TestClient[Any, Any]

GOOD_CSV = (
    "Name,Phone,Email,Notes\n"
    "Priya Sharma,9876543210,priya@example.com,regular\n"
    "Rahul Verma,+91 98765 43211,,\n"
    "Anita Desai,098765-432-12,anita@example.com,vip\n"
)


def form(data: bytes | str, filename: str = "customers.csv",
         mapping: str | None = None) -> aiohttp.FormData:
    """A multipart upload body."""
    body = aiohttp.FormData()
    body.add_field("file", data.encode() if isinstance(data, str) else data,
                   filename=filename, content_type="application/octet-stream")
    if mapping is not None:
        body.add_field("mapping", mapping)
    return body


async def upload(client: Client, salon: str, headers: dict[str, str], data: bytes | str,
                 filename: str = "customers.csv", mapping: str | None = None,
                 expect: int = 201) -> dict[str, Any]:
    resp = await client.post(f"/api/salons/{salon}/customers/import",
                             data=form(data, filename, mapping), headers=headers)
    body: dict[str, Any] = await resp.json()
    assert resp.status == expect, body
    return body


async def wait_done(client: Client, salon: str, batch: str, headers: dict[str, str]
                    ) -> dict[str, Any]:
    """Poll the status endpoint until the batch ends."""
    for _ in range(500):
        resp = await client.get(f"/api/salons/{salon}/customers/import/{batch}/status",
                                headers=headers)
        body: dict[str, Any] = await resp.json()
        assert resp.status == 200, body
        if body["status"] in ("completed", "failed"):
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"batch {batch} did not finish: {body}")


async def import_file(client: Client, salon: str, headers: dict[str, str], data: bytes | str,
                      filename: str = "customers.csv") -> dict[str, Any]:
    """Upload, confirm, wait: the final status."""
    preview = await upload(client, salon, headers, data, filename)
    resp = await client.post(
        f"/api/salons/{salon}/customers/import/{preview['batchId']}/confirm", headers=headers)
    assert resp.status == 202, await resp.text()
    return await wait_done(client, salon, preview["batchId"], headers)


def check_counters(status: dict[str, Any]) -> None:
    assert (status["successfulImports"] + status["failedImports"] + status["duplicateSkipped"]
            == status["totalRecords"] == status["processed"])


# --- upload and preview ---------------------------------------------------------------


async def test_upload_answers_preview_and_imports_nothing(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services) -> None:
    body = await upload(client, salon, admin_headers, GOOD_CSV)
    assert body["status"] == "preview"
    assert body["totalRows"] == 3
    assert body["columns"] == ["Name", "Phone", "Email", "Notes"]
    assert body["mapping"] == {"name": "Name", "phone": "Phone", "email": "Email"}
    assert body["unmappedColumns"] == ["Notes"]
    first = body["preview"][0]
    assert first == {"rowNumber": 2, "name": "Priya Sharma", "phone": "+919876543210",
                     "email": "priya@example.com", "valid": True, "errors": [],
                     "originalData": {"Name": "Priya Sharma", "Phone": "9876543210",
                                      "Email": "priya@example.com", "Notes": "regular"},
                     "phoneColumn": "Phone", "phoneValue": "9876543210",
                     "nameFromOrganisation": False, "consent": "unknown",
                     "consentColumn": None, "status": "pending", "optOutReason": None}
    assert (body["detectedSource"], body["detectedSourceLabel"]) == (None, None)
    assert body["consent"] == {"columns": [], "defaultConsent": "assume"}
    assert [r["phone"] for r in body["preview"]] == [
        "+919876543210", "+919876543211", "+919876543212"]
    row = await services.pool.fetchrow(
        "SELECT status, total_records, file_data IS NOT NULL AS kept, imported_by "
        "FROM customer_import_batches WHERE id = $1", body["batchId"])
    assert dict(row) == {"status": "preview", "total_records": 3, "kept": True,
                         "imported_by": "admin-1"}
    assert await services.pool.fetchval("SELECT count(*) FROM imported_customers") == 0


async def test_preview_shows_only_ten_rows_and_marks_duplicates(
        client: Client, salon: str, admin_headers: dict[str, str],
        importer_running: None) -> None:
    await import_file(client, salon, admin_headers, "Name,Phone\nOld,9876543210\n")
    rows = ["Name,Mobile No."] + [f"C{i},98765432{i:02d}" for i in range(25)]
    rows[5] = "Again,9876543210"  # existing customer
    rows[7] = "Twin,9876543201"  # same phone as row 3 of the file
    body = await upload(client, salon, admin_headers, "\n".join(rows))
    assert body["totalRows"] == 25
    assert len(body["preview"]) == 10
    by_row = {r["rowNumber"]: r for r in body["preview"]}
    assert by_row[6]["errors"] == ["Duplicate phone number"]
    assert by_row[8]["errors"] == ["Duplicate phone number"]
    assert not by_row[8]["valid"] and by_row[2]["valid"]


async def test_upload_mapping_override(client: Client, salon: str,
                                       admin_headers: dict[str, str]) -> None:
    data = "Client,Alt,Mobile\nA,9876543210,9876543299\n"
    body = await upload(client, salon, admin_headers, data,
                        mapping='{"name": "Client", "phone": "Alt"}')
    assert body["mapping"] == {"name": "Client", "phone": "Alt"}
    assert body["preview"][0]["phone"] == "+919876543210"
    bad = await upload(client, salon, admin_headers, data, mapping='{"phone": "Nope"}',
                       expect=422)
    assert bad["error"]["details"]["field"] == "mapping.phone"
    assert "Nope" in bad["error"]["message"]
    bad = await upload(client, salon, admin_headers, data, mapping="not json", expect=422)
    assert bad["error"]["details"]["field"] == "mapping"


async def test_no_phone_column_lists_headers(client: Client, salon: str,
                                            admin_headers: dict[str, str]) -> None:
    body = await upload(client, salon, admin_headers, "Name,City\nA,Pune\n", expect=422)
    assert body["error"]["details"]["columns"] == ["Name", "City"]
    assert "'Name', 'City'" in body["error"]["message"]


@pytest.mark.parametrize(("filename", "data", "status", "code"), [
    ("customers.txt", "Name,Phone\nA,9876543210\n", 415, "unsupported_type"),
    ("customers.xlsx", "Name,Phone\nA,9876543210\n", 415, "content_mismatch"),
    ("customers.csv", b"PK\x03\x04garbage", 415, "content_mismatch"),
    ("customers.csv", "Name,Phone\n", 422, "empty_file"),
    ("customers.csv", "", 422, "empty_file"),
])
async def test_bad_files_are_clear_4xx(client: Client, salon: str, admin_headers: dict[str, str],
                                       filename: str, data: str | bytes, status: int,
                                       code: str) -> None:
    body = await upload(client, salon, admin_headers, data, filename, expect=status)
    assert body["error"]["code"] == code


async def test_missing_file_field_and_wrong_content_type(
        client: Client, salon: str, admin_headers: dict[str, str]) -> None:
    body = aiohttp.FormData()
    body.add_field("other", "x", content_type="text/plain")  # forces multipart
    resp = await client.post(f"/api/salons/{salon}/customers/import", data=body,
                             headers=admin_headers)
    assert resp.status == 422
    assert (await resp.json())["error"]["details"]["field"] == "file"
    resp = await client.post(f"/api/salons/{salon}/customers/import", json={"a": 1},
                             headers=admin_headers)
    assert resp.status == 415


_PART = (b'--b0\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
         b"Content-Type: text/csv\r\n\r\nName,Phone\r\nPriya,9876543210\r\n")
# Bodies aiohttp's multipart reader refuses (each raised out of the handler as a 500 before).
MALFORMED_BODIES = {
    "cut short": (_PART, "multipart/form-data; boundary=b0"),
    "cut in the part headers": (_PART[:_PART.index(b"Content-Type")],
                                "multipart/form-data; boundary=b0"),
    "another boundary": (_PART.replace(b"--b0", b"--zz") + b"--zz--\r\n",
                         "multipart/form-data; boundary=b0"),
    "no boundary": (_PART + b"--b0--\r\n", "multipart/form-data"),
    "broken part header": (b"--b0\r\nContent-Disposition form-data\r\n\r\nx\r\n--b0--\r\n",
                           "multipart/form-data; boundary=b0"),
    "not multipart at all": (b"hello", "multipart/form-data; boundary=b0"),
}


@pytest.mark.parametrize("case", list(MALFORMED_BODIES))
async def test_a_malformed_multipart_body_is_400_in_words(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services,
        case: str) -> None:
    data, content_type = MALFORMED_BODIES[case]
    resp = await client.post(f"/api/salons/{salon}/customers/import", data=data,
                             headers={**admin_headers, "Content-Type": content_type})
    body = await resp.json()
    assert resp.status == 400, body
    assert body["error"]["code"] == "malformed_upload"
    assert body["error"]["details"] == {"field": "file"}
    assert body["error"]["message"].startswith("file: the upload arrived incomplete or garbled")
    assert await services.pool.fetchval("SELECT count(*) FROM customer_import_batches") == 0


@pytest.fixture
async def limited(app_for: AppFor) -> AsyncIterator[tuple[Client, Services]]:
    """An app with small limits: 100 kB files, 50 rows, 2 imports an hour."""
    async with app_for(import_max_file_bytes="100000", import_max_rows="50",
                       import_imports_per_hour="2") as started:
        yield started


async def test_too_many_rows_names_the_count(limited: tuple[Client, Services], salon: str,
                                             admin_headers: dict[str, str]) -> None:
    client, _ = limited
    data = "Name,Phone\n" + "".join(f"C{i},98765{i:05d}\n" for i in range(51))
    body = await upload(client, salon, admin_headers, data, expect=422)
    assert body["error"]["code"] == "too_many_rows"
    assert "51" in body["error"]["message"] and "50" in body["error"]["message"]


async def test_declared_oversize_body_is_413_at_once(limited: tuple[Client, Services],
                                                     salon: str,
                                                     admin_headers: dict[str, str]) -> None:
    client, _ = limited
    body = await upload(client, salon, admin_headers, "Name,Phone\n" + "x" * 200_000,
                        expect=413)
    assert body["error"]["code"] == "file_too_large"


async def test_streamed_oversize_file_is_413_before_the_rest_is_sent(
        limited: tuple[Client, Services], salon: str, admin_headers: dict[str, str]) -> None:
    """Chunked body without Content-Length: the answer comes while the client still has
    most of the file unsent."""
    client, _ = limited
    reader, writer = await asyncio.open_connection(client.host, client.port)
    boundary = "b0undary"
    head = (f"POST /api/salons/{salon}/customers/import HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: {admin_headers['Authorization']}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            "filename=\"big.csv\"\r\nContent-Type: text/csv\r\n\r\nName,Phone\r\n")
    writer.write(head.encode())

    def chunk(data: bytes) -> bytes:
        return f"{len(data):x}\r\n".encode() + data + b"\r\n"

    writer.write(chunk(part.encode()))
    sent = 0
    line = b"Customer Name,9876543210\r\n" * 1000
    while sent < 150_000:  # past the 100 kB limit, far short of the 10 MB "file"
        writer.write(chunk(line))
        sent += len(line)
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    assert status_line.startswith(b"HTTP/1.1 413"), status_line
    writer.close()


async def test_rate_limit_counts_confirms_in_rolling_hour(
        limited: tuple[Client, Services], salon: str, admin_headers: dict[str, str]) -> None:
    client, svc = limited
    batches = [(await upload(client, salon, admin_headers,
                             f"Name,Phone\nA,98765432{i}0\n"))["batchId"] for i in range(3)]
    for batch in batches[:2]:
        resp = await client.post(f"/api/salons/{salon}/customers/import/{batch}/confirm",
                                 headers=admin_headers)
        assert resp.status == 202
    resp = await client.post(f"/api/salons/{salon}/customers/import/{batches[2]}/confirm",
                             headers=admin_headers)
    assert resp.status == 429
    retry = int(resp.headers["Retry-After"])
    assert 3500 < retry <= 3600
    assert (await resp.json())["error"]["code"] == "rate_limited"
    # The oldest confirm leaves the window: a slot frees up.
    await svc.pool.execute(
        "UPDATE customer_import_batches SET confirmed_at = now() - interval '61 minutes' "
        "WHERE id = $1", batches[0])
    resp = await client.post(f"/api/salons/{salon}/customers/import/{batches[2]}/confirm",
                             headers=admin_headers)
    assert resp.status == 202


# --- confirm, status, report ----------------------------------------------------------


async def test_confirm_imports_and_status_reports(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services,
        importer_running: None) -> None:
    preview = await upload(client, salon, admin_headers, GOOD_CSV)
    resp = await client.post(
        f"/api/salons/{salon}/customers/import/{preview['batchId']}/confirm",
        headers=admin_headers)
    assert resp.status == 202
    first = await resp.json()
    assert first["batchId"] == preview["batchId"]
    assert first["status"] == "processing"
    assert {"imported", "failed", "duplicates", "statusUrl"} <= first.keys()
    assert first["statusUrl"].endswith(f"/import/{preview['batchId']}/status")
    done = await wait_done(client, salon, preview["batchId"], admin_headers)
    assert done["status"] == "completed" and done["progress"] == 100
    assert (done["imported"], done["failed"], done["duplicates"]) == (3, 0, 0)
    assert done["errors"] == [] and done["completedAt"] is not None
    check_counters(done)
    row = await services.pool.fetchrow(
        "SELECT file_data, completed_at FROM customer_import_batches WHERE id = $1",
        preview["batchId"])
    assert row["file_data"] is None and row["completed_at"] is not None
    stored = await services.pool.fetch(
        "SELECT customer_name, phone_enc, normalized_phone_enc, email_enc, phone_hash, status "
        "FROM imported_customers ORDER BY source_row")
    cipher = services.cipher
    assert [cipher.decrypt(r["normalized_phone_enc"], "phone") for r in stored] == [
        "+919876543210", "+919876543211", "+919876543212"]
    assert cipher.decrypt(stored[1]["phone_enc"], "phone") == "+91 98765 43211"
    assert stored[1]["email_enc"] is None
    assert cipher.decrypt(stored[0]["email_enc"], "email") == "priya@example.com"
    assert stored[0]["phone_hash"] == cipher.phone_hash("+919876543210")
    assert {r["status"] for r in stored} == {"pending"}
    # Confirming again answers the current state and imports nothing more.
    resp = await client.post(
        f"/api/salons/{salon}/customers/import/{preview['batchId']}/confirm",
        headers=admin_headers)
    assert resp.status == 200
    assert (await resp.json())["imported"] == 3
    assert await services.pool.fetchval("SELECT count(*) FROM imported_customers") == 3


async def test_two_confirms_at_once_import_once(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services,
        importer_running: None) -> None:
    preview = await upload(client, salon, admin_headers, GOOD_CSV)
    url = f"/api/salons/{salon}/customers/import/{preview['batchId']}/confirm"
    answers = await asyncio.gather(*(client.post(url, headers=admin_headers) for _ in range(4)))
    assert sorted(r.status for r in answers) == [200, 200, 200, 202]
    done = await wait_done(client, salon, preview["batchId"], admin_headers)
    assert done["imported"] == 3
    assert await services.pool.fetchval(
        "SELECT count(*) FROM customer_import_batches WHERE confirmed_at IS NOT NULL") == 1


async def test_confirm_with_mapping_override(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services,
        importer_running: None) -> None:
    data = "Name,Home,Cell\nA,9876543210,9876543299\n"
    preview = await upload(client, salon, admin_headers, data)
    assert preview["mapping"]["phone"] == "Cell"
    url = f"/api/salons/{salon}/customers/import/{preview['batchId']}/confirm"
    resp = await client.post(url, json={"mapping": {"phone": "Nowhere"}}, headers=admin_headers)
    assert resp.status == 422
    resp = await client.post(url, json={"mapping": {"phone": "Home"}}, headers=admin_headers)
    assert resp.status == 202
    await wait_done(client, salon, preview["batchId"], admin_headers)
    enc = await services.pool.fetchval("SELECT normalized_phone_enc FROM imported_customers")
    assert services.cipher.decrypt(enc, "phone") == "+919876543210"


MESSY = (
    "Name,Phone,Email\n"
    "Good One,9876543210,good@example.com\n"
    ",9876543211,\n"  # no name
    "Bad Phone,12345,\n"  # too short
    "Letters,abcdefghij,\n"
    "Bad Mail,9876543212,not-an-email\n"
    "Landline,02223456789,\n"  # Mumbai fixed line
    "Dup In File,98765 43210,\n"  # same as row 2
    "Existing,9876543299,\n"  # already a customer
    "=HYPERLINK(\"x\"),-123,\n"  # formula-looking cells
    "@Evil,+1,\n"
)


async def test_invalid_rows_duplicates_and_error_report(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services,
        importer_running: None) -> None:
    await import_file(client, salon, admin_headers, "Name,Phone\nOld,9876543299\n")
    done = await import_file(client, salon, admin_headers, MESSY)
    check_counters(done)
    assert (done["imported"], done["failed"], done["duplicates"]) == (1, 7, 2)
    by_row = {e["rowNumber"]: e["errors"] for e in done["errors"]}
    assert by_row == {
        3: ["Name is required"],
        4: ["Invalid phone number format"],
        5: ["Invalid phone number format"],
        6: ["Invalid email format"],
        7: ["Phone number is a landline and cannot receive SMS or WhatsApp"],
        8: ["Duplicate phone number"],
        9: ["Duplicate phone number"],
        10: ["Invalid phone number format"],
        11: ["Invalid phone number format"],
    }
    assert done["errorCount"] == 9
    resp = await client.get(URL(done["errorsUrl"]).path, headers=admin_headers)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    raw = await resp.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0] == ["Row", "Name", "Phone", "Email", "Errors"]
    assert table[1] == ["3", "", "9876543211", "", "Name is required"]
    assert ["9", "Existing", "9876543299", "", "Duplicate phone number"] in table
    assert ["11", "'@Evil", "'+1", "", "Invalid phone number format"] in table
    assert ["10", "'=HYPERLINK(\"x\")", "'-123", "", "Invalid phone number format"] in table
    assert len(table) == 10
    logged = await services.pool.fetchrow(
        "SELECT actor, action, record_count FROM pii_access_log "
        "WHERE action = 'import_error_report'")
    assert dict(logged) == {"actor": "admin-1", "action": "import_error_report",
                            "record_count": 9}
    # The error log keeps original cells encrypted, not as plaintext phones.
    log_text = await services.pool.fetchval(
        "SELECT error_log::text FROM customer_import_batches WHERE id = $1", done["batchId"])
    assert "9876543299" not in log_text


async def test_xlsx_upload_imports(client: Client, salon: str, admin_headers: dict[str, str],
                                   importer_running: None) -> None:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = book.add_worksheet("Customers")
    sheet.write_row(3, 1, ["Full Name", "Mobile", "E-mail"])  # header after blank rows
    sheet.write_row(4, 1, ["Asha", 9876543210, "asha@example.com"])
    sheet.write_row(5, 1, ["Ravi", 9876543211.0, None])
    sheet.write_row(6, 1, ["Sunil", "9.876543212E9", None])
    book.close()
    done = await import_file(client, salon, admin_headers, out.getvalue(), "list.xlsx")
    assert (done["imported"], done["failed"], done["duplicates"]) == (3, 0, 0)


async def test_messy_csv_end_to_end(client: Client, salon: str, admin_headers: dict[str, str],
                                    importer_running: None) -> None:
    text = ('\r\n\r\n  Customer Name ; Mobile No. ; Mail \r\n'
            '"Sharma; ""Priya""" ; 98765 43210 ; \r\n'
            '\r\n'
            '"Multi\nLine" ;+91-98765-43211; m@example.com\r\n')
    data = b"\xef\xbb\xbf" + text.encode()
    preview = await upload(client, salon, admin_headers, data)
    assert preview["mapping"] == {"name": "Customer Name", "phone": "Mobile No.",
                                  "email": "Mail"}
    # Inner whitespace (here a line break inside a quoted cell) is collapsed.
    assert [r["name"] for r in preview["preview"]] == ['Sharma; "Priya"', "Multi Line"]
    url = f"/api/salons/{salon}/customers/import/{preview['batchId']}/confirm"
    assert (await client.post(url, headers=admin_headers)).status == 202
    done = await wait_done(client, salon, preview["batchId"], admin_headers)
    assert done["imported"] == 2


async def test_errors_csv_before_confirm_is_409(client: Client, salon: str,
                                                admin_headers: dict[str, str]) -> None:
    preview = await upload(client, salon, admin_headers, GOOD_CSV)
    resp = await client.get(
        f"/api/salons/{salon}/customers/import/{preview['batchId']}/errors.csv",
        headers=admin_headers)
    assert resp.status == 409


# --- tenancy ---------------------------------------------------------------------------


async def test_tenant_isolation(client: Client, salon: str, admin_headers: dict[str, str],
                                services: Services, tokens: TokenCodec) -> None:
    other = await services.pool.fetchval("INSERT INTO salons (name) VALUES ('Other') RETURNING id")
    other_headers = bearer(tokens, "admin-2", "admin", [other])
    preview = await upload(client, salon, admin_headers, GOOD_CSV)
    batch = preview["batchId"]
    base = f"/api/salons/{salon}/customers"
    # Another salon's admin on this salon's paths: 403.
    for method, path in [("GET", f"{base}/import/{batch}/status"),
                         ("POST", f"{base}/import/{batch}/confirm"),
                         ("GET", f"{base}/import/{batch}/errors.csv"),
                         ("GET", f"{base}/imported")]:
        resp = await client.request(method, path, headers=other_headers)
        assert resp.status == 403, path
    resp = await client.post(f"{base}/import", data=form(GOOD_CSV), headers=other_headers)
    assert resp.status == 403
    # This batch id under the other salon's own path: 404.
    obase = f"/api/salons/{other}/customers/import/{batch}"
    for method, path in [("GET", f"{obase}/status"), ("POST", f"{obase}/confirm"),
                         ("GET", f"{obase}/errors.csv")]:
        resp = await client.request(method, path, headers=other_headers)
        assert resp.status == 404, path
    resp = await client.get(f"{base}/imported")
    assert resp.status == 401


# --- imported list ----------------------------------------------------------------------


async def test_list_search_pagination_and_pii_log(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services,
        importer_running: None) -> None:
    rows = ["Name,Phone,Email"] + [f"Customer {i:02d},98765432{i:02d},c{i}@example.com"
                                   for i in range(30)]
    rows.append("Priya Sharma,9123456789,")
    await import_file(client, salon, admin_headers, "\n".join(rows))
    base = f"/api/salons/{salon}/customers/imported"
    resp = await client.get(base, params={"limit": "10", "page": "2"}, headers=admin_headers)
    page2 = await resp.json()
    assert resp.status == 200
    assert page2["total"] == 31 and page2["totalPages"] == 4 and len(page2["customers"]) == 10
    all_ids = []
    for page in (1, 2, 3, 4):
        resp = await client.get(base, params={"limit": "10", "page": str(page)},
                                headers=admin_headers)
        all_ids += [c["id"] for c in (await resp.json())["customers"]]
    assert len(all_ids) == len(set(all_ids)) == 31
    resp = await client.get(base, params={"limit": "10", "page": "2"}, headers=admin_headers)
    assert [c["id"] for c in (await resp.json())["customers"]] == all_ids[10:20]

    async def search(term: str) -> list[dict[str, Any]]:
        resp = await client.get(base, params={"search": term}, headers=admin_headers)
        assert resp.status == 200
        found: list[dict[str, Any]] = (await resp.json())["customers"]
        return found

    found = await search("priya")
    assert [c["customerName"] for c in found] == ["Priya Sharma"]
    assert found[0]["phone"] == "9123456789"
    assert found[0]["normalizedPhone"] == "+919123456789"
    for form_ in ("+91 91234 56789", "09123456789", "919123456789", "91234-56789"):
        assert [c["customerName"] for c in await search(form_)] == ["Priya Sharma"], form_
    assert await search("nobody") == []
    assert len(await search("customer 1")) == 10
    assert await search("100%") == []
    resp = await client.get(base, params={"status": "invited"}, headers=admin_headers)
    assert (await resp.json())["total"] == 0
    resp = await client.get(base, params={"status": "pending"}, headers=admin_headers)
    assert (await resp.json())["total"] == 31
    for bad in ({"status": "gone"}, {"page": "0"}, {"limit": "1000"}, {"page": "x"}):
        resp = await client.get(base, params=bad, headers=admin_headers)
        assert resp.status == 422, bad
        assert (await resp.json())["error"]["details"]["field"] == next(iter(bad))
    logs = await services.pool.fetch(
        "SELECT actor, salon_id, record_count, details FROM pii_access_log "
        "WHERE action = 'list_imported_customers' ORDER BY id")
    assert logs[0]["actor"] == "admin-1" and logs[0]["salon_id"] == salon
    assert logs[0]["record_count"] == 10
    assert any(r["details"]["search"] == "phone" for r in logs)
    assert all("9123456789" not in str(r["details"]) for r in logs)


# --- GDPR erase -------------------------------------------------------------------------


async def test_erase_customer_leaves_no_pii(
        client: Client, salon: str, admin_headers: dict[str, str], services: Services,
        tokens: TokenCodec, importer_running: None) -> None:
    pool = services.pool
    await import_file(client, salon, admin_headers, GOOD_CSV)
    # A later file repeats Priya's number (skipped), spells it another way on a row without a
    # name (rejected) and has a rejected row of someone else: only Priya's rows may go.
    again = await import_file(client, salon, admin_headers,
                              "Name,Phone\nPriya S,9876543210\n,+91 98765 43210\n,9000000001\n")
    assert again["errorCount"] == 3
    customers = (await (await client.get(f"/api/salons/{salon}/customers/imported",
                                         headers=admin_headers)).json())["customers"]
    ids = {c["customerName"]: c["id"] for c in customers}
    priya, rahul = ids["Priya Sharma"], ids["Rahul Verma"]
    campaign = await pool.fetchval(
        "INSERT INTO invitation_campaigns (salon_id, name, message_template, status, created_by,"
        " messages_sent, messages_delivered) VALUES ($1, 'c', 't', 'completed', 'a', 2, 2) "
        "RETURNING id", salon)
    await pool.execute(
        "INSERT INTO invitation_messages (campaign_id, imported_customer_id, salon_id, channel, "
        "twilio_message_sid, status) SELECT $1, c.id, $2, 'sms', 'SM' || md5(c.id), 'delivered' "
        "FROM unnest($3::varchar[]) AS c (id)", campaign, salon, [priya, rahul])
    await pool.execute("INSERT INTO opt_outs (phone_hash, sender, source) VALUES ($1, 'x', 'stop')",
                       services.cipher.phone_hash("+919876543210"))

    base = f"/api/salons/{salon}/customers/imported"
    other = await pool.fetchval("INSERT INTO salons (name) VALUES ('Other') RETURNING id")
    other_headers = bearer(tokens, "admin-2", "admin", [other])
    # Another salon's admin on this salon's path: 403; this id under their own salon: 404.
    resp = await client.delete(f"{base}/{priya}", headers=other_headers)
    assert resp.status == 403
    resp = await client.delete(f"/api/salons/{other}/customers/imported/{priya}",
                               headers=other_headers)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "customer_not_found"

    resp = await client.delete(f"{base}/{priya}", headers=admin_headers)
    assert resp.status == 204, await resp.text()
    assert await pool.fetchval("SELECT count(*) FROM imported_customers WHERE id = $1",
                               priya) == 0
    assert await pool.fetchval(
        "SELECT count(*) FROM invitation_messages WHERE imported_customer_id = $1", priya) == 0
    listed = (await (await client.get(base, headers=admin_headers)).json())["customers"]
    assert sorted(c["customerName"] for c in listed) == ["Anita Desai", "Rahul Verma"]
    # The campaign still counts Rahul's message, and its counters equal the recount.
    counters = await recount(pool, campaign)
    assert counters.equal and counters.stored["sent"] == 1, counters
    # Her import error rows are gone (status, error_log, errors.csv); the stranger's stays.
    status = await wait_done(client, salon, again["batchId"], admin_headers)
    assert [e["rowNumber"] for e in status["errors"]] == [4]
    log = await pool.fetchval("SELECT error_log FROM customer_import_batches WHERE id = $1",
                              again["batchId"])
    assert [e["rowNumber"] for e in log] == [4]
    resp = await client.get(URL(status["errorsUrl"]).path, headers=admin_headers)
    report = (await resp.read()).decode("utf-8-sig")
    assert "9000000001" in report and "98765" not in report
    # The opt-out stays: a record of the refusal, keyed by the number's HMAC.
    assert await pool.fetchval("SELECT count(*) FROM opt_outs") == 1
    logged = await pool.fetchrow(
        "SELECT actor, salon_id, record_count, details FROM pii_access_log "
        "WHERE action = 'erase'")
    assert (logged["actor"], logged["salon_id"], logged["record_count"]) == (
        "admin-1", salon, 1)
    assert logged["details"] == {"customerId": priya, "messages": 1, "campaigns": 1,
                                 "importErrorRows": 2}
    # Erasing again: nothing left to erase.
    resp = await client.delete(f"{base}/{priya}", headers=admin_headers)
    assert resp.status == 404
