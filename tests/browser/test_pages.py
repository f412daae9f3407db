"""Every admin page in a real browser, at desktop and phone widths: it answers 200 with one
<h1>, logs no console error and no CSP violation, has no serious or critical axe finding, and
leaves a screenshot under tests/browser/screenshots/ for people to look at.

A new page is covered by adding its address to PAGES.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext

from tests.browser.live import Live
from tests.browser.support import (
    WIDTHS,
    axe_violations,
    page_name,
    screenshot,
    settled,
    signed_in_context,
    watched_page,
)
from tests.campaign_support import add_customers, add_offer, phone

PAGES = [
    "/admin/dashboard",
    "/admin/customers",
    "/admin/import",
    "/admin/offers",
    "/admin/campaigns",
    "/admin/campaigns/new",
    "/admin/settings",
]


@pytest.fixture(scope="module")
async def shown(live_module: Live) -> Live:
    """The module's live app with something to show: customers and a welcome offer."""
    await add_customers(live_module.pool, live_module.services.cipher, live_module.salon,
                        [phone(i) for i in range(12)])
    await add_offer(live_module.pool, live_module.salon)
    return live_module


@pytest.fixture(scope="module")
async def signed_in(browser: Browser, shown: Live) -> AsyncIterator[dict[str, BrowserContext]]:
    """One signed-in profile per width, shared by the module's tests."""
    contexts = {width: await signed_in_context(browser, shown, width) for width in WIDTHS}
    try:
        yield contexts
    finally:
        for context in contexts.values():
            await context.close()


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("path", PAGES)
async def test_the_page_is_whole_clean_and_accessible(
        signed_in: dict[str, BrowserContext], path: str, width: str) -> None:
    page, watch = await watched_page(signed_in[width])
    try:
        response = await page.goto(path)
        assert response is not None
        assert response.status == 200, f"{path}: {response.status}"
        await settled(page)
        assert await page.locator("h1").count() == 1
        assert (await page.locator("h1").inner_text()).strip()
        assert await axe_violations(page) == []
        await screenshot(page, page_name(path))
        assert watch.problems() == []
    finally:
        await page.close()
