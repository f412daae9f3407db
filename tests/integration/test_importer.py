"""The importer actor on the real database: chunks, exact resume after a crash or a stop,
competing importers, unusable batches, preview expiry, the CLI, and a 10k-row file."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import xlsxwriter

from onboardd.actors import importer
from onboardd.auth import TokenCodec
from onboardd.config import Config
from onboardd.db import imports as db
from onboardd.db.pool import create_pool
from onboardd.jobs import imports as import_jobs
from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from onboardd.services import imports as service
from tests.conftest import daemon_env

ROOT = Path(__file__).resolve().parents[2]


def messy_csv(rows: int, *, seed_existing: int = 0) -> tuple[str, dict[str, int]]:
    """A file with ~3 % invalid rows and ~2 % in-file duplicates, and its expected counters
    (the first `seed_existing` phones are expected to exist already)."""
    lines = ["Name,Phone,Email"]
    imported = failed = duplicates = 0
    for i in range(rows):
        if i % 33 == 7:
            lines.append(f"Bad {i},12345,")
            failed += 1
        elif i % 50 == 9 and i > 9:
            earlier = i - 2 if (i - 1) % 33 == 7 else i - 1  # a valid earlier row's phone
            lines.append(f"Dup {i},{7000000000 + earlier},")
            duplicates += 1
        elif i < seed_existing:
            lines.append(f"Old {i},{7000000000 + i},")
            duplicates += 1
        else:
            lines.append(f"Customer {i},+91 {7000000000 + i},c{i}@example.com")
            imported += 1
    return "\n".join(lines) + "\n", {"imported": imported, "failed": failed,
                                     "duplicates": duplicates}


async def make_services(cfg: Config, db_url: str, cipher: PiiCipher, tokens: TokenCodec
                        ) -> Services:
    pool = await create_pool(cfg, db_url, min_size=1, max_size=5)
    return Services(cfg=cfg, pool=pool, cipher=cipher, tokens=tokens)


@pytest.fixture
async def small_chunks(make_config: Callable[..., Config], db_url: str, cipher: PiiCipher,
                       tokens: TokenCodec) -> AsyncIterator[Services]:
    """Services whose importer works in chunks of 10 rows."""
    svc = await make_services(make_config(import_chunk_rows="10"), db_url, cipher, tokens)
    try:
        yield svc
    finally:
        await svc.pool.close()


async def stage(svc: Services, salon: str, text: str | bytes, name: str = "c.csv") -> str:
    """Upload and confirm a file; returns the batch id (nothing processed yet)."""
    data = text.encode() if isinstance(text, str) else text
    preview = await service.create_batch(svc, salon_id=salon, user="admin-1", file_name=name,
                                         data=data, requested=None)
    await service.confirm_batch(svc, salon_id=salon, batch_id=preview.batch_id,
                                requested=None, rate_limited=False)
    return preview.batch_id


async def run_until_done(svc: Services, batch: str, workers: int = 1) -> db.BatchStatus:
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(importer.run(svc, stopping)) for _ in range(workers)]
    try:
        for _ in range(1000):
            state = await db.batch_status(svc.pool, batch, await salon_of(svc, batch))
            assert state is not None
            if state.status in ("completed", "failed"):
                return state
            await asyncio.sleep(0.02)
        raise AssertionError("batch did not finish")
    finally:
        stopping.set()
        await asyncio.gather(*tasks)


async def salon_of(svc: Services, batch: str) -> str:
    value: str = await svc.pool.fetchval(
        "SELECT salon_id FROM customer_import_batches WHERE id = $1", batch)
    return value


async def assert_exact(svc: Services, state: db.BatchStatus, expected: dict[str, int],
                       rows: int) -> None:
    assert state.status == "completed"
    assert (state.successful_imports, state.failed_imports, state.duplicate_skipped) == (
        expected["imported"], expected["failed"], expected["duplicates"])
    assert state.processed == state.total_records == rows
    assert state.error_count == expected["failed"] + expected["duplicates"]
    stored = await svc.pool.fetch(
        "SELECT source_row FROM imported_customers WHERE import_batch_id = $1", state.id)
    numbers = [r["source_row"] for r in stored]
    assert len(numbers) == len(set(numbers)) == expected["imported"]
    errors = [r["row_number"] for r in await svc.pool.fetch(
        "SELECT row_number FROM import_errors WHERE batch_id = $1 ORDER BY row_number",
        state.id)]
    # Every row is accounted for exactly once: imported or in the error table ...
    assert sorted(numbers + errors) == list(range(2, rows + 2))
    # ... and the batch's error_log shows the first 100 of those errors.
    logged = await svc.pool.fetchval(
        "SELECT jsonb_agg(e->'rowNumber') FROM customer_import_batches, "
        "jsonb_array_elements(error_log) e WHERE id = $1", state.id)
    assert list(logged or []) == errors[:100]
    assert await svc.pool.fetchval(
        "SELECT file_data IS NULL AND claimed_until IS NULL FROM customer_import_batches "
        "WHERE id = $1", state.id)


async def test_chunks_count_exactly(small_chunks: Services, salon: str) -> None:
    text, expected = messy_csv(237)
    batch = await stage(small_chunks, salon, text)
    state = await run_until_done(small_chunks, batch)
    await assert_exact(small_chunks, state, expected, 237)


async def test_existing_customers_are_duplicates(small_chunks: Services, salon: str) -> None:
    await run_until_done(small_chunks, await stage(
        small_chunks, salon, "Name,Phone\n" + "".join(f"P{i},{7000000000 + i}\n"
                                                      for i in range(5))))
    text, expected = messy_csv(60, seed_existing=5)
    state = await run_until_done(small_chunks, await stage(small_chunks, salon, text))
    await assert_exact(small_chunks, state, expected, 60)


async def test_hard_cancel_mid_batch_resumes_exactly(small_chunks: Services, salon: str) -> None:
    """Cancel the actor after the first chunk commits (its lease stays, as after a crash);
    once the lease runs out another importer resumes at `processed`."""
    text, expected = messy_csv(300)
    batch = await stage(small_chunks, salon, text)
    stopping = asyncio.Event()
    task = asyncio.create_task(importer.run(small_chunks, stopping))
    for _ in range(500):
        processed = await small_chunks.pool.fetchval(
            "SELECT processed FROM customer_import_batches WHERE id = $1", batch)
        if processed:
            break
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The chunk in flight was shielded: let it commit or roll back before looking.
    while small_chunks.pool.get_size() != small_chunks.pool.get_idle_size():
        await asyncio.sleep(0.01)
    row = await small_chunks.pool.fetchrow(
        "SELECT processed, status, claimed_until > now() AS held FROM customer_import_batches "
        "WHERE id = $1", batch)
    assert row["status"] == "processing" and row["held"]
    assert 0 < row["processed"] < 300
    # A second importer must not touch the batch while the lease holds ...
    assert await db.claim_batch(small_chunks.pool, 60, None) is None
    # ... and resumes it once the lease ran out.
    await small_chunks.pool.execute(
        "UPDATE customer_import_batches SET claimed_until = now() - interval '1 second' "
        "WHERE id = $1", batch)
    state = await run_until_done(small_chunks, batch)
    await assert_exact(small_chunks, state, expected, 300)


async def test_stop_hands_the_batch_back(small_chunks: Services, salon: str) -> None:
    text, expected = messy_csv(120)
    batch = await stage(small_chunks, salon, text)
    claimed = await db.claim_batch(small_chunks.pool, importer.LEASE_S, None)
    assert claimed is not None
    stopping = asyncio.Event()

    def stop_after_first(done: int, _total: int) -> None:
        stopping.set()

    outcome = await importer.process_batch(small_chunks, claimed, stopping, stop_after_first)
    assert outcome == "released"
    row = await small_chunks.pool.fetchrow(
        "SELECT processed, claimed_until FROM customer_import_batches WHERE id = $1", batch)
    assert row["processed"] == 10 and row["claimed_until"] is None
    state = await run_until_done(small_chunks, batch)
    await assert_exact(small_chunks, state, expected, 120)


async def test_stale_claim_loses_to_the_new_holder(small_chunks: Services, salon: str) -> None:
    text, expected = messy_csv(40)
    batch = await stage(small_chunks, salon, text)
    stale = await db.claim_batch(small_chunks.pool, importer.LEASE_S, None)
    assert stale is not None
    # The stale holder's snapshot says processed=0; someone else has moved on since.
    await small_chunks.pool.execute(
        "UPDATE customer_import_batches SET claimed_until = NULL WHERE id = $1", batch)
    fresh = await db.claim_batch(small_chunks.pool, importer.LEASE_S, None)
    assert fresh is not None
    assert await importer.process_batch(small_chunks, fresh, asyncio.Event()) == "completed"
    assert await importer.process_batch(small_chunks, stale, asyncio.Event()) == "lost"
    state = await db.batch_status(small_chunks.pool, batch, salon)
    assert state is not None
    await assert_exact(small_chunks, state, expected, 40)


async def test_competing_importers_import_every_batch_once(small_chunks: Services,
                                                          salon: str) -> None:
    files = [messy_csv(80) for _ in range(3)]
    # Same phones in all three files: the first batch imports them, the others skip them.
    batches = [await stage(small_chunks, salon, text) for text, _ in files]
    await run_until_done(small_chunks, batches[-1], workers=3)
    for batch in batches:
        state = await run_until_done(small_chunks, batch)
        assert state.status == "completed"
        assert (state.successful_imports + state.failed_imports + state.duplicate_skipped
                == state.total_records == 80)
    total = await small_chunks.pool.fetchval("SELECT sum(successful_imports) FROM "
                                             "customer_import_batches")
    assert total == files[0][1]["imported"]
    assert await small_chunks.pool.fetchval("SELECT count(*) FROM imported_customers") == total


async def test_unreadable_stored_file_fails_the_batch(services: Services, salon: str) -> None:
    batch = await stage(services, salon, "Name,Phone\nA,9876543210\n")
    await services.pool.execute(
        "UPDATE customer_import_batches SET file_kind = 'xlsx', file_data = 'garbage' "
        "WHERE id = $1", batch)
    state = await run_until_done(services, batch)
    assert state.status == "failed"
    assert state.failure_reason and "damaged" in state.failure_reason
    assert state.completed_at is not None
    assert await services.pool.fetchval(
        "SELECT file_data FROM customer_import_batches WHERE id = $1", batch) is None


async def test_nul_in_an_excel_cell_is_dropped(services: Services, salon: str) -> None:
    """Excel keeps a NUL (as _x0000_); PostgreSQL text cannot hold one: the cell is cleaned."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = workbook.add_worksheet()
    sheet.write_row(0, 0, ["Name", "Phone", "Email"])
    sheet.write_row(1, 0, ["Ra\x00vi", "98765\x0043210", "r\x00@example.com"])
    sheet.write_row(2, 0, ["Asha\x00", 9876543211, None])
    workbook.close()
    batch = await stage(services, salon, buffer.getvalue(), "c.xlsx")
    state = await run_until_done(services, batch)
    assert (state.status, state.successful_imports, state.failed_imports) == ("completed", 2, 0)
    rows = await services.pool.fetch(
        "SELECT customer_name, normalized_phone_enc, email_enc FROM imported_customers "
        "ORDER BY source_row")
    assert [r["customer_name"] for r in rows] == ["Ravi", "Asha"]
    assert services.cipher.decrypt(rows[0]["normalized_phone_enc"], "phone") == "+919876543210"
    assert services.cipher.decrypt(rows[0]["email_enc"], "email") == "r@example.com"


async def test_rows_the_database_rejects_fail_the_batch_not_the_actor(small_chunks: Services,
                                                                      salon: str) -> None:
    """A deterministic database error (here a CHECK-style exception raised by a trigger on one
    name) fails that batch with a reason naming its rows; the actor goes on to the next."""
    await small_chunks.pool.execute("""
        CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.customer_name = 'Poison' THEN
                RAISE EXCEPTION 'poisoned name for 9876543219' USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER reject_poison BEFORE INSERT ON imported_customers
            FOR EACH ROW EXECUTE FUNCTION reject_poison();
    """)
    lines = ["Name,Phone"] + [f"{'Poison' if i == 13 else f'P{i}'},{7000000000 + i}"
                              for i in range(25)]
    bad = await stage(small_chunks, salon, "\n".join(lines) + "\n")
    good = await stage(small_chunks, salon, "Name,Phone\nGood,7100000000\n")
    stopping = asyncio.Event()
    actor = asyncio.create_task(importer.run(small_chunks, stopping))
    try:
        for _ in range(500):
            done = await small_chunks.pool.fetchval(
                "SELECT count(*) FROM customer_import_batches WHERE status IN "
                "('completed', 'failed')")
            if done == 2 or actor.done():
                break
            await asyncio.sleep(0.02)
        assert not actor.done(), "the importer actor stopped"
        failed = await db.batch_status(small_chunks.pool, bad, salon)
        assert failed is not None and failed.status == "failed"
        assert failed.processed == 10  # the first chunk committed; the second rolled back
        assert failed.failure_reason is not None
        assert "rows 12-21" in failed.failure_reason
        assert "CheckViolationError" in failed.failure_reason
        assert "poisoned name" in failed.failure_reason
        assert "9876543219" not in failed.failure_reason  # database texts are masked
        assert await small_chunks.pool.fetchval(
            "SELECT claimed_until IS NULL AND file_data IS NULL FROM customer_import_batches "
            "WHERE id = $1", bad)
        completed = await db.batch_status(small_chunks.pool, good, salon)
        assert completed is not None
        assert (completed.status, completed.successful_imports) == ("completed", 1)
    finally:
        stopping.set()
        await actor


async def test_previews_expire(services: Services, salon: str) -> None:
    preview = await service.create_batch(services, salon_id=salon, user="a", file_name="c.csv",
                                         data=b"Name,Phone\nA,9876543210\n", requested=None)
    await import_jobs.expire_previews(services)
    assert await services.pool.fetchval(
        "SELECT status FROM customer_import_batches WHERE id = $1", preview.batch_id) == "preview"
    await services.pool.execute(
        "UPDATE customer_import_batches SET created_at = now() - interval '2 days'")
    await import_jobs.expire_previews(services)
    row = await services.pool.fetchrow(
        "SELECT status, file_data FROM customer_import_batches WHERE id = $1", preview.batch_id)
    assert row["status"] == "failed" and row["file_data"] is None


async def test_ten_thousand_rows(services: Services, salon: str) -> None:
    text, expected = messy_csv(10_000)
    batch = await stage(services, salon, text)
    state = await run_until_done(services, batch)
    await assert_exact(services, state, expected, 10_000)


async def test_more_than_100_errors_live_in_the_side_table(small_chunks: Services,
                                                          salon: str) -> None:
    """import_errors keeps every error (rejected rows and phones the salon already had, across
    chunks); error_log and the status show the first 100; errors.csv lists them all."""
    await run_until_done(small_chunks, await stage(
        small_chunks, salon, "Name,Phone\n" + "".join(f"Old {i},{7000000000 + i}\n"
                                                      for i in range(60))))
    lines = ["Name,Phone"]
    for i in range(200):
        # Even rows: phones the salon has (i < 120) or new ones; odd rows: invalid phones.
        lines.append(f"Row {i},{7000000000 + i // 2 if i < 120 else 7100000000 + i}"
                     if i % 2 == 0 else f"Bad {i},12345")
    batch = await stage(small_chunks, salon, "\n".join(lines) + "\n")
    state = await run_until_done(small_chunks, batch)
    await assert_exact(small_chunks, state, {"imported": 40, "failed": 100, "duplicates": 60},
                       200)
    assert [e["rowNumber"] for e in state.first_errors] == list(range(2, 102))
    assert state.first_errors[0]["errors"] == ["Duplicate phone number"]
    assert state.first_errors[1]["errors"] == ["Invalid phone number format"]
    text, count = await service.error_report(small_chunks, salon_id=salon, batch_id=batch,
                                             actor="admin-1", request_id="r-1")
    assert count == 160
    report = list(csv.reader(io.StringIO(text)))
    assert report[0] == ["Row", "Name", "Phone", "Errors"]
    assert report[1] == ["2", "Row 0", "7000000000", "Duplicate phone number"]
    assert report[2] == ["3", "Bad 1", "12345", "Invalid phone number format"]
    assert len(report) == 161


def _cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "onboardd", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_cli_import_and_kill_mid_batch(db_url: str, tmp_path: Path, services: Services,
                                             salon: str) -> None:
    """`onboardd import` runs the pipeline; SIGKILL mid-batch, then the actor resumes."""
    env = {**os.environ, **daemon_env(db_url, tmp_path / "state",
                                      ONBOARDD_IMPORT_CHUNK_ROWS="5",
                                      ONBOARDD_LOG_LEVEL="warning")}
    small = tmp_path / "small.csv"
    small.write_text("Name,Phone\nA,9876543210\nB,12345\n")
    proc = _cli(env, "import", str(small), "--salon", salon, "--yes")
    out, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0, err
    assert "imported 1, failed 1, duplicates 0 of 2" in out
    assert "row 3: Invalid phone number format" in err
    # Before it asks, the whole file's quality, in the admin UI's words.
    assert "1 of 2 rows will be imported.\n  1 row has an invalid phone number.\n" in err
    assert "Consent: no consent column" in err
    text, expected = messy_csv(3000)
    big = tmp_path / "big.csv"
    big.write_text(text)
    proc = _cli(env, "import", str(big), "--salon", salon, "--yes")
    try:
        for _ in range(3000):
            processed = await services.pool.fetchval(
                "SELECT processed FROM customer_import_batches WHERE file_name = 'big.csv'")
            if processed:
                break
            await asyncio.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        await asyncio.to_thread(proc.communicate, timeout=30)
    row = await services.pool.fetchrow(
        "SELECT id, processed, status FROM customer_import_batches WHERE file_name = 'big.csv'")
    assert row["status"] == "processing" and 0 < row["processed"] < 3000
    await services.pool.execute(
        "UPDATE customer_import_batches SET claimed_until = NULL WHERE id = $1", row["id"])
    state = await run_until_done(services, row["id"])
    await assert_exact(services, state, expected, 3000)


async def test_cli_import_names_the_export_and_its_opt_outs(db_url: str, tmp_path: Path,
                                                            salon: str) -> None:
    """An operator importing a salon-software export from the shell sees what it was
    recognised as, how the phone columns are tried, and who was imported opted out."""
    from tests.export_shapes import fresha

    export = fresha()
    env = {**os.environ, **daemon_env(db_url, tmp_path / "state", ONBOARDD_LOG_LEVEL="warning")}
    path = tmp_path / export.file_name
    path.write_bytes(export.data)
    proc = _cli(env, "import", str(path), "--salon", salon, "--yes")
    out, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0, err
    assert f"{export.file_name}: {len(export.rows)} rows (csv, Fresha)" in err
    assert "phone <- Mobile Number then Telephone" in err
    assert "consent <- Blocked and Accepts Marketing and Accepts SMS Marketing" in err
    assert "Karan Mehta +919876543215  [ok, opted out: blocked]" in err
    assert (f"imported {len(export.imported)}, failed 1, duplicates 0 of {len(export.rows)}; "
            f"{len(export.opted_out)} imported opted out") in out
