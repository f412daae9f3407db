"""The admin UI's whole journey in one desktop browser, against the live daemon (every actor and
the built-in Twilio simulator in the test's loop): sign in from the banner's printed link, import
a messy file dropped on the drop zone, fix a column, follow the import to 100 % and download its
errors, create an offer, build an SMS campaign with a variable inserted at the cursor and check
its cost estimate, send it and watch it complete (the simulator received every rendered
message), register a customer as the host app does and redeem the offer through the mobile API,
see the dashboard change, follow a funnel stage into the builder, and read the exported workbook
back. Every step asserts what the page shows, what the database holds, and that the browser
logged no error and no CSP violation."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import BrowserContext, expect
from python_calamine import CalamineWorkbook

from onboardd.domain.money import format_rupees
from onboardd.first_run import banner
from tests.browser.live import SALON_NAME, Live
from tests.browser.support import (
    Watch,
    download,
    drag_file_onto,
    screenshot,
    settled,
    tile_value,
    watched_page,
)
from tests.campaign_support import add_customers, wait_for
from tests.web.messy_import import EXISTING, MESSY_CSV

# The message typed into the builder; {{offer_amount}} goes where the gap is, by its button.
TYPED = "Hi {{customer_name}}, get  off at {{salon_name}}. Code: {{offer_code}}"
GAP = TYPED.index("  ") + 1
MESSAGE = TYPED[:GAP] + "{{offer_amount}}" + TYPED[GAP:]
OFFER_PAISA = 10_000  # ₹100 off
BOOKING_PAISA = 80_000
PRIYA = "+919876543210"  # row 2 of MESSY_CSV, imported and agreeing to messages
# How each invited customer is greeted: the first name; a name taken from the organisation
# column whole; the customer who was already there (tests.campaign_support.add_customers).
GREETED = {"Priya Sharma": "Priya", "Anita Desai": "Anita", "Glow Studio": "Glow Studio",
           "Rohan Das": "Rohan", "Meera Patel": "Meera", "Customer0 Test": "Customer0"}


def clean(watch: Watch, step: str) -> None:
    """Nothing went wrong in the browser so far."""
    assert watch.problems() == [], f"{step}: {watch.problems()}"


def printed_link(text: str) -> str:
    """The sign-in link of the banner `onboardd serve` prints."""
    links: list[str] = re.findall(r"^\s*(http\S+/admin/login\?token=\S+)$", text, re.MULTILINE)
    assert len(links) == 1, text
    return links[0]


async def simulator_messages(live: Live) -> list[dict[str, Any]]:
    """Every message the built-in Twilio simulator accepted."""
    async with aiohttp.ClientSession() as http, http.get(
            live.services.twilio_base_url + "/_sim/messages") as resp:
        assert resp.status == 200
        found: list[dict[str, Any]] = await resp.json()
        return found


async def redeem(live: Live, user: str, offer_id: str, booking: str, amount: int
                 ) -> dict[str, Any]:
    """Apply the offer to a booking as the mobile app does at checkout, with the user's own
    customer token; the 201 answer."""
    token = live.services.tokens.encode(user, "customer", [], 600)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http, \
            http.post(live.url("/api/mobile/welcome-offers/redeem"), json={
                "offerId": offer_id, "bookingId": booking,
                "bookingAmountInPaisa": amount}) as resp:
        body: dict[str, Any] = await resp.json()
        assert resp.status == 201, body
        return body


async def pending_customers(live: Live) -> int:
    count: int = await live.pool.fetchval(
        "SELECT count(*) FROM imported_customers WHERE salon_id = $1 AND status = 'pending'",
        live.salon)
    return count


async def test_the_admin_journey(context: BrowserContext, live: Live, tmp_path: Path) -> None:
    page, watch = await watched_page(context)
    main = page.locator("main")

    # 1. The printed link signs in and lands on the dashboard, the token gone from the address.
    link = printed_link(await banner(live.services))
    token = link.split("token=", 1)[1]
    await page.goto(link)
    assert page.url == live.url("/admin/dashboard")
    assert token not in await page.evaluate("location.href")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    await expect(main).to_contain_text("No customers yet")
    clean(watch, "sign-in")

    # 2. A messy file dropped on the drop zone (one of its numbers is already a customer).
    await add_customers(live.pool, live.services.cipher, live.salon, EXISTING)
    await page.get_by_role("link", name="Import your customers").click()
    await page.wait_for_url(live.url("/admin/import"))
    await settled(page)
    await drag_file_onto(page, ".dropzone", "messy.csv", MESSY_CSV)
    await expect(page.locator("#step-title")).to_have_text("Check the columns")
    assert re.search(r"/admin/import/[0-9a-f-]{36}$", page.url), page.url
    results = page.locator("#preview-results")
    await expect(results).to_contain_text("5 of 13 rows will be imported.")
    await expect(page.locator("table.preview-table tbody tr")).to_have_count(10)
    await expect(page.locator("dl.facts").first).to_contain_text("messy.csv (13 rows)")
    anita = page.locator("table.preview-table tbody tr", has_text="Anita Desai")
    await expect(anita.locator(".badge")).to_have_text("Invalid")
    await screenshot(page, "journey-import-preview")
    clean(watch, "drop")

    # 3. The email column is not worth losing a customer over: unmapping it re-previews at once.
    email = page.locator("#map-email")
    assert await email.input_value() != ""
    await email.select_option("")
    await expect(results).to_contain_text("6 of 13 rows will be imported.")
    await expect(anita.locator(".badge")).to_have_text("Valid")
    await expect(page.locator("#mapping-status")).to_contain_text("Preview updated")
    await page.get_by_role("button", name="Import these customers").click()

    # 4. The progress follows the batch to 100 %, then the summary.
    await expect(page.locator("#step-title")).to_have_text("Importing your customers")
    await expect(page.locator("#import-live progress")).to_have_attribute("max", "100")
    await expect(page.locator("#step-title")).to_have_text("Import finished", timeout=30_000)
    await expect(page.locator("#import-bar")).to_have_attribute("value", "100")
    await expect(page.locator(".progress-text")).to_contain_text("100 % · 13 of 13 rows")
    summary = page.locator("#import-step")
    await expect(tile_value(summary, "Imported")).to_have_text("6")
    await expect(tile_value(summary, "Duplicates skipped")).to_have_text("2")
    await expect(tile_value(summary, "Rows with errors")).to_have_text("5")
    batch = await live.pool.fetchrow(
        "SELECT status, successful_imports FROM customer_import_batches WHERE salon_id = $1",
        live.salon)
    assert (batch["status"], batch["successful_imports"]) == ("completed", 6)
    assert await live.pool.fetchval(
        "SELECT count(*) FROM imported_customers WHERE salon_id = $1", live.salon) == 7
    await screenshot(page, "journey-import-summary")

    # 5. The error report lists every row that was not imported, and why.
    report = await download(page, page.locator("a[href$='/errors.csv']"), tmp_path)
    rows = list(csv.reader(io.StringIO(report.read_text("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == ["6", "7", "8", "9", "10", "11", "13"]
    reasons = {row[0]: " ".join(row[1:]).lower() for row in rows[1:]}
    assert "landline" in reasons["7"]
    assert "Sneha Nair" in " ".join(next(r for r in rows if r[0] == "8"))
    clean(watch, "import")

    # 6. A welcome offer, shown as the customer will read it.
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Offers").click()
    await expect(main).to_contain_text("No welcome offers yet")
    await page.get_by_role("link", name="New offer").click()
    await page.get_by_label("Name").fill("Welcome ₹100 off")
    await page.get_by_label("A fixed amount off the bill").check()
    await page.get_by_label("Discount", exact=True).fill("100")
    await expect(page.locator("#offer-preview")).to_contain_text("Customers will read: ₹100")
    await page.get_by_role("button", name="Create offer").click()
    await page.wait_for_url(re.compile(r".*/admin/offers\?saved="))
    await expect(page.get_by_role("status")).to_contain_text(
        "Saved “Welcome ₹100 off”: customers will read ₹100.")
    row = page.locator("table.offers tbody tr", has_text="Welcome ₹100 off")
    await expect(row.locator("td.amount")).to_have_text("₹100")
    await expect(row.locator(".badge")).to_have_text("Active")
    offer = await live.pool.fetchrow(
        "SELECT id, discount_type, discount_value, validity_days, usage_limit, is_active "
        "FROM welcome_offers WHERE salon_id = $1", live.salon)
    assert (offer["discount_type"], offer["discount_value"], offer["validity_days"],
            offer["usage_limit"], offer["is_active"]) == ("fixed", OFFER_PAISA, 30, 1, 1)
    await screenshot(page, "journey-offers")
    clean(watch, "offer")

    # 7. The builder: an SMS with a variable inserted at the cursor, the offer, the preview and
    # the estimate (messages x segments x the configured price per segment).
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    await expect(main).to_contain_text("No campaigns yet")
    await page.get_by_role("link", name="New campaign").click()
    await page.wait_for_url(live.url("/admin/campaigns/new"))
    await settled(page)
    await page.get_by_label("Campaign name").fill("Launch")
    await page.locator("input[name=channel][value=sms]").check()
    await page.locator("#f-content-sid").wait_for(state="hidden")
    template = page.locator("#f-template")
    await template.fill(TYPED)
    await template.evaluate("(el, at) => el.setSelectionRange(at, at)", GAP)
    await page.locator("button[data-variable=offer_amount]").click()
    await expect(template).to_have_value(MESSAGE)
    assert await page.evaluate("document.activeElement.id") == "f-template"
    chosen = page.get_by_label("Welcome offer")
    await chosen.select_option(offer["id"])
    await expect(chosen.locator("option:checked")).to_have_text("Welcome ₹100 off — ₹100")
    preview = page.locator("#preview pre")
    await expect(preview).to_have_text(re.compile(
        rf"^Hi \S+, get ₹100 off at {SALON_NAME}\. Code: \S+$"))
    segments = int(await page.locator("#preview dt:text-is('SMS segments') + dd").inner_text())
    assert segments == 1
    audience = await pending_customers(live)
    assert audience == 6  # 5 imported and invitable (one opted out) + the existing customer
    await expect(page.locator("#audience-count")).to_contain_text(
        f"{audience} customers match this audience now.")
    price = live.services.cfg.pricing.sms_paisa_per_segment
    estimate = page.locator("#estimate")
    await expect(estimate.locator("tr:has(th:text-is('Messages')) td")).to_have_text(
        str(audience))
    await expect(estimate.locator("tr:has(th:text-is('SMS')) td")).to_have_text(
        f"{audience} × {segments} segment × {format_rupees(price)} = "
        f"{format_rupees(audience * segments * price)}")
    await expect(estimate.locator("tr.total td")).to_have_text(
        format_rupees(audience * segments * price))
    await screenshot(page, "journey-builder")
    clean(watch, "builder")

    # 8. Send: the live page follows the campaign to completion on the simulator.
    await page.get_by_role("button", name="Send", exact=True).click()
    await page.wait_for_url(re.compile(r".*/admin/campaigns/[0-9a-f-]{36}$"))
    campaign_id = page.url.rsplit("/", 1)[1]
    await expect(page.get_by_role("heading", level=1)).to_have_text("Launch")
    await expect(page.locator(".page-head .badge")).to_have_text("Completed", timeout=30_000)
    live_tiles = page.locator("#live")
    await expect(tile_value(live_tiles, "Sent")).to_have_text(str(audience))
    await expect(tile_value(live_tiles, "Delivered")).to_have_text(str(audience))
    await expect(tile_value(live_tiles, "Failed")).to_have_text("0")
    await screenshot(page, "journey-campaign-live")
    sent = await live.pool.fetch(
        "SELECT c.customer_name, c.offer_code, c.normalized_phone_enc, m.channel, m.status "
        "FROM invitation_messages m JOIN imported_customers c ON c.id = m.imported_customer_id "
        "WHERE m.campaign_id = $1", campaign_id)
    assert {(r["channel"], r["status"]) for r in sent} == {("sms", "delivered")}
    decrypt = live.services.cipher.decrypt
    expected = sorted(
        (decrypt(r["normalized_phone_enc"], "phone"),
         f"Hi {GREETED[r['customer_name']]}, get ₹100 off at {SALON_NAME}. "
         f"Code: {r['offer_code']}") for r in sent)
    received = sorted((m["to"], m["body"]) for m in await simulator_messages(live))
    assert received == expected
    assert {r["customer_name"] for r in sent} == set(GREETED)
    priya_code = next(r["offer_code"] for r in sent if r["customer_name"] == "Priya Sharma")
    assert (PRIYA, f"Hi Priya, get ₹100 off at {SALON_NAME}. Code: {priya_code}") in received
    clean(watch, "campaign")

    # The dashboard before anyone registers.
    dashboard = page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard")
    await dashboard.click()
    kpi = page.locator("section[aria-labelledby=kpi-heading]")
    await expect(kpi.locator("[data-kpi=totalInvitesSent] .value")).to_have_text(str(audience))
    await expect(kpi.locator("[data-kpi=invitesDelivered] .value")).to_have_text(str(audience))
    await expect(kpi.locator("[data-kpi=registeredFromImport] .value")).to_have_text("0")
    await expect(kpi.locator("[data-kpi=offersRedeemed] .value")).to_have_text("0")
    clean(watch, "dashboard before")

    # 9. The host app registers Priya (national form) and books; the app redeems her offer.
    user = await live.pool.fetchval(
        "INSERT INTO users (phone, name) VALUES ('98765 43210', 'Priya Sharma') RETURNING id")

    async def granted() -> bool:
        return bool(await live.pool.fetchval(
            "SELECT count(*) FROM welcome_offer_redemptions WHERE user_id = $1 "
            "AND welcome_offer_id = $2 AND status = 'active'", user, offer["id"]))

    await wait_for(granted, 20)
    assert await live.pool.fetchval(
        "SELECT status FROM imported_customers WHERE linked_user_id = $1", user) == "registered"
    booking = await live.pool.fetchval(
        "INSERT INTO bookings (salon_id, user_id, amount_in_paisa) VALUES ($1, $2, $3) "
        "RETURNING id", live.salon, user, BOOKING_PAISA)
    body = await redeem(live, user, offer["id"], booking, BOOKING_PAISA)
    assert (body["valid"], body["discount"]) == (True, OFFER_PAISA)
    assert await live.pool.fetchval(
        "SELECT status FROM welcome_offer_redemptions WHERE booking_id = $1",
        booking) == "redeemed"

    # 10. The dashboard shows the registration and the redemption.
    await page.reload()
    await expect(kpi.locator("[data-kpi=registeredFromImport] .value")).to_have_text("1")
    await expect(kpi.locator("[data-kpi=offersRedeemed] .value")).to_have_text("1")
    await expect(kpi.locator("[data-kpi=totalDiscountGiven] .value")).to_have_text(
        format_rupees(OFFER_PAISA))
    await expect(kpi.locator("[data-kpi=firstBooking] .value")).to_have_text("1")
    delivered = page.locator(".funnel-bars li[data-stage=delivered]")
    await expect(delivered.locator(".funnel-count")).to_have_text(str(audience))
    await settled(page)
    await screenshot(page, "journey-dashboard")
    clean(watch, "dashboard after")

    # 11. The delivered stage lists who has not registered; "Invite them" hands them over.
    waiting = audience - 1
    await delivered.locator(".funnel-more a", has_text="Delivered, not registered").click()
    await page.wait_for_url(re.compile(r".*/admin/dashboard/stages/delivered"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Delivered, not registered")
    people = page.locator("table.stack tbody tr")
    await expect(people).to_have_count(waiting)
    await expect(people.filter(has_text="Priya Sharma")).to_have_count(0)
    await page.get_by_role("link", name="Invite them").click()
    await page.wait_for_url(re.compile(r".*/admin/campaigns/new\?stage=delivered"))
    await expect(page.locator(".handover")).to_contain_text(
        "Customers delivered but not registered (from the dashboard).")
    await expect(page.get_by_label("Only these customers")).to_be_checked()
    await expect(page.locator("#audience-count")).to_contain_text(
        f"{waiting} customers match this audience now.")
    await screenshot(page, "journey-handover")
    clean(watch, "handover")

    # 12. The workbook exported from the dashboard holds the same figures.
    await dashboard.click()
    workbook = await download(
        page, page.get_by_role("link", name="Download the workbook (.xlsx)"), tmp_path)
    assert workbook.suffix == ".xlsx"
    book = CalamineWorkbook.from_path(str(workbook))
    figures = {str(r[0]): r[1] for r in book.get_sheet_by_name("Summary").to_python()
               if len(r) > 1}
    assert figures["Registered from import"] == 1
    assert figures["Offers redeemed"] == 1
    funnel = {str(r[0]): r[1] for r in book.get_sheet_by_name("Funnel").to_python()[1:]}
    assert funnel["Registered"] == 1
    assert funnel["Delivered"] == audience
    people_rows = book.get_sheet_by_name("Customers").to_python()
    header = [str(h) for h in people_rows[0]]
    priya = next(r for r in people_rows[1:] if r[header.index("Name")] == "Priya Sharma")
    assert priya[header.index("Status")] == "registered"
    assert priya[header.index("Offers redeemed")] == "Welcome ₹100 off"  # by name
    assert priya[header.index("Discount given (₹)")] == OFFER_PAISA / 100
    assert str(priya[header.index("Phone")]).endswith("3210")  # masked: "+91******3210"
    clean(watch, "export")
