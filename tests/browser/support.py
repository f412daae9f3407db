"""Helpers of the browser tests: Debian's Chromium through playwright's async API, contexts at
the two widths, signing in, a watch on console errors and CSP violations, axe, screenshots."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Response,
)
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.live import Live

# Debian's binary itself: /usr/bin/chromium is a shell wrapper playwright cannot drive.
CHROMIUM = Path("/usr/lib/chromium/chromium")
# Without the background-networking flags Chromium keeps calling Google's services, which the
# closed network here refuses, and those refusals slow every launch.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WIDTHS = {"desktop": DESKTOP, "phone": PHONE}

# Git-ignored: one PNG per page and width, for people to look at.
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"

# Runs in every document before its own scripts (through the DevTools protocol, so our CSP
# does not apply to it): reports each CSP violation to the test.
_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  if (typeof window.__onboarddCspViolation !== "function") return;  // a tab nobody watches
  window.__onboarddCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`
    + ` at ${e.sourceFile}:${e.lineNumber}`);
});
"""


async def new_context(browser: Browser, base_url: str, width: str = "desktop"
                      ) -> BrowserContext:
    """A fresh profile (no cookies) at one of WIDTHS, with the CSP listener; CSP is enforced."""
    viewport = WIDTHS[width]
    context = await browser.new_context(
        base_url=base_url, viewport=viewport,  # type: ignore[arg-type]
        is_mobile=width == "phone", has_touch=width == "phone",
        device_scale_factor=1, accept_downloads=True, locale="en-IN")
    context.set_default_timeout(10_000)
    await context.add_init_script(_CSP_LISTENER)
    return context


@dataclass
class Watch:
    """What went wrong in a page's browser: console errors, uncaught exceptions, CSP violations
    and failed sub-resources (the document itself is the test's to check)."""

    errors: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        # A failed fetch is reported by its response below, with its address.
        if message.text.startswith("Failed to load resource"):
            return
        self.errors.append(f"console: {message.text} ({message.location.get('url')})")

    def violation(self, text: str) -> None:
        self.csp.append(text)

    def response(self, response: Response) -> None:
        if response.status < 400 or response.request.is_navigation_request():
            return
        if response.url.endswith("/favicon.ico"):  # the browser's own guess; we serve none
            return
        self.failed.append(f"{response.status} {response.request.method} {response.url}")

    def problems(self) -> list[str]:
        """Everything that went wrong, in words; a test asserts it is empty."""
        return [*self.errors, *(f"CSP: {v}" for v in self.csp), *self.failed]

    def clear(self) -> None:
        self.errors.clear()
        self.csp.clear()
        self.failed.clear()


async def watched_page(context: BrowserContext) -> tuple[Page, Watch]:
    """A new tab and the watch on it."""
    page = await context.new_page()
    watch = Watch()
    page.on("console", watch.console)
    page.on("pageerror", lambda exc: watch.errors.append(f"uncaught: {exc}"))
    page.on("response", watch.response)
    await page.expose_function("__onboarddCspViolation", watch.violation)
    return page, watch


async def sign_in(page: Page, token: str) -> Response | None:
    """Sign in the way `onboardd serve`'s printed link does: /admin/login?token=..."""
    return await page.goto(f"/admin/login?token={token}")


async def signed_in_context(browser: Browser, live: Live, width: str = "desktop",
                            token: str | None = None) -> BrowserContext:
    """A profile at `width` signed in to `live` through the printed link (the caller closes
    it)."""
    context = await new_context(browser, live.base_url, width)
    page = await context.new_page()
    await sign_in(page, token or live.token())
    assert "/admin/login" not in page.url, f"not signed in: {page.url}"
    await page.close()
    return context


async def settled(page: Page, timeout_ms: float = 3000) -> None:
    """Wait until the page's own requests (htmx loads, charts) have gone quiet; a page that
    polls faster than that is looked at as it is after `timeout_ms`."""
    with contextlib.suppress(PlaywrightTimeoutError):
        await page.wait_for_load_state("networkidle", timeout=timeout_ms)


_AXE = Axe()
SERIOUS = frozenset({"serious", "critical"})


async def axe_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each
    (rule, impact, what it says, where). axe is injected through the DevTools protocol, which
    the page's CSP does not restrict, so the page keeps its CSP."""
    results = await _AXE.run(page)
    found: list[dict[str, Any]] = results.response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(" ".join(n["target"]) for n in v["nodes"][:5])
            for v in found if v.get("impact") in SERIOUS]


def page_name(path: str) -> str:
    """The screenshot name of an address: /admin/campaigns/new -> campaigns-new."""
    words = re.sub(r"[^a-z0-9]+", "-", path.removeprefix("/admin").lower()).strip("-")
    return words or "home"


async def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as screenshots/<name>-<width>.png; returns the file."""
    SCREENSHOTS.mkdir(exist_ok=True)
    width = (page.viewport_size or DESKTOP)["width"]
    target = SCREENSHOTS / f"{name}-{width}.png"
    await page.screenshot(path=target, full_page=True, animations="disabled")
    return target


# A file given to the page as the browser gives a dragged one: a DataTransfer holding a File.
_DATA_TRANSFER = """([name, text, type]) => {
  const data = new DataTransfer();
  data.items.add(new File([text], name, {type}));
  return data;
}"""


async def drag_file_onto(page: Page, selector: str, name: str, text: str,
                         mime: str = "text/csv") -> None:
    """Drag a file over the element `selector` and drop it there: dragenter, dragover, then
    drop, each a DragEvent carrying the same DataTransfer (what the page's handlers read).
    Between dragover and drop the zone must show it is a target (its class `over`)."""
    data = await page.evaluate_handle(_DATA_TRANSFER, [name, text, mime])
    zone = page.locator(selector)
    try:
        for kind in ("dragenter", "dragover"):
            await zone.dispatch_event(kind, {"dataTransfer": data})
        await zone.and_(page.locator(".over")).wait_for()
        await zone.dispatch_event("drop", {"dataTransfer": data})
    finally:
        await data.dispose()


async def download(page: Page, link: Locator, folder: Path) -> Path:
    """Click `link`, wait for the download it starts and keep it under `folder` with the name
    the server gave it; returns the file."""
    async with page.expect_download() as started:
        await link.click()
    done = await started.value
    assert await done.failure() is None, await done.failure()
    target = folder / done.suggested_filename
    await done.save_as(target)
    return target


def tile_value(scope: Locator, label: str) -> Locator:
    """The value of the tile labelled `label` among the `.tile`s under `scope`."""
    return scope.locator(f".tile:has(.label:text-is('{label}')) .value")
