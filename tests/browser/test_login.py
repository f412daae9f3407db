"""Signing in and out in a real browser: the printed link, the pasted token, logout, and the
login and error pages clean of console errors, CSP violations and serious axe findings."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Browser, BrowserContext, expect

from tests.browser.live import Live
from tests.browser.support import (
    axe_violations,
    new_context,
    screenshot,
    sign_in,
    signed_in_context,
    watched_page,
)

SESSION_COOKIE = "onboardd_admin"


async def test_the_printed_link_signs_in_and_leaves_no_token_in_the_address_or_history(
        context: BrowserContext, live: Live) -> None:
    token = live.token()
    page, watch = await watched_page(context)
    await sign_in(page, token)
    assert page.url == live.url("/admin/dashboard")
    assert token not in await page.evaluate("location.href")
    # The browser's own list of visited entries: the new tab, then the page the login
    # redirected to; the address with the token was never an entry.
    cdp = await context.new_cdp_session(page)
    history = await cdp.send("Page.getNavigationHistory")
    assert [e["url"] for e in history["entries"]] == ["about:blank", live.url("/admin/dashboard")]
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    (cookie,) = [c for c in await context.cookies() if c["name"] == SESSION_COOKIE]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/admin")
    assert cookie["secure"] is False  # http://127.0.0.1: Secure only when the base is https
    assert SESSION_COOKIE not in await page.evaluate("document.cookie")  # HttpOnly
    await cdp.detach()
    assert watch.problems() == []


async def test_a_pasted_token_signs_in_and_a_bad_one_is_explained_at_the_field(
        context: BrowserContext, live: Live) -> None:
    page, watch = await watched_page(context)
    await page.goto("/admin/login")
    field = page.get_by_label("Admin token")

    await field.fill("not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("This token cannot be used")
    await expect(field).to_have_attribute("aria-invalid", "true")
    assert page.url == live.url("/admin/login")
    assert await context.cookies() == []

    await field.fill(live.token())
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(live.url("/admin/dashboard"))
    assert [c["name"] for c in await context.cookies()] == [SESSION_COOKIE]
    assert watch.problems() == []


async def test_without_a_session_a_page_asks_to_sign_in_and_returns_there(
        context: BrowserContext, live: Live) -> None:
    page, _watch = await watched_page(context)
    await page.goto("/admin/offers")
    address = urlsplit(page.url)
    assert (address.path, parse_qs(address.query)) == ("/admin/login", {"next": ["/admin/offers"]})
    await page.get_by_label("Admin token").fill(live.token())
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(live.url("/admin/offers"))


async def test_sign_out_ends_the_session(browser: Browser, live: Live) -> None:
    context = await signed_in_context(browser, live)
    try:
        page, watch = await watched_page(context)
        await page.goto("/admin/customers")
        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url(live.url("/admin/login"))
        await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
        assert [c for c in await context.cookies() if c["name"] == SESSION_COOKIE] == []
        await page.goto("/admin/customers")  # the old session is gone
        assert page.url.startswith(live.url("/admin/login?next="))
        assert watch.problems() == []
    finally:
        await context.close()


async def test_the_login_page_is_clean_at_both_widths(browser: Browser, live: Live) -> None:
    for width in ("desktop", "phone"):
        context = await new_context(browser, live.base_url, width)
        try:
            page, watch = await watched_page(context)
            response = await page.goto("/admin/login")
            assert response is not None and response.status == 200
            await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
            await page.get_by_label("Admin token").focus()  # keyboard-reachable, labelled
            assert await axe_violations(page) == []
            await screenshot(page, "login")
            assert watch.problems() == []
        finally:
            await context.close()


async def test_the_not_found_page_is_words_and_clean_at_both_widths(
        browser: Browser, live: Live) -> None:
    for width in ("desktop", "phone"):
        context = await signed_in_context(browser, live, width)
        try:
            page, watch = await watched_page(context)
            response = await page.goto("/admin/no-such-page")
            assert response is not None and response.status == 404
            await expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
            await expect(page.get_by_role("alert")).to_contain_text("There is no such page")
            assert await axe_violations(page) == []
            await screenshot(page, "not-found")
            assert watch.problems() == []
        finally:
            await context.close()
