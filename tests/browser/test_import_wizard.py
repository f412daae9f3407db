"""The import wizard in a real browser: a file dropped on the drop zone, a column changed and
the import confirmed by keyboard alone, the progress followed to 100 %, the error report
downloaded; the file picker and the refusals on a 390-pixel phone. axe finds nothing serious
at any step, and nothing breaks the CSP."""

from __future__ import annotations

import csv
import io

from playwright.async_api import Browser, Page

from tests.browser.live import Live
from tests.browser.support import axe_violations, screenshot, signed_in_context, watched_page
from tests.campaign_support import add_customers
from tests.web.messy_import import EXISTING, MESSY_CSV

MAX_TABS = 80

_DROP = """([selector, name, text]) => {
  const zone = document.querySelector(selector);
  const data = new DataTransfer();
  data.items.add(new File([text], name, {type: "text/csv"}));
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: data}));
  }
}"""


async def tab_to(page: Page, selector: str) -> None:
    """Press Tab until the element `selector` has the focus."""
    for _ in range(MAX_TABS):
        if await page.evaluate("(s) => document.activeElement === document.querySelector(s)",
                               selector):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never took the focus")


async def test_drop_fix_a_column_confirm_and_download_by_keyboard(browser: Browser,
                                                                  live: Live) -> None:
    await add_customers(live.pool, live.services.cipher, live.salon, EXISTING)
    context = await signed_in_context(browser, live)
    page, watch = await watched_page(context)
    try:
        await page.goto("/admin/import")
        await page.wait_for_load_state("networkidle")
        assert await axe_violations(page) == []
        await screenshot(page, "import")
        await page.evaluate(_DROP, [".dropzone", "messy.csv", MESSY_CSV])
        heading = page.locator("h2", has_text="Check the columns")
        await heading.wait_for()
        assert await page.evaluate("document.activeElement.id") == "step-title"
        assert "/admin/import/" in page.url
        results = page.locator("#preview-results")
        assert "5 of 13 rows will be imported." in await results.inner_text()
        assert await page.locator("table.preview-table tbody tr").count() == 10
        assert await axe_violations(page) == []
        await screenshot(page, "import-preview")

        # Unmap the email column by keyboard: the preview follows, the focus stays put.
        await tab_to(page, "#map-email")
        await page.keyboard.press("Home")  # "— not in this file —"
        await results.filter(has_text="6 of 13 rows will be imported.").wait_for()
        assert await page.evaluate("document.activeElement.id") == "map-email"
        assert "Preview updated" in await page.locator("#mapping-status").inner_text()

        await tab_to(page, "button[formaction$='/confirm']")
        await page.keyboard.press("Enter")
        summary = page.locator("h2", has_text="Import finished")
        await summary.wait_for(timeout=30_000)
        assert await page.locator("progress").get_attribute("value") == "100"
        assert "100 %" in await page.locator(".progress-text").inner_text()
        assert await axe_violations(page) == []
        await screenshot(page, "import-summary")

        await tab_to(page, "a[href$='/errors.csv']")
        async with page.expect_download() as download_info:
            await page.keyboard.press("Enter")
        download = await download_info.value
        path = await download.path()
        rows = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"))))
        assert [row[0] for row in rows[1:]] == ["6", "7", "8", "9", "10", "11", "13"]
        assert watch.problems() == []
    finally:
        await context.close()


async def test_picker_and_refusals_on_a_phone(browser: Browser, live: Live) -> None:
    context = await signed_in_context(browser, live, "phone")
    page, watch = await watched_page(context)
    try:
        await page.goto("/admin/import")
        width = await page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= 390
        # Refused in the browser before it is sent: the wrong kind of file.
        await page.set_input_files("#import-file", files=[
            {"name": "notes.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4"}])
        await page.get_by_role("button", name="Upload and preview").click()
        problem = page.locator("#upload-problem")
        await problem.filter(has_text="Files of type '.pdf' are not supported").wait_for()
        assert await page.locator("#import-file").get_attribute("aria-invalid") == "true"
        # Refused by the server: no phone column.
        await page.set_input_files("#import-file", files=[
            {"name": "list.csv", "mimeType": "text/csv", "buffer": b"Name,Notes\nPriya,vip\n"}])
        await page.get_by_role("button", name="Upload and preview").click()
        await problem.filter(has_text="No column of this file looks like a phone").wait_for()
        assert await axe_violations(page) == []
        await screenshot(page, "import-refused")
        await page.set_input_files("#import-file", files=[
            {"name": "messy.csv", "mimeType": "text/csv", "buffer": MESSY_CSV.encode()}])
        await page.get_by_role("button", name="Upload and preview").click()
        await page.locator("h2", has_text="Check the columns").wait_for()
        assert await page.evaluate("document.scrollingElement.scrollWidth") <= 390
        assert await axe_violations(page) == []
        await screenshot(page, "import-preview")
        assert [p for p in watch.problems() if "422" not in p] == []
    finally:
        await context.close()
