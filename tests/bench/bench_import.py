"""Import benchmark: upload -> confirm -> completed through the HTTP API, and the floor.

    .venv/bin/python tests/bench/bench_import.py --rows 10000 --format csv
    .venv/bin/python tests/bench/bench_import.py --rows 10000 --shape google-contacts

Generates a realistic messy file (mixed phone formats, ~3 % invalid, ~2 % duplicates), runs it
through the real app and importer actor on an embedded PostgreSQL, and measures in the same run
the floor for the same file: parse + phone normalization + COPY of the rows, nothing else, into
a table like imported_customers (same indexes; the older figure, COPY into a bare temporary
table, is kept as floor_temp_seconds / ratio_temp). The timed region starts at the upload: the
file is generated before it. The last line printed is JSON: rows, seconds, upload_seconds (the
upload's own answer: parse, quality summary, stored batch), rows_per_s, peak_rss_mb,
floor_seconds, ratio, floor_temp_seconds, ratio_temp.

--shape google-contacts generates a Google Contacts export instead (every header Google writes,
36 columns; a third of the contacts with two numbers in one " ::: " cell, a sixth with a
landline as Phone 1 and the mobile as Phone 2). Its floor is the simplest correct reading of
that shape: split the two phone cells on " ::: ", take the first number that normalises to a
mobile, join first and last name, COPY.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import xlsxwriter
from aiohttp.test_utils import TestClient, TestServer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from onboardd.actors import importer  # noqa: E402
from onboardd.auth import TokenCodec  # noqa: E402
from onboardd.config import load  # noqa: E402
from onboardd.db.pool import create_pool  # noqa: E402
from onboardd.domain.phones import PhoneError, normalize_phone  # noqa: E402
from onboardd.importing.files import read_table  # noqa: E402
from onboardd.importing.mapping import guess_mapping  # noqa: E402
from onboardd.logging import configure  # noqa: E402
from onboardd.pii import cipher_from_config  # noqa: E402
from onboardd.runtime import Services  # noqa: E402
from onboardd.web.app import create_app  # noqa: E402
from tests.bench.support import bench_database  # noqa: E402
from tests.export_shapes import GOOGLE_HEADERS  # noqa: E402

# How often the client asks for the status (a busy client: every request is server work).
POLL_S = 0.005
SECRET = "bench-secret-" + "x" * 40
FIRST = ["Priya", "Rahul", "Anita", "Vikram", "Sneha", "Arjun", "Kavya", "Rohan", "Meera", "Dev"]
LAST = ["Sharma", "Verma", "Desai", "Iyer", "Nair", "Reddy", "Khan", "Patel", "Singh", "Das"]


def _phone_text(number: int, rng: random.Random) -> str | int:
    """One 10-digit mobile in one of the formats people type (or Excel stores)."""
    digits = str(number)
    style = rng.randrange(7)
    if style == 0:
        return digits
    if style == 1:
        return f"+91 {digits[:5]} {digits[5:]}"
    if style == 2:
        return f"0{digits}"
    if style == 3:
        return f"91{digits}"
    if style == 4:
        return f"{digits[:5]}-{digits[5:8]}-{digits[8:]}"
    if style == 5:
        return f"+91-{digits}"
    return int(digits)  # a numeric cell (xlsx) / plain digits (csv)


def _valid_mobile(rng: random.Random) -> int:
    """A random Indian mobile number that phonenumbers accepts (not every range is allocated)."""
    while True:
        number = 6_000_000_000 + rng.randrange(3_999_999_999)
        try:
            normalize_phone(str(number), "IN")
        except PhoneError:
            continue
        return number


def generate(rows: int, seed: int = 7) -> list[list[Any]]:
    """Header + rows: ~3 % invalid (phone, name or email), ~2 % duplicates of earlier rows."""
    rng = random.Random(seed)
    out: list[list[Any]] = [["Customer Name", "Mobile No.", "E-mail", "Notes"]]
    phones: list[int] = []
    for i in range(rows):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        number = _valid_mobile(rng)
        email = f"{name.split()[0].lower()}{i}@example.com" if rng.random() < 0.6 else ""
        roll = rng.random()
        phone: str | int
        if roll < 0.02:
            phone = "12345"
        elif roll < 0.025:
            name = ""
            phone = _phone_text(number, rng)
        elif roll < 0.03:
            email = "not-an-email"
            phone = _phone_text(number, rng)
        elif roll < 0.05 and phones:
            phone = _phone_text(rng.choice(phones), rng)
        else:
            phone = _phone_text(number, rng)
            phones.append(number)
        out.append([f"  {name} " if i % 17 == 0 else name, phone, email,
                    "vip" if i % 11 == 0 else ""])
    return out


def generate_google(rows: int, seed: int = 7) -> list[list[Any]]:
    """A Google Contacts export of `rows` contacts, ~3 % without a usable number."""
    rng = random.Random(seed)
    index = {header: i for i, header in enumerate(GOOGLE_HEADERS)}
    out: list[list[Any]] = [list(GOOGLE_HEADERS)]
    for i in range(rows):
        row: list[Any] = [""] * len(GOOGLE_HEADERS)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        row[index["First Name"]] = first.upper() if i % 13 == 0 else first
        row[index["Last Name"]] = last
        row[index["File As"]] = f"{first} {last}"
        row[index["Labels"]] = "* myContacts"
        if rng.random() < 0.5:
            row[index["E-mail 1 - Label"]] = "* Home"
            row[index["E-mail 1 - Value"]] = f"{first.lower()}{i}@example.com"
        mobile = str(_phone_text(_valid_mobile(rng), rng))
        landline = f"080 {2000 + rng.randrange(8000)} {1000 + rng.randrange(9000)}"
        roll = rng.random()
        if roll < 0.03:
            phones = [("Home", landline)]
        elif roll < 0.2:
            phones = [("Home", landline), ("Mobile", mobile)]
        elif roll < 0.53:
            phones = [("Mobile", f"{mobile} ::: {landline}")]
        else:
            phones = [("Mobile", mobile)]
        for n, (label, value) in enumerate(phones, start=1):
            row[index[f"Phone {n} - Label"]] = label
            row[index[f"Phone {n} - Value"]] = value
        row[index["Address 1 - City"]] = "Bengaluru"
        row[index["Address 1 - Country"]] = "India"
        out.append(row)
    return out


def to_csv(table: list[list[Any]]) -> bytes:
    lines = [",".join(f'"{c}"' if "," in str(c) else str(c) for c in row) for row in table]
    return ("\r\n".join(lines) + "\r\n").encode()


def to_xlsx(table: list[list[Any]]) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "constant_memory": True})
    sheet = book.add_worksheet("Customers")
    for r, row in enumerate(table):
        sheet.write_row(r, 0, row)
    book.close()
    return out.getvalue()


async def floor(pool: asyncpg.Pool, kind: str, data: bytes, max_rows: int, salon: str,
                *, equivalent: bool = True) -> float:
    """Parse + normalize + COPY, nothing else.

    With `equivalent` (the figure `ratio` is against) the rows are copied into a table shaped
    like imported_customers, with its defaults, constraints and indexes: any import has to
    store the rows there. Without it (reported as floor_temp_seconds) they go into a
    three-column temporary table, which has no index and writes no WAL."""
    started = time.perf_counter()
    table = read_table(kind, data, max_rows=max_rows)  # type: ignore[arg-type]
    if "Phone 1 - Value" in table.headers:
        records = _google_records(table.headers, table.rows)
    else:
        records = _plain_records(table.headers, table.rows)
    async with pool.acquire() as conn:
        if equivalent:
            await conn.execute("CREATE TABLE floor_copy (LIKE imported_customers INCLUDING ALL)")
            # One row per phone, as the unique (salon_id, phone_hash) constraint demands.
            unique = {e164: (name, phone) for name, phone, e164 in records}
            await conn.copy_records_to_table(
                "floor_copy", columns=["salon_id", "customer_name", "phone_enc",
                                       "normalized_phone_enc", "phone_hash"],
                records=[(salon, name, phone, e164, e164.encode())
                         for e164, (name, phone) in unique.items()])
        else:
            await conn.execute("CREATE TEMP TABLE floor_copy (name text, phone text, e164 text)")
            await conn.copy_records_to_table("floor_copy", records=records)
        elapsed = time.perf_counter() - started
        await conn.execute("DROP TABLE floor_copy")
    return elapsed


def _plain_records(headers: list[str], rows: list[list[str]]) -> list[tuple[str, str, str]]:
    mapping = guess_mapping(headers)
    assert mapping.name is not None and mapping.phone is not None
    records = []
    for cells in rows:
        try:
            e164 = normalize_phone(cells[mapping.phone], "IN")
        except PhoneError:
            continue
        records.append((cells[mapping.name], cells[mapping.phone], e164))
    return records


def _google_records(headers: list[str], rows: list[list[str]]) -> list[tuple[str, str, str]]:
    first, last = headers.index("First Name"), headers.index("Last Name")
    phones = [headers.index("Phone 1 - Value"), headers.index("Phone 2 - Value")]
    records = []
    for cells in rows:
        for number in (n for column in phones for n in cells[column].split(" ::: ") if n):
            try:
                e164 = normalize_phone(number, "IN")
            except PhoneError:
                continue
            records.append((f"{cells[first]} {cells[last]}", number, e164))
            break
    return records


async def end_to_end(client: TestClient[Any, Any], salon: str, headers: dict[str, str],
                     data: bytes, filename: str) -> tuple[float, float, dict[str, Any]]:
    """Upload -> confirm -> completed, through HTTP; the total and the upload's own time
    (parse, whole-file quality summary, storing the batch)."""
    started = time.perf_counter()
    body = aiohttp.FormData()
    body.add_field("file", data, filename=filename, content_type="application/octet-stream")
    resp = await client.post(f"/api/salons/{salon}/customers/import", data=body,
                             headers=headers)
    preview = await resp.json()
    assert resp.status == 201, preview
    upload_s = time.perf_counter() - started
    base = f"/api/salons/{salon}/customers/import/{preview['batchId']}"
    resp = await client.post(f"{base}/confirm", headers=headers)
    assert resp.status == 202, await resp.text()
    while True:
        resp = await client.get(f"{base}/status", headers=headers)
        status = await resp.json()
        if status["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(POLL_S)
    return time.perf_counter() - started, upload_s, status


async def bench(rows: int, fmt: str, shape: str) -> dict[str, Any]:
    configure("warning", "json")
    with tempfile.TemporaryDirectory() as tmp:
        async with bench_database() as url:
            cfg = load(None, {
                "ONBOARDD_DATABASE_URL": url, "ONBOARDD_PATHS_STATE_DIR": tmp,
                "ONBOARDD_AUTH_JWT_SECRET": SECRET,
                "ONBOARDD_PII_KEY": base64.b64encode(b"b" * 32).decode(),
                "ONBOARDD_IMPORT_MAX_ROWS": str(max(rows, 10_000)),
                "ONBOARDD_IMPORT_MAX_FILE_BYTES": str(max(rows * 120, 5 * 1024 * 1024)),
                "ONBOARDD_IMPORT_IMPORTS_PER_HOUR": "1000"})
            pool = await create_pool(cfg, url, min_size=2, max_size=5)
            tokens = TokenCodec("HS256", SECRET, SECRET)
            services = Services(cfg=cfg, pool=pool, cipher=cipher_from_config(cfg),
                                tokens=tokens)
            stopping = asyncio.Event()
            actor = asyncio.create_task(importer.run(services, stopping))
            try:
                async with TestClient(TestServer(create_app(services))) as client:
                    make = to_xlsx if fmt == "xlsx" else to_csv
                    filename = f"customers.{fmt}"

                    async def new_salon() -> tuple[str, dict[str, str]]:
                        salon = await pool.fetchval(
                            "INSERT INTO salons (name) VALUES ('Bench') RETURNING id")
                        token = tokens.encode("bench", "admin", [salon], 3600)
                        return salon, {"Authorization": f"Bearer {token}"}

                    warm_salon, warm_headers = await new_salon()
                    await end_to_end(client, warm_salon, warm_headers, make(generate(200, 1)),
                                     filename)
                    data = make(generate_google(rows) if shape == "google-contacts"
                                else generate(rows))
                    salon, headers = await new_salon()
                    seconds, upload_s, status = await end_to_end(client, salon, headers, data,
                                                                 filename)
                    floor_s = await floor(pool, fmt, data, max(rows, 10_000), salon)
                    floor_temp_s = await floor(pool, fmt, data, max(rows, 10_000), salon,
                                               equivalent=False)
            finally:
                stopping.set()
                await actor
                await pool.close()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows": rows, "format": fmt, "shape": shape, "file_bytes": len(data),
        "seconds": round(seconds, 3), "upload_seconds": round(upload_s, 3),
        "rows_per_s": round(rows / seconds), "peak_rss_mb": round(peak_kb / 1024, 1),
        "floor_seconds": round(floor_s, 3), "ratio": round(seconds / floor_s, 2),
        "floor_temp_seconds": round(floor_temp_s, 3),
        "ratio_temp": round(seconds / floor_temp_s, 2),
        "status": status["status"], "imported": status["imported"],
        "failed": status["failed"], "duplicates": status["duplicates"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    parser.add_argument("--shape", choices=("plain", "google-contacts"), default="plain")
    args = parser.parse_args()
    result = asyncio.run(bench(args.rows, args.format, args.shape))
    print(f"{result['rows']} {result['format']} {result['shape']} rows: "
          f"{result['seconds']} s end to end "
          f"({result['rows_per_s']} rows/s), floor {result['floor_seconds']} s, "
          f"ratio {result['ratio']}, peak RSS {result['peak_rss_mb']} MB")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
