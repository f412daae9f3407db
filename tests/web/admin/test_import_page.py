"""The import wizard on the real app and database: upload (htmx multipart), the preview with its
column dropdowns and the whole file's quality summary, re-preview, confirm, the progress to
100 %, the summary and its error report, the sample file, and every refusal in words."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from bs4 import BeautifulSoup

from onboardd.actors import importer
from onboardd.auth import TokenCodec
from onboardd.runtime import Services
from tests.campaign_support import add_customers
from tests.conftest import AppFor
from tests.web.admin.conftest import Admin, sign_in, soup, words
from tests.web.messy_import import EXISTING, MESSY_CSV
from tests.web.test_imports_api import form

# Every dropdown as the preview fills it for MESSY_CSV.
MESSY_FORM = {"name": "col:Name", "firstName": "", "middleName": "", "lastName": "",
              "organisation": "col:Company", "email": "col:Email", "phone": "col:Mobile",
              "phone2": "", "consent": "col:Accepts Marketing"}


async def upload(admin: Admin, data: bytes | str, filename: str = "customers.csv",
                 expect: int = 200) -> tuple[ClientResponse, BeautifulSoup]:
    response = await admin.post("/admin/import", data=form(data, filename))
    html = await response.text()
    assert response.status == expect, html[:3000]
    return response, soup(html)


def batch_of(response: ClientResponse) -> str:
    return response.headers["HX-Push-Url"].rsplit("/", 1)[1]


def selected(page: BeautifulSoup, name: str) -> str:
    select = page.find("select", attrs={"name": name})
    assert select is not None, name
    option = select.find("option", selected=True)
    return str(option["value"]) if option is not None else ""


async def test_upload_step_explains_what_to_do(admin: Admin) -> None:
    page = await admin.page("/admin/import")
    assert words(page.find("h1")) == "Import customers"
    form = page.find("form", id="upload-form")
    assert form["hx-post"] == "/admin/import"
    assert form["hx-encoding"] == "multipart/form-data"
    assert form["x-data"] == "importDrop"
    field = form.find("input", attrs={"type": "file"})
    assert field["name"] == "file" and field.has_attr("required")
    label = page.find("label", attrs={"for": field["id"]})
    assert label is not None and "Choose your customer file" in words(label)
    assert words(form.find("button")) == "Upload and preview"
    assert page.find("a", href="/admin/import/sample.csv") is not None
    text = words(page)
    assert "Drag and drop your customer file here" in text
    assert "Nothing is imported until you have checked the preview" in text
    assert page.find("li", attrs={"aria-current": "step"}).get_text() == "Upload your file"
    scripts = [s["src"] for s in page.find_all("script")]
    assert scripts.index(next(s for s in scripts if s.endswith("admin/import.js"))) < (
        scripts.index(next(s for s in scripts if "alpine" in s)))


async def test_messy_upload_previews_ten_rows_and_the_true_quality(
        admin: Admin, services: Services, salon: str) -> None:
    await add_customers(services.pool, services.cipher, salon, EXISTING)
    response, page = await upload(admin, MESSY_CSV)
    assert response.headers["HX-Push-Url"].startswith("/admin/import/")
    assert page.find("h1") is None  # a fragment for #import-step
    assert words(page.find("h2")) == "Check the columns"
    rows = page.select("table.preview-table tbody tr")
    assert len(rows) == 10
    cells = {words(r.find("td")): [words(td) for td in r.find_all("td")] for r in rows}
    assert cells["2"][1] == "Valid" and cells["2"][3] == "********3210"
    assert cells["7"][1] == "Invalid"
    assert cells["7"][4] == "Phone number is a landline and cannot receive SMS or WhatsApp"
    assert cells["4"][4] == "Invalid email format"
    assert cells["6"][4] == "Name is required"
    assert cells["10"][4] == cells["11"][4] == "Duplicate phone number"
    assert cells["3"][4].startswith("Imported opted out (refused)")
    assert cells["5"][2] == "Glow Studio (organisation)"
    assert "9876543210" not in str(page)  # phones are masked
    text = words(page)
    for sentence in (
            "5 of 13 rows will be imported.",
            "1 row repeats a number found earlier in the file (the first one is kept).",
            "1 row is already one of your customers (skipped).",
            "1 row has a landline number, which cannot receive SMS or WhatsApp.",
            "2 rows have an invalid phone number.",
            "1 row has no phone number.",
            "1 row has no name (a name is required).",
            "1 row has an invalid email address.",
            "1 customer will be named after their organisation (no personal name).",
            "Consent (Accepts Marketing): 2 said yes, 1 said no (imported opted out, never "
            "invited), 2 left it blank. A blank consent counts as yes"):
        assert sentence in text, sentence
    assert "too long" not in text  # no such rows: no such line
    assert {name: selected(page, name) for name in MESSY_FORM} == MESSY_FORM
    form = page.find("form", id="mapping-form")
    batch = batch_of(response)
    assert form["hx-post"] == f"/admin/import/{batch}/preview"
    assert form["hx-trigger"] == "change"
    for select in form.find_all("select"):
        assert page.find("label", attrs={"for": select["id"]}) is not None
    assert "A customer list (no known export layout" in text


async def test_changing_a_dropdown_previews_again_and_is_kept(admin: Admin) -> None:
    response, _page = await upload(admin, MESSY_CSV)
    batch = batch_of(response)
    changed = await admin.post(f"/admin/import/{batch}/preview",
                               data={**MESSY_FORM, "email": ""})
    html = await changed.text()
    assert changed.status == 200, html
    part = soup(html)
    assert "7 of 13 rows will be imported." in words(part)  # row 4, and row 11 (no customers)
    assert "invalid email" not in words(part)
    rows = {words(r.find("td")): words(r.find_all("td")[4])
            for r in part.select("table.preview-table tbody tr")}
    assert rows["4"] == "Imported"
    status = part.find(id="mapping-status")
    assert status["hx-swap-oob"] == "innerHTML"
    assert "Preview updated. 7 of 13 rows will be imported." in words(status)
    assert part.find(id="err-email")["hx-swap-oob"] == "true"
    # The batch keeps the columns: reloading its page shows them, and so does the confirm.
    page = await admin.page(f"/admin/import/{batch}")
    assert selected(page, "email") == ""
    assert "7 of 13 rows will be imported." in words(page)


async def test_refused_columns_are_named_beside_their_dropdown(admin: Admin) -> None:
    response, _page = await upload(admin, MESSY_CSV)
    batch = batch_of(response)
    refused = await admin.post(f"/admin/import/{batch}/preview",
                               data={**MESSY_FORM, "name": "col:Mobile"})
    part = soup(await refused.text())
    assert refused.status == 422
    assert ("Column 'Mobile' is chosen for both name and phone"
            in words(part.find(id="err-phone")))
    assert "6 of 13 rows will be imported." in words(part)  # the last preview that worked
    assert "Those columns were not applied" in words(part.find(id="mapping-status"))
    refused = await admin.post(f"/admin/import/{batch}/preview",
                               data={**MESSY_FORM, "phone": ""})
    assert refused.status == 422
    assert "No phone number column was found" in words(soup(await refused.text()).find(
        id="err-phone"))
    # Without htmx: the whole page, the refused choice kept and marked.
    page = soup(await (await admin.post(f"/admin/import/{batch}/preview", htmx=False,
                                        data={**MESSY_FORM, "phone": ""})).text())
    select = page.find("select", attrs={"name": "phone"})
    assert select["aria-invalid"] == "true" and selected(page, "phone") == ""


async def test_confirm_follows_the_batch_to_100_and_offers_the_error_report(
        admin: Admin, services: Services, salon: str) -> None:
    await add_customers(services.pool, services.cipher, salon, EXISTING)
    response, _page = await upload(admin, MESSY_CSV)
    batch = batch_of(response)
    confirmed = await admin.post(f"/admin/import/{batch}/confirm", data=MESSY_FORM)
    page = soup(await confirmed.text())
    assert confirmed.status == 200
    assert words(page.find("h2")) == "Importing your customers"
    bar = page.find("progress")
    assert bar["value"] == "0" and bar["max"] == "100"
    live = page.find(id="import-announce")
    assert live["aria-live"] == "polite" and words(live) == "Imported about 0 %"
    poll = page.find(id="import-meter").find(attrs={"hx-get": True})
    assert (poll["hx-get"], poll["hx-trigger"]) == (f"/admin/import/{batch}/status?said=0",
                                                    "load delay:1s")
    # While the importer has not started: the meter alone, polling on, nothing new to say.
    meter = await admin.get(poll["hx-get"], htmx=True)
    part = soup(await meter.text())
    assert "HX-Retarget" not in meter.headers and part.find("progress")["value"] == "0"
    assert part.find(attrs={"hx-trigger": "load delay:1s"}) is not None
    assert part.find(id="import-announce") is None
    stopping = asyncio.Event()
    actor = asyncio.create_task(importer.run(services, stopping))
    try:
        for _ in range(500):
            polled = await admin.get(f"/admin/import/{batch}/status", htmx=True)
            if "HX-Retarget" in polled.headers:
                break
            await asyncio.sleep(0.02)
    finally:
        stopping.set()
        await actor
    assert polled.headers["HX-Retarget"] == "#import-step"
    done = soup(await polled.text())
    assert done.find("progress")["value"] == "100"
    assert "100 % · 13 of 13 rows" in words(done)
    assert done.find(attrs={"hx-trigger": True}) is None  # polling stops
    tiles = {words(t.find(class_="label")): words(t.find(class_="value"))
             for t in done.select(".tile")}
    assert tiles == {"Imported": "5", "Duplicates skipped": "2", "Rows with errors": "6",
                     "Existing customers opted out": "0"}
    link = done.find("a", href=f"/admin/import/{batch}/errors.csv")
    assert "Download the 8 rows that were not imported" in words(link)
    report = await admin.get(f"/admin/import/{batch}/errors.csv")
    assert report.status == 200
    assert report.headers["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO((await report.read()).decode("utf-8-sig"))))
    assert lines[0] == ["Row", "Name", "Mobile", "Email", "Accepts Marketing", "Company",
                        "Errors"]
    assert [line[0] for line in lines[1:]] == ["4", "6", "7", "8", "9", "10", "11", "13"]
    assert await services.pool.fetchval(
        "SELECT count(*) FROM pii_access_log WHERE action = 'import_error_report' "
        "AND actor = 'admin-1'") == 1
    # The batch's own address now shows the summary.
    assert words((await admin.page(f"/admin/import/{batch}")).find("h2")) == "Import finished"


async def test_the_progress_is_announced_in_10_percent_steps_not_every_second(
        admin: Admin, services: Services) -> None:
    """The bar is swapped every second outside the live region; the live region's sentence
    comes back (out of band) only when the 10 % step changes."""
    response, _page = await upload(admin, MESSY_CSV)
    batch = batch_of(response)
    page = soup(await (await admin.post(f"/admin/import/{batch}/confirm",
                                        data=MESSY_FORM)).text())
    live = page.find(id="import-announce")
    assert live["role"] == "status" and live["aria-live"] == "polite"
    assert live.find("progress") is None and live.find(attrs={"hx-get": True}) is None
    assert page.find("progress").find_parent(attrs={"aria-live": True}) is None
    assert page.find(id="import-meter").find_parent(attrs={"aria-live": True}) is None
    assert not page.find(id="import-live").has_attr("aria-live")  # the box, not announced
    # 7 of 13 rows done: 53 %, said as "about 50 %".
    await services.pool.execute(
        "UPDATE customer_import_batches SET processed = 7 WHERE id = $1", batch)
    status = f"/admin/import/{batch}/status"
    moved = soup(await (await admin.get(status + "?said=40", htmx=True)).text())
    assert moved.find("progress")["value"] == "53"
    said = moved.find(id="import-announce")
    assert said["hx-swap-oob"] == "innerHTML" and words(said) == "Imported about 50 %"
    assert moved.find(attrs={"hx-get": True})["hx-get"] == status + "?said=50"
    same = soup(await (await admin.get(status + "?said=50", htmx=True)).text())
    assert same.find("progress")["value"] == "53"
    assert same.find(id="import-announce") is None  # the same step: the live region is not touched


async def test_sample_file_downloads_and_imports_cleanly(
        admin: Admin, services: Services, importer_running: None) -> None:
    sample = await admin.get("/admin/import/sample.csv")
    assert sample.status == 200
    assert "attachment" in sample.headers["Content-Disposition"]
    data = await sample.read()
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["Name", "Mobile", "Email", "Accepts Marketing"]
    assert 3 <= len(rows) - 1 <= 5
    response, page = await upload(admin, data, "customers-sample.csv")
    assert "4 of 4 rows will be imported." in words(page)
    assert not page.select("tr.invalid")
    batch = batch_of(response)
    await admin.post(f"/admin/import/{batch}/confirm", data={})
    for _ in range(500):
        polled = await admin.get(f"/admin/import/{batch}/status", htmx=True)
        if "HX-Retarget" in polled.headers:
            break
        await asyncio.sleep(0.02)
    done = soup(await polled.text())
    assert done.find("a", href=f"/admin/import/{batch}/errors.csv") is None
    assert await services.pool.fetchval("SELECT count(*) FROM imported_customers") == 4


async def test_an_upload_without_the_csrf_token_is_refused(admin: Admin,
                                                           services: Services) -> None:
    response = await admin.post("/admin/import", data=form(MESSY_CSV), csrf=False)
    assert response.status == 403
    assert "{" not in await response.text()
    assert await services.pool.fetchval("SELECT count(*) FROM customer_import_batches") == 0


async def test_a_wrong_file_type_is_a_sentence_beside_the_drop_zone(admin: Admin) -> None:
    _response, page = await upload(admin, b"%PDF-1.4 not a list", "notes.pdf", expect=415)
    problem = page.find(id="upload-problem")
    assert words(problem) == ("Files of type '.pdf' are not supported. Upload a .csv, .xlsx "
                              "or .xls file.")
    assert problem["role"] == "alert"
    assert page.find("form", id="upload-form")["data-problem"] == words(problem)
    assert page.find("input", attrs={"type": "file"})["aria-invalid"] == "true"
    _response, page = await upload(admin, b"Name,Notes\nPriya,vip\n", expect=422)
    assert words(page.find(id="upload-problem")) == (
        "No column of this file looks like a phone number (columns found: 'Name', 'Notes'). "
        "Name the phone column 'Phone' or 'Mobile' and upload the file again.")


async def test_a_malformed_upload_is_a_sentence_beside_the_drop_zone(
        admin: Admin, services: Services) -> None:
    """A body cut short on the way: the reader's error becomes the upload step's sentence."""
    part = (b'--b0\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
            b"Content-Type: text/csv\r\n\r\nName,Phone\r\nPriya,9876543210\r\n")
    for htmx in (True, False):
        response = await admin.post("/admin/import", data=part, htmx=htmx, headers={
            "Content-Type": "multipart/form-data; boundary=b0"})
        page = soup(await response.text())
        assert response.status == 400
        assert words(page.find(id="upload-problem")) == (
            "The file did not arrive whole (the upload was cut off or garbled on the way). "
            "Choose the file and upload it again.")
        assert page.find("input", attrs={"type": "file"})["aria-invalid"] == "true"
    assert await services.pool.fetchval("SELECT count(*) FROM customer_import_batches") == 0


@contextlib.asynccontextmanager
async def _other_admin(app_for: AppFor, tokens: TokenCodec, salon: str, **limits: str
                       ) -> AsyncIterator[Admin]:
    """Signed in to another app on this database, with other [import] limits."""
    async with app_for(**limits) as (client, _svc):
        yield await sign_in(client, tokens.encode("admin-1", "admin", [salon], 3600))


async def test_a_file_too_large_is_a_sentence(app_for: AppFor, tokens: TokenCodec,
                                              salon: str) -> None:
    async with _other_admin(app_for, tokens, salon,
                                    import_max_file_bytes=str(1024 * 1024)) as admin:
        big = "Name,Phone\n" + "Priya Sharma,9876543210\n" * 60_000
        _response, page = await upload(admin, big, expect=413)
        assert words(page.find(id="upload-problem")) == (
            "This file is larger than the 1 MB limit. Split the customer list into smaller "
            "files and upload them one at a time.")
        assert page.find("form", id="upload-form")["data-max-bytes"] == str(1024 * 1024)


async def test_too_many_uploads_say_when_to_try_again(app_for: AppFor, tokens: TokenCodec,
                                                      salon: str) -> None:
    async with _other_admin(app_for, tokens, salon, import_uploads_per_hour="1") as admin:
        await upload(admin, MESSY_CSV)
        response, page = await upload(admin, MESSY_CSV, expect=429)
        assert int(response.headers["Retry-After"]) > 0
        text = words(page.find(id="upload-problem"))
        assert text.startswith("This salon has uploaded a customer file 1 time in the last "
                               "hour, the most allowed. Try again in ")
        assert "minutes (after " in text


async def test_too_many_confirms_are_a_sentence_beside_the_button(
        app_for: AppFor, tokens: TokenCodec, salon: str) -> None:
    async with _other_admin(app_for, tokens, salon, import_imports_per_hour="1") as admin:
        first, _page = await upload(admin, MESSY_CSV)
        second, _page = await upload(admin, MESSY_CSV)
        ok = await admin.post(f"/admin/import/{batch_of(first)}/confirm", data=MESSY_FORM)
        assert ok.status == 200
        refused = await admin.post(f"/admin/import/{batch_of(second)}/confirm",
                                   data=MESSY_FORM)
        assert refused.status == 429
        assert refused.headers["HX-Retarget"] == "#confirm-problem"
        text = words(soup(await refused.text()))
        assert text.startswith("This salon has confirmed an import 1 time in the last hour")
        assert "This preview stays here for 24 hours." in text


async def test_a_batch_that_no_longer_exists_says_so(admin: Admin, services: Services
                                                     ) -> None:
    page = await admin.page("/admin/import/no-such-batch", status=404)
    assert "This import no longer exists" in words(page.find(id="upload-problem"))
    response, _page = await upload(admin, MESSY_CSV)
    batch = batch_of(response)
    await services.pool.execute("UPDATE customer_import_batches SET status = 'failed', "
                                "file_data = NULL WHERE id = $1", batch)
    gone = await admin.post(f"/admin/import/{batch}/preview", data=MESSY_FORM)
    assert gone.status == 404 and gone.headers["HX-Retarget"] == "#import-step"
    assert "Upload the file again." in words(soup(await gone.text()).find(id="upload-problem"))
    confirm = await admin.post("/admin/import/no-such-batch/confirm", data=MESSY_FORM)
    assert confirm.status == 404
    assert "This import no longer exists" in words(soup(await confirm.text()))


async def test_the_wizard_is_the_salon_admins_own(admin: Admin, client: TestClient[Any, Any],
                                                  tokens: TokenCodec, services: Services
                                                  ) -> None:
    response, _page = await upload(admin, MESSY_CSV)
    batch = batch_of(response)
    other_salon = await services.pool.fetchval(
        "INSERT INTO salons (name) VALUES ('Other') RETURNING id")
    other = await sign_in(client, tokens.encode("admin-2", "admin", [other_salon], 3600))
    await other.page(f"/admin/import/{batch}", status=404)
    refused = await other.post(f"/admin/import/{batch}/confirm", data=MESSY_FORM)
    assert refused.status == 404
