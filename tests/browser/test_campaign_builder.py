"""The campaign builder in a real browser, by keyboard alone: write a message with a variable
inserted at the cursor, see the preview and the cost estimate follow, switch the schedule, send,
and watch the live page refresh itself until the campaign completes."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page

from tests.browser.live import Live
from tests.browser.support import axe_violations, screenshot, signed_in_context, watched_page
from tests.campaign_support import add_customers, add_offer, phone

MAX_TABS = 80


async def tab_to(page: Page, selector: str, *, back: bool = False) -> None:
    """Press Tab (or Shift+Tab) until the element `selector` has the focus."""
    for _ in range(MAX_TABS):
        if await page.evaluate("(s) => document.activeElement === document.querySelector(s)",
                               selector):
            return
        await page.keyboard.press("Shift+Tab" if back else "Tab")
    raise AssertionError(f"{selector} never took the focus")


async def test_build_and_send_a_campaign_with_the_keyboard(browser: Browser,
                                                           live: Live) -> None:
    await add_customers(live.pool, live.services.cipher, live.salon,
                        [phone(i) for i in range(5)])
    await add_offer(live.pool, live.salon)
    context = await signed_in_context(browser, live)
    page, watch = await watched_page(context)
    try:
        await page.goto("/admin/campaigns/new")
        await page.wait_for_load_state("networkidle")
        assert await axe_violations(page) == []
        await tab_to(page, "#f-name")
        await page.keyboard.type("Spring welcome")
        await page.keyboard.press("Tab")  # onto the checked channel (WhatsApp)
        await page.keyboard.press("ArrowDown")  # SMS
        assert await page.locator("input[name=channel][value=sms]").is_checked()
        await page.locator("#f-content-sid").wait_for(state="hidden")

        await tab_to(page, "#f-template")
        await page.keyboard.press("Control+End")
        await page.keyboard.type(" Code: ")
        await tab_to(page, "button[data-variable=offer_code]", back=True)
        await page.keyboard.press("Enter")
        template = page.locator("#f-template")
        assert await page.evaluate("document.activeElement.id") == "f-template"
        assert (await template.input_value()).endswith("Valid for {{expiry_days}} days. "
                                                       "Code: {{offer_code}}")
        preview = page.locator("#preview pre")
        await preview.filter(has_text="Code: WELCOME-").wait_for()
        estimate = page.locator("#estimate")
        await estimate.filter(has_text="Estimated cost").wait_for()
        assert "5 ×" in await estimate.inner_text()

        await tab_to(page, "input[name=schedule][value=now]")
        when = page.locator("#f-scheduled-for")
        await page.keyboard.press("ArrowDown")
        await when.wait_for(state="visible")
        await page.keyboard.press("ArrowUp")
        await when.wait_for(state="hidden")
        assert await axe_violations(page) == []
        await screenshot(page, "campaigns-new-filled")

        await tab_to(page, "button[value=send]")
        await page.keyboard.press("Enter")
        await page.wait_for_url(re.compile(r".*/admin/campaigns/[0-9a-f-]{36}$"))
        assert await page.locator("h1").inner_text() == "Spring welcome"
        # The page polls its figures and reloads itself when the campaign completes.
        await page.locator(".page-head .badge", has_text="Completed").wait_for(timeout=30_000)
        assert await page.locator("#live .tile:has(.label:text-is('Sent')) .value"
                                  ).inner_text() == "5"
        assert await axe_violations(page) == []
        await screenshot(page, "campaign-live")
        assert watch.problems() == []
    finally:
        await page.close()
        await context.close()
