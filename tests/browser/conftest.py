"""Fixtures of the browser tests: one Debian Chromium per session driven through playwright's
async API in the session's event loop (the sync API deadlocks against a server in that loop),
and a live onboardd it can reach.

With CI=true a missing browser fails the run; elsewhere those tests are skipped, saying why.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright

from tests.browser.live import Live, live_app
from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, new_context


def _no_browser(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI never skips the browser tests (.ci/run installs Debian's "
                    "chromium with apt-get)", pytrace=False)
    pytest.skip(f"{reason}; install Debian's chromium (apt-get install chromium) to run the "
                "browser tests")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, launched once for the whole session."""
    if not os.access(CHROMIUM, os.X_OK):
        _no_browser(f"no Chromium at {CHROMIUM}")
    async with async_playwright() as playwright:
        try:
            launched = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=30_000)
        except Exception as exc:
            _no_browser(f"Chromium at {CHROMIUM} did not start: {exc}")
            raise
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def live(pg_uri: str, template_db: str, tmp_path: Path) -> AsyncIterator[Live]:
    """A live onboardd of this test alone (fresh database, actors, simulator)."""
    async with live_app(pg_uri, template_db, tmp_path / "state") as app:
        yield app


@pytest.fixture(scope="module")
async def live_module(pg_uri: str, template_db: str,
                      tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    """A live onboardd shared by the tests of one module (for tests that only look)."""
    async with live_app(pg_uri, template_db, tmp_path_factory.mktemp("live") / "state") as app:
        yield app


@pytest.fixture
async def context(browser: Browser, live: Live) -> AsyncIterator[BrowserContext]:
    """A fresh desktop profile (no session) on the test's live app."""
    ctx = await new_context(browser, live.base_url)
    try:
        yield ctx
    finally:
        await ctx.close()

