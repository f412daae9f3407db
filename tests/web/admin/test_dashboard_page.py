"""The admin dashboard on the real app and database: its tiles and funnel say what GET /analytics
says for the same salon and range, a funnel stage lists its people (masked, logged) with the
"Invite them" link into the builder, the export is the API's workbook, bad input is a sentence
next to the field, and an empty salon is told what to do next."""

from __future__ import annotations

import io
import json
import re
from datetime import date, timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from bs4 import BeautifulSoup
from python_calamine import CalamineWorkbook

from onboardd.auth import TokenCodec
from onboardd.runtime import Services
from onboardd.web.admin import dashboard_view as view
from onboardd.web.admin.formats import number, percent, problem_sentence, rupees
from tests.campaign_support import add_customers, add_salon, phone
from tests.conftest import bearer
from tests.web.admin.conftest import Admin, sign_in, words
from tests.web.test_analytics_api import FROM, RANGE, TO, _story

Client = TestClient[Any, Any]


async def _api(client: Client, salon: str, headers: dict[str, str], query: str) -> Any:
    resp = await client.get(f"/api/salons/{salon}/analytics?{query}", headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


def _tile(page: BeautifulSoup, key: str) -> tuple[str, str]:
    tile = page.find("li", attrs={"data-kpi": key})
    assert tile is not None, key
    return words(tile.find(class_="value")), words(tile.find(class_="rate"))


def _hrefs(page: BeautifulSoup, text: str) -> list[str]:
    return [str(a["href"]) for a in page.find_all("a") if words(a) == text]


async def test_tiles_and_funnel_are_the_api_report(client: Client, services: Services,
                                                   salon: str, admin: Admin,
                                                   admin_headers: dict[str, str]) -> None:
    story = await _story(client, services, salon, admin_headers)
    for query in (RANGE, f"{RANGE}&campaign={story.campaign}"):
        body = await _api(client, salon, admin_headers, query.replace("campaign=", "campaignId="))
        page = await admin.page(f"/admin/dashboard?{query}")
        k = body["kpis"]
        for key in ("totalImported", "totalInvitesSent", "invitesDelivered",
                    "registeredFromImport", "offersRedeemed"):
            assert _tile(page, key)[0] == number(k[key]), key
        assert _tile(page, "totalDiscountGiven")[0] == rupees(k["totalDiscountGiven"])
        assert percent(k["deliveryRate"]) in _tile(page, "invitesDelivered")[1]
        assert percent(k["conversionRate"]) in _tile(page, "registeredFromImport")[1]
        assert percent(k["redemptionRate"]) in _tile(page, "offersRedeemed")[1]
        assert _tile(page, "avgDaysToRegister")[0] == f"{k['avgDaysToRegister']} days"
        stages = {s["stage"]: s for s in body["funnel"]}
        assert _tile(page, "firstBooking")[0] == number(stages["firstBooking"]["count"])

        items = page.select("ol.funnel-bars > li")
        assert [li["data-stage"] for li in items] == list(stages)
        counts = [s["count"] for s in body["funnel"]]
        for i, li in enumerate(items):
            stage = stages[str(li["data-stage"])]
            assert words(li.find(class_="funnel-count")) == number(stage["count"])
            assert percent(stage["rateFromImported"]) in words(li.find(class_="funnel-rate"))
            bar = li.find("svg")
            assert bar["role"] == "img" and number(stage["count"]) in bar["aria-label"]
            fill = bar.find("rect", class_="hbar-fill")
            assert int(fill["width"]) == round(1000 * stage["count"] / counts[0])
            stopped = stage["count"] - (counts[i + 1] if i + 1 < len(counts) else 0)
            assert words(li.find(class_="funnel-more")).split(" · ")[0].endswith(
                f": {stopped}")
        # The table equivalent holds the same counts.
        rows = page.select("figure.funnel table tbody tr")
        assert [words(r.find_all("td")[0]) for r in rows] == [number(c) for c in counts]
        assert words(page.find(class_="range-note")).startswith(
            f"Showing {FROM.day} {FROM:%b %Y} – {TO.day} {TO:%b %Y}")

    # Every stage links to its page carrying the range and the campaign; the stages that can
    # be invited again link into the builder with exactly the stage (and the campaign).
    hrefs = [a["href"] for a in page.select("ol.funnel-bars a.funnel-name")]
    assert hrefs[2] == (f"/admin/dashboard/stages/delivered?from={FROM}&to={TO}"
                        f"&campaign={story.campaign}")
    assert _hrefs(page, "Invite them") == [
        f"/admin/campaigns/new?stage={s}&campaign={story.campaign}"
        for s in ("imported", "invited", "delivered")]
    whole = await admin.page(f"/admin/dashboard?{RANGE}")
    assert _hrefs(whole, "Invite them") == [
        f"/admin/campaigns/new?stage={s}" for s in ("imported", "invited", "delivered")]


async def test_charts_comparison_and_export_link(client: Client, services: Services,
                                                salon: str, admin: Admin,
                                                admin_headers: dict[str, str]) -> None:
    story = await _story(client, services, salon, admin_headers)
    body = await _api(client, salon, admin_headers, RANGE)
    response = await admin.get(f"/admin/dashboard?{RANGE}")
    html = await response.text()
    page = BeautifulSoup(html, "html.parser")
    # Chart data is a JSON block (never executed; the CSP allows no inline script).
    assert all(s.get("src") or s.get("type") == "application/json"
               for s in page.find_all("script"))
    data = json.loads(page.find("script", id="dashboard-data").string)
    assert len(data["x"]) == 10
    points = body["series"]["points"]
    assert data["messages"][0]["values"] == [p["invited"] for p in points]
    assert data["people"][1]["values"] == [p["firstBookings"] for p in points]
    assert data["curve"]["lines"][0]["values"] == [
        round(p["share"] * 100, 2) for p in body["conversionCurve"][0]["points"]]
    assert any("uPlot.iife.min.js" in str(s.get("src")) for s in page.find_all("script"))
    figures = page.find_all("figure")
    assert len(figures) == 4 and all(f.get("aria-label") for f in figures)
    assert all(f.find("table") is not None for f in figures[:3])
    assert "style=" not in html
    # The comparison: the campaign side by side with its rates, and the table with them too.
    table = page.find("table", class_="compare-table")
    [column] = table.select("thead th[data-campaign]")
    assert column["data-campaign"] == story.campaign and words(column.find("a")) == "Diwali"
    cells = {words(tr.find("th")): words(tr.find("td")) for tr in table.select("tbody tr")}
    assert cells["Delivered (share of sent)"] == "5 (62.5 %)"
    assert cells["Registered (share of target)"] == "4 (36.4 %)"
    assert cells["Booking value"] == "₹1,600"
    bars = page.select("ul.compare-bars svg")
    assert len(bars) == 1 and "62.5 %" in bars[0]["aria-label"]
    assert _hrefs(page, "Download the workbook (.xlsx)") == [
        f"/admin/dashboard/export.xlsx?from={FROM}&to={TO}"]
    # The presets keep the chosen campaign, and so does the workbook.
    filtered = await admin.page(f"/admin/dashboard?{RANGE}&campaign={story.campaign}")
    preset = filtered.find("a", string="Last 30 days")
    assert preset is not None and f"campaign={story.campaign}" in preset["href"]
    [workbook] = _hrefs(filtered, "Download the workbook (.xlsx)")
    assert workbook == f"/admin/dashboard/export.xlsx?from={FROM}&to={TO}&campaign={story.campaign}"
    response = await admin.get(workbook)
    assert response.status == 200, await response.text()
    book = CalamineWorkbook.from_filelike(io.BytesIO(await response.read()))
    summary = {row[0]: row[1] for row in book.get_sheet_by_name("Summary").to_python()
               if row and isinstance(row[0], str)}
    assert summary["Campaign"] == "Diwali"


async def test_a_stage_lists_its_people_masked_and_logs_the_read(
        client: Client, services: Services, salon: str, admin: Admin,
        admin_headers: dict[str, str]) -> None:
    story = await _story(client, services, salon, admin_headers)
    await services.pool.execute(
        "UPDATE imported_customers SET customer_name = $2 WHERE id = $1", story.c[3],
        "<script>alert(1)</script>")
    before = await services.pool.fetchval(
        "SELECT count(*) FROM pii_access_log WHERE action = 'analytics_stage'")
    response = await admin.get(
        f"/admin/dashboard/stages/delivered?{RANGE}&campaign={story.campaign}")
    html = await response.text()
    assert response.status == 200, html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = BeautifulSoup(html, "html.parser")
    rows = page.select("table tbody tr")
    assert sorted(words(r.find("th")) for r in rows) == ["<script>alert(1)</script>",
                                                          "Customer4 Test"]
    phones = [words(r.find("td", class_="phone")) for r in rows]
    assert all(re.fullmatch(r"\+91\*{6}\d{4}", p) for p in phones), phones
    assert phone(3) not in html and phone(4) not in html
    assert _hrefs(page, "Invite them") == [
        f"/admin/campaigns/new?stage=delivered&campaign={story.campaign}"]
    assert [a["href"] for a in page.select(".crumbs a")] == [
        f"/admin/dashboard?from={FROM}&to={TO}&campaign={story.campaign}"]
    log = await services.pool.fetch(
        "SELECT actor, salon_id, record_count, details FROM pii_access_log "
        "WHERE action = 'analytics_stage' ORDER BY created_at")
    assert len(log) == before + 1
    assert (log[-1]["actor"], log[-1]["salon_id"], log[-1]["record_count"]) == (
        "admin-1", salon, 2)

    registered = await admin.page("/admin/dashboard/stages/registered")
    assert [words(r.find("th")) for r in registered.select("table tbody tr")] == [
        "Customer2 Test"]
    assert _hrefs(registered, "Invite them") == []
    assert "not invited again" in words(registered)


async def test_a_stage_is_paged(services: Services, salon: str, admin: Admin) -> None:
    await add_customers(services.pool, services.cipher, salon, [phone(i) for i in range(53)])
    first = await admin.page("/admin/dashboard/stages/imported")
    assert len(first.select("table tbody tr")) == 50
    assert "Page 1 of 2" in words(first.find("nav", class_="pager"))
    [following] = _hrefs(first, "Next page")
    assert following == "/admin/dashboard/stages/imported?page=2"
    second = await admin.page(following)
    assert len(second.select("table tbody tr")) == 3
    beyond = await admin.page("/admin/dashboard/stages/imported?page=9")
    assert _hrefs(beyond, "Go to the first page") == ["/admin/dashboard/stages/imported"]
    unknown = await admin.page("/admin/dashboard/stages/clicked", status=404)
    assert "no funnel stage" in words(unknown.find(role="alert"))


async def test_the_export_is_the_api_workbook(client: Client, services: Services, salon: str,
                                              admin: Admin,
                                              admin_headers: dict[str, str]) -> None:
    await _story(client, services, salon, admin_headers)
    body = await _api(client, salon, admin_headers, RANGE)
    response = await admin.get(f"/admin/dashboard/export.xlsx?{RANGE}")
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert re.fullmatch(r'attachment; filename="[^"/]+\.xlsx"',
                        response.headers["Content-Disposition"])
    assert response.headers["Cache-Control"] == "no-store"
    book = CalamineWorkbook.from_filelike(io.BytesIO(await response.read()))
    assert book.sheet_names == ["Summary", "Funnel", "Daily", "Campaigns", "Customers"]
    summary = {row[0]: row[1] for row in book.get_sheet_by_name("Summary").to_python()
               if row and isinstance(row[0], str)}
    assert summary["Total imported"] == body["kpis"]["totalImported"] == 11
    assert summary["Invites sent"] == body["kpis"]["totalInvitesSent"]
    funnel = book.get_sheet_by_name("Funnel").to_python()
    assert [r[1] for r in funnel[1:6]] == [s["count"] for s in body["funnel"]]
    customers = book.get_sheet_by_name("Customers").to_python()
    assert len(customers) == 12 and all("******" in str(r[1]) for r in customers[1:])
    log = await services.pool.fetchrow(
        "SELECT actor, record_count, details FROM pii_access_log "
        "WHERE action = 'analytics_export' ORDER BY created_at DESC LIMIT 1")
    assert log is not None and (log["actor"], log["record_count"]) == ("admin-1", 11)

    full = await admin.get(f"/admin/dashboard/export.xlsx?{RANGE}&pii=full")
    assert full.status == 200
    await full.read()
    assert await services.pool.fetchval(
        "SELECT count(*) FROM pii_access_log WHERE action = 'analytics_export_full'") == 1
    bad = await admin.page("/admin/dashboard/export.xlsx?from=2026-02-30", status=422)
    assert "is not a date" in words(bad.find(role="alert"))


async def test_bad_input_is_a_sentence_at_its_field(services: Services, salon: str,
                                                    admin: Admin) -> None:
    await add_customers(services.pool, services.cipher, salon, [phone(1)])
    cases = [("from=2026-13-01", 422, "range-from-error", "'2026-13-01' is not a date"),
             ("from=yesterday", 422, "range-from-error", "is not a date"),
             ("to=2026-02-30", 422, "range-to-error", "is not a date"),
             ("from=2026-06-02&to=2026-06-01", 422, "range-from-error", "is after to"),
             ("from=2023-01-01&to=2026-01-01", 422, "range-from-error", "at most 731"),
             ("campaign=nope", 404, "range-campaign-error", "not one of this salon's")]
    for query, status, error_id, text in cases:
        page = await admin.page(f"/admin/dashboard?{query}", status=status)
        error = page.find(id=error_id)
        assert error is not None and text in words(error), query
        field = page.find(attrs={"aria-describedby": error_id})
        assert field is not None and field["aria-invalid"] == "true"
        assert page.find("li", attrs={"data-kpi": True}) is None
        assert "Traceback" not in str(page)


async def test_another_salons_campaign_is_refused(client: Client, services: Services,
                                                  salon: str, admin_headers: dict[str, str],
                                                  tokens: TokenCodec) -> None:
    story = await _story(client, services, salon, admin_headers)
    other = await add_salon(services.pool)
    assert (await client.get(f"/api/salons/{other}/analytics",
                             headers=bearer(tokens, "x", "admin", [other]))).status == 200
    intruder = await sign_in(client, tokens.encode("admin-2", "admin", [other], 3600))
    page = await intruder.page(f"/admin/dashboard?campaign={story.campaign}", status=404)
    assert "not one of this salon's" in words(page.find(id="range-campaign-error"))
    stage = await intruder.page(f"/admin/dashboard/stages/imported?campaign={story.campaign}",
                                status=404)
    assert "not one of this salon's" in words(stage.find(role="alert"))


async def test_empty_salon_says_import_your_customers(admin: Admin) -> None:
    page = await admin.page("/admin/dashboard")
    empty = page.find(class_="empty")
    assert empty is not None
    assert _hrefs(page, "Import your customers") == ["/admin/import"]
    assert page.find("figure") is None
    assert not any("uPlot" in str(s.get("src")) for s in page.find_all("script"))
    assert len(page.find_all("h1")) == 1


async def test_no_campaign_yet_points_to_the_builder(services: Services, salon: str,
                                                      admin: Admin) -> None:
    await add_customers(services.pool, services.cipher, salon, [phone(1), phone(2)])
    page = await admin.page("/admin/dashboard")
    assert _tile(page, "totalImported")[0] == "2"
    section = page.find("section", attrs={"aria-labelledby": "campaigns-heading"})
    assert "No campaign has been sent yet" in words(section)
    assert [a["href"] for a in section.find_all("a")] == ["/admin/campaigns/new"]
    assert "No campaign started in these dates" in words(page)
    # Default range: the API's (the last 90 days ending today in the salon's timezone).
    to = page.find("input", attrs={"name": "to"})["value"]
    since = page.find("input", attrs={"name": "from"})["value"]
    assert date.fromisoformat(to) - date.fromisoformat(since) == timedelta(days=89)


def test_links_and_presets_carry_the_filters() -> None:
    assert view.builder_href("invited", None) == "/admin/campaigns/new?stage=invited"
    assert view.builder_href("delivered", "c 1") == (
        "/admin/campaigns/new?stage=delivered&campaign=c+1")
    assert view.builder_href("registered", "c1") is None
    assert view.builder_href("firstBooking", None) is None
    today = date(2026, 3, 15)
    presets = {p.label: p.href for p in view.presets(today, None, "c1")}
    assert presets["Last 7 days"] == "/admin/dashboard?from=2026-03-09&to=2026-03-15&campaign=c1"
    assert presets["This month"] == "/admin/dashboard?from=2026-03-01&to=2026-03-15&campaign=c1"
    assert view.export_href(view.Filters("2026-01-01", "2026-01-31", "c1"), "full") == (
        "/admin/dashboard/export.xlsx?from=2026-01-01&to=2026-01-31&campaign=c1&pii=full")
    assert view.bar_width(0, 10) == 0 and view.bar_width(1, 1000) == 4
    assert view.bar_width(5, 10) == 500 and view.bar_width(3, 0) == 0


def test_problem_sentence_drops_the_field_and_starts_with_a_capital() -> None:
    """The one helper the dashboard, the builder and the import wizard share."""
    assert problem_sentence("from: must be a date", "from") == "Must be a date"
    assert problem_sentence("to: must be a date", "from") == "To: must be a date"
    assert problem_sentence("audience.importedAfter: give a date",
                            "audience.importedAfter") == "Give a date"
    assert problem_sentence("message without a field", "") == "Message without a field"
    # No field named: any one-word lead goes, a lead of several words stays.
    assert problem_sentence("mapping.phone: no column 'X'") == "No column 'X'"
    assert problem_sentence("campaign is draft: it cannot be paused") == (
        "Campaign is draft: it cannot be paused")
    assert problem_sentence("") == ""
