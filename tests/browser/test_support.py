"""The browser tests' own tools work: under the admin UI's CSP an inline script, an inline
style and a script error are caught and axe reports a serious finding; the live app runs its
actors and the simulator."""

from __future__ import annotations

from typing import Any

import aiohttp
from playwright.async_api import BrowserContext, Route

from onboardd.web.admin.guard import SECURITY_HEADERS
from tests.browser.live import Live
from tests.browser.support import axe_violations, watched_page
from tests.campaign_support import wait_for

BROKEN = """<!doctype html><html lang="en"><head><title>probe</title></head><body><main>
<h1>Probe</h1><p style="color: red">inline style</p><script>window.ran = true;</script>
<img src="/no-such-image.png"></main></body></html>"""


async def test_the_watch_catches_csp_violations_errors_and_axe_findings(
        context: BrowserContext) -> None:
    async def broken(route: Route) -> None:
        await route.fulfill(status=200, body=BROKEN, content_type="text/html",
                            headers=SECURITY_HEADERS)

    page, watch = await watched_page(context)
    await page.route("**/admin/probe", broken)
    await page.goto("/admin/probe")
    await page.evaluate("setTimeout(() => { throw new Error('boom'); })")
    await page.wait_for_timeout(100)

    assert await page.evaluate("window.ran === undefined")  # the CSP held
    assert sorted(v.split(" ")[0] for v in watch.csp) == ["script-src-elem", "style-src-attr"]
    assert any("boom" in e for e in watch.errors)
    assert any("Content Security Policy" in e for e in watch.errors)
    assert [f.rsplit("/", 1)[-1] for f in watch.failed] == ["no-such-image.png"]
    assert any(v.startswith("image-alt (critical)") for v in await axe_violations(page))


async def test_the_live_app_runs_the_actors_and_the_simulator(live: Live) -> None:
    """What the journey relies on: an import completes (importer), a campaign is delivered
    through the simulator's callbacks (dispatcher, status recorder) and a registration is
    matched (offer matcher), all on the address the browser uses."""
    api = live.url(f"/api/salons/{live.salon}")
    headers = {"Authorization": f"Bearer {live.token()}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        form = aiohttp.FormData()
        form.add_field("file", b"Name,Phone\nPriya Sharma,98765 43210\nRahul Verma,91234 56789\n",
                       filename="clients.csv", content_type="text/csv")
        async with http.post(f"{api}/customers/import", data=form) as resp:
            batch = (await resp.json())["batchId"]
        async with http.post(f"{api}/customers/import/{batch}/confirm") as resp:
            assert resp.status == 202, await resp.text()

        async def read(path: str) -> Any:
            async with http.get(api + path) as resp:
                return await resp.json()

        async def imported() -> bool:
            return bool((await read(f"/customers/import/{batch}/status"))["status"] == "completed")

        await wait_for(imported, 20)
        async with http.post(f"{api}/welcome-offers", json={
                "name": "First visit", "discountType": "fixed", "discountValue": 10000}) as resp:
            offer = (await resp.json())["id"]
        async with http.post(f"{api}/invitation-campaigns", json={
                "name": "Launch", "channel": "whatsapp", "welcomeOfferId": offer}) as resp:
            campaign = (await resp.json())["id"]
        async with http.post(f"{api}/invitation-campaigns/{campaign}/send") as resp:
            assert resp.status == 202, await resp.text()

        async def delivered() -> bool:
            stats = await read(f"/invitation-campaigns/{campaign}/stats")
            return bool(stats["delivered"] == 2 and stats["completedAt"])

        await wait_for(delivered, 20)
    user = await live.pool.fetchval(
        "INSERT INTO users (phone, name) VALUES ('+919876543210', 'Priya') RETURNING id")

    async def matched() -> bool:
        return bool(await live.pool.fetchval(
            "SELECT count(*) FROM imported_customers WHERE linked_user_id = $1", user))

    await wait_for(matched, 20)
