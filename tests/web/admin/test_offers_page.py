"""The welcome offers pages: the list with amounts as customers read them, the create and edit
forms (rupees in, paisa stored, errors next to their fields), the live preview and the
deactivation behind its confirmation."""

from __future__ import annotations

from typing import Any

from onboardd.runtime import Services
from onboardd.web.admin.offer_form import paisa_to_rupees, rupees_to_paisa
from tests.campaign_support import add_offer
from tests.web.admin.conftest import Admin, soup, words

BASE = "/admin/offers"
NEW = {"name": "Welcome ₹100", "discount_type": "fixed", "value": "100", "max_discount": "",
       "minimum_bill": "", "validity_days": "30", "usage_limit": "1"}


async def offer_row(services: Services, name: str) -> Any:
    return await services.pool.fetchrow("SELECT * FROM welcome_offers WHERE name = $1", name)


def field_error(page: Any, field: str) -> str:
    """The error shown next to a field, checking that the field points at it."""
    control = page.find(id=f"offer-{field}")
    error = page.find(id=f"offer-{field}-error")
    assert error is not None and "field-error" in error["class"], field
    if control.name == "input" and control["type"] == "text":
        assert control["aria-invalid"] == "true"
        assert f"offer-{field}-error" in control["aria-describedby"].split()
    return words(error)


def test_rupees_are_read_into_paisa() -> None:
    assert [rupees_to_paisa(t) for t in ("100", "99.50", "99.5", "₹1,000", " 0.05 ")] == [
        10000, 9950, 9950, 100000, 5]
    for bad in ("", "abc", "1.234", "-5", "1e3", "10.", ".5"):
        try:
            rupees_to_paisa(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
    assert [paisa_to_rupees(p) for p in (10000, 9950, 5, None)] == ["100", "99.50", "0.05", ""]


async def test_no_offers_says_to_create_one(admin: Admin) -> None:
    page = await admin.page(BASE)
    empty = page.find(class_="empty")
    assert "No welcome offers yet — create one to invite customers with it" in words(empty)
    assert empty.find("a", href="/admin/offers/new") is not None


async def test_create_fixed_and_percentage_offers(admin: Admin, services: Services) -> None:
    form = await admin.page(BASE + "/new")
    assert form.find("form", action="/admin/offers/new")["method"] == "post"
    for name in ("name", "value", "max_discount", "minimum_bill", "validity_days",
                 "usage_limit"):
        assert form.find("label", attrs={"for": f"offer-{name}"}) is not None, name
    created = await admin.post(BASE + "/new", htmx=False, csrf=False, data={
        **NEW, "csrf": admin.csrf, "value": "99.50", "minimum_bill": "500"})
    assert created.status == 303, await created.text()
    fixed = await offer_row(services, "Welcome ₹100")
    assert (fixed["discount_type"], fixed["discount_value"], fixed["minimum_purchase_in_paisa"],
            fixed["max_discount_in_paisa"], fixed["is_active"]) == ("fixed", 9950, 50000, None, 1)
    assert created.headers["Location"] == f"{BASE}?saved={fixed['id']}"
    await admin.post(BASE + "/new", data={
        **NEW, "name": "Fifteen", "discount_type": "percentage", "value": "15",
        "max_discount": "200", "validity_days": "14", "usage_limit": "2"})
    percent = await offer_row(services, "Fifteen")
    assert (percent["discount_type"], percent["discount_value"],
            percent["max_discount_in_paisa"], percent["validity_days"],
            percent["usage_limit"]) == ("percentage", 15, 20000, 14, 2)
    page = await admin.page(f"{BASE}?saved={percent['id']}")
    assert "Saved “Fifteen”: customers will read 15% up to ₹200." in words(
        page.find(class_="alert"))
    rows = {words(tr.find("td")): tr for tr in page.select("table.offers tbody tr")}
    assert words(rows["Fifteen"].find(class_="amount")) == "15% up to ₹200"
    assert words(rows["Welcome ₹100"].find(class_="amount")) == (
        "₹99.50 on bills of ₹500 or more")
    assert "14 days" in words(rows["Fifteen"])
    assert rows["Fifteen"].find(class_="badge ok").get_text() == "Active"


async def test_field_errors_are_next_to_their_fields_and_values_kept(
        admin: Admin, services: Services) -> None:
    response = await admin.post(BASE + "/new", data={
        **NEW, "name": "  ", "value": "ten rupees", "validity_days": "400"})
    assert response.status == 422
    page = soup(await response.text())
    assert "Give the offer a name" in field_error(page, "name")
    assert "in rupees with digits" in field_error(page, "value")
    assert "from 1 to 365" in field_error(page, "validity_days")
    assert page.find(id="offer-usage_limit-error") is None
    assert page.find("input", id="offer-value")["value"] == "ten rupees"
    assert page.find("input", id="offer-validity_days")["value"] == "400"
    assert "fix the 3 fields" in words(page.find(role="alert"))
    # The service's own rules, said in the form's units.
    refused = soup(await (await admin.post(BASE + "/new", data={
        **NEW, "discount_type": "percentage", "value": "150", "max_discount": "0"})).text())
    assert "whole percent from 1 to 100" in field_error(refused, "value")
    assert "cap above ₹0" in field_error(refused, "max_discount")
    capped = soup(await (await admin.post(BASE + "/new", data={
        **NEW, "max_discount": "50"})).text())
    assert "only to a percentage" in field_error(capped, "max_discount")
    assert page.find("input", attrs={"name": "discount_type", "value": "fixed"}).has_attr(
        "checked")
    assert await services.pool.fetchval("SELECT count(*) FROM welcome_offers") == 0


async def test_the_service_refusal_is_mapped_to_fields(admin: Admin, services: Services) -> None:
    # A name over 255 characters passes the form's reading and is refused by the service.
    response = await admin.post(BASE + "/new", data={**NEW, "name": "x" * 300})
    assert response.status == 422
    assert "at most 255 characters" in field_error(soup(await response.text()), "name")
    assert await services.pool.fetchval("SELECT count(*) FROM welcome_offers") == 0


async def test_edit_changes_the_offer(admin: Admin, services: Services, salon: str) -> None:
    offer_id = await add_offer(services.pool, salon, value=10000)
    form = await admin.page(f"{BASE}/{offer_id}/edit")
    assert form.find("input", id="offer-value")["value"] == "100"
    assert form.find("input", attrs={"name": "is_active"}).has_attr("checked")
    saved = await admin.post(f"{BASE}/{offer_id}/edit", htmx=False, csrf=False, data={
        **NEW, "csrf": admin.csrf, "name": "Bigger welcome", "value": "150.25",
        "minimum_bill": "1,000", "usage_limit": "3", "is_active": "on"})
    assert saved.status == 303, await saved.text()
    row = await services.pool.fetchrow("SELECT * FROM welcome_offers WHERE id = $1", offer_id)
    assert (row["name"], row["discount_value"], row["minimum_purchase_in_paisa"],
            row["usage_limit"], row["is_active"]) == ("Bigger welcome", 15025, 100000, 3, 1)
    # A bad edit keeps the row as it was and says why, next to the field.
    bad = await admin.post(f"{BASE}/{offer_id}/edit", data={**NEW, "usage_limit": "0",
                                                            "is_active": "on"})
    assert bad.status == 422
    assert "1 or more" in field_error(soup(await bad.text()), "usage_limit")
    assert await services.pool.fetchval(
        "SELECT usage_limit FROM welcome_offers WHERE id = $1", offer_id) == 3
    # Another salon's offer is not found.
    other = await services.pool.fetchval("INSERT INTO salons (name) VALUES ('O') RETURNING id")
    theirs = await add_offer(services.pool, other)
    assert (await admin.get(f"{BASE}/{theirs}/edit")).status == 404


async def test_deactivate_asks_first(admin: Admin, services: Services, salon: str) -> None:
    offer_id = await add_offer(services.pool, salon)
    question = await admin.get(f"{BASE}/{offer_id}/deactivate", htmx=True)
    confirm = soup(await question.text())
    assert "Deactivate Welcome?" in " ".join(confirm.find(role="group").get_text().split())
    assert confirm.find("button", string="Cancel") is not None
    unconfirmed = await admin.post(f"{BASE}/{offer_id}/deactivate", data={})
    assert unconfirmed.headers["HX-Retarget"] == f"#offer-actions-{offer_id}"
    assert await services.pool.fetchval(
        "SELECT is_active FROM welcome_offers WHERE id = $1", offer_id) == 1
    done = await admin.post(f"{BASE}/{offer_id}/deactivate", data={"confirm": "yes"})
    row = soup(await done.text()).find("tr", id=f"offer-{offer_id}")
    assert done.status == 200
    assert row.find(class_="badge").get_text() == "Inactive"
    assert row.find("button", string="Deactivate") is None
    assert await services.pool.fetchval(
        "SELECT is_active FROM welcome_offers WHERE id = $1", offer_id) == 0
    listed = await admin.page(BASE)
    assert "Inactive" in words(listed.find("tr", id=f"offer-{offer_id}"))
    # Without htmx: a confirmation page, then back to the list.
    again = await add_offer(services.pool, salon)
    page = await admin.page(f"{BASE}/{again}/deactivate")
    assert page.find("form", action=f"{BASE}/{again}/deactivate") is not None
    plain = await admin.post(f"{BASE}/{again}/deactivate", htmx=False, csrf=False,
                             data={"csrf": admin.csrf, "confirm": "yes"})
    assert plain.status == 303
    assert "is now inactive" in words((await admin.page(plain.headers["Location"])).find(
        class_="alert"))


async def test_posts_without_the_csrf_token_are_refused(admin: Admin, services: Services,
                                                        salon: str) -> None:
    offer_id = await add_offer(services.pool, salon)
    for path, data in ((BASE + "/new", NEW), (f"{BASE}/{offer_id}/edit", NEW),
                       (f"{BASE}/{offer_id}/deactivate", {"confirm": "yes"})):
        assert (await admin.post(path, data=data, csrf=False)).status == 403, path
        assert (await admin.post(path, data=data, csrf=False, htmx=False)).status == 403, path
    assert await services.pool.fetchval("SELECT count(*) FROM welcome_offers") == 1
    assert await services.pool.fetchval("SELECT is_active FROM welcome_offers") == 1


async def test_the_preview_says_what_customers_read(admin: Admin) -> None:
    async def line(**values: str) -> str:
        response = await admin.get(BASE + "/preview", htmx=True, params=values)
        return words(soup(await response.text()))

    assert await line(discount_type="fixed", value="100") == "Customers will read: ₹100"
    assert await line(discount_type="percentage", value="15", max_discount="200") == (
        "Customers will read: 15% up to ₹200")
    assert await line(discount_type="percentage", value="15", minimum_bill="500") == (
        "Customers will read: 15% on bills of ₹500 or more")
    assert "enter the discount" in await line(discount_type="fixed", value="")
    form = (await admin.page(BASE + "/new")).find("form", class_="offer-form")
    assert form["hx-get"] == "/admin/offers/preview" and "csrf" not in form["hx-params"]


async def test_a_script_in_an_offer_name_is_text(admin: Admin, services: Services) -> None:
    evil = "<script>alert(1)</script>"
    await admin.post(BASE + "/new", data={**NEW, "name": evil})
    html = await (await admin.get(BASE)).text()
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_an_unknown_kind_of_discount_is_named_next_to_it(admin: Admin,
                                                               services: Services) -> None:
    response = await admin.post(BASE + "/new", data={**NEW, "discount_type": "bogus"})
    assert response.status == 422
    page = soup(await response.text())
    assert "Choose a fixed amount or a percentage" in field_error(page, "discount_type")
    assert page.find("fieldset")["aria-describedby"] == "offer-discount_type-error"
    assert "Choose a fixed amount" in words(page.find(id="offer-preview"))
    assert await services.pool.fetchval("SELECT count(*) FROM welcome_offers") == 0
    preview = await admin.get(BASE + "/preview", htmx=True,
                              params={"discount_type": "bogus", "value": "100"})
    assert preview.status == 200
    said = words(soup(await preview.text()))
    assert said == "Customers will read: nothing yet. Choose a fixed amount or a percentage."


async def test_the_preview_never_shows_an_offer_the_service_would_refuse(admin: Admin) -> None:
    async def line(**values: str) -> str:
        response = await admin.get(BASE + "/preview", htmx=True, params=values)
        assert response.status == 200
        return words(soup(await response.text()))

    too_much = await line(discount_type="percentage", value="500")
    assert too_much == ("Customers will read: nothing yet. Enter a whole percent from 1 to 100, "
                        "such as 15.")
    zero = await line(discount_type="fixed", value="0")
    assert zero.startswith("Customers will read: nothing yet. Enter an amount above ₹0")
    capped = await line(discount_type="fixed", value="100", max_discount="50")
    assert capped.startswith("Customers will read: nothing yet. A cap applies only to a")
    no_cap = await line(discount_type="percentage", value="15", max_discount="0")
    assert no_cap.startswith("Customers will read: nothing yet. Enter a cap above ₹0")
    # A form the service takes is still said as customers read it.
    assert await line(discount_type="percentage", value="100") == "Customers will read: 100%"


async def test_a_nul_character_in_the_name_is_named_next_to_it(
        admin: Admin, services: Services, salon: str) -> None:
    created = await admin.post(BASE + "/new", data={**NEW, "name": "Wel\x00come"})
    assert created.status == 422
    assert "invisible character" in field_error(soup(await created.text()), "name")
    offer_id = await add_offer(services.pool, salon)
    edited = await admin.post(f"{BASE}/{offer_id}/edit", data={**NEW, "name": "\x00",
                                                               "is_active": "on"})
    assert edited.status == 422
    assert "invisible character" in field_error(soup(await edited.text()), "name")
    assert await services.pool.fetchval("SELECT name FROM welcome_offers") == "Welcome"
