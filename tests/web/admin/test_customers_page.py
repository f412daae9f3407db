"""The customers page: list, search, status filter and pages; masked phones and the logged
reveal; the GDPR erase behind its confirmation; names rendered as text."""

from __future__ import annotations

from typing import Any

import pytest

from onboardd.runtime import Services
from onboardd.services import customers as customers_service
from onboardd.services.errors import ServiceError
from tests.campaign_support import add_customers, phone
from tests.web.admin.conftest import Admin, soup, words

BASE = "/admin/customers"


async def seed(services: Services, salon: str, names: list[str], *, status: str = "pending",
               start: int = 1) -> list[str]:
    """Customers with these names and the numbers phone(start), phone(start + 1), ..."""
    ids = await add_customers(services.pool, services.cipher, salon,
                              [phone(start + i) for i in range(len(names))], status=status)
    await services.pool.execute(
        "UPDATE imported_customers SET customer_name = u.name "
        "FROM unnest($1::varchar[], $2::varchar[]) AS u(id, name) "
        "WHERE imported_customers.id = u.id", ids, names)
    return ids


def row_names(page: Any) -> list[str]:
    return [words(tr.find("td")) for tr in page.select("table.customers tbody tr")]


async def test_no_customers_says_to_import(admin: Admin) -> None:
    page = await admin.page(BASE)
    empty = page.find(class_="empty")
    assert "No customers yet — import your customer file" in words(empty)
    assert empty.find("a", href="/admin/import") is not None
    assert len(page.find_all("h1")) == 1


async def test_list_masks_phones_logs_the_read_and_shows_status_and_consent(
        admin: Admin, services: Services, salon: str) -> None:
    await seed(services, salon, ["Priya Sharma", "Rahul Verma"])
    blocked = await seed(services, salon, ["Anita Desai"], status="opted_out", start=3)
    await services.pool.execute(
        "UPDATE imported_customers SET consent = 'no', opt_out_reason = 'refused', "
        "consent_source = 'Accepts Marketing' WHERE id = $1", blocked[0])
    response = await admin.get(BASE)
    html = await response.text()
    assert response.status == 200
    page = soup(html)
    # Customers imported at the same moment come in any order.
    assert sorted(row_names(page)) == ["Anita Desai", "Priya Sharma", "Rahul Verma"]
    assert sorted(words(td).split()[0] for td in page.select("td.phone")) == [
        "+91******0001", "+91******0002", "+91******0003"]
    for i in (1, 2, 3):  # the whole numbers are nowhere in the page
        assert phone(i)[3:] not in html and phone(i)[-6:] not in html
    anita = words(page.find("tr", id=f"customer-{blocked[0]}"))
    assert "Opted out" in anita and "Refused" in anita and "Accepts Marketing" in anita
    assert page.find("tr", id=f"customer-{blocked[0]}").find(class_="badge bad") is not None
    assert "Showing 1–3 of 3 customers" in words(page.find(id="result-count"))
    logged = await services.pool.fetchrow(
        "SELECT actor, salon_id, record_count, request_id FROM pii_access_log "
        "WHERE action = 'admin_list_customers'")
    assert (logged["actor"], logged["salon_id"], logged["record_count"]) == ("admin-1", salon, 3)
    assert logged["request_id"] == response.headers["X-Request-Id"]


async def test_search_by_name_whole_phone_and_status(admin: Admin, services: Services,
                                                     salon: str) -> None:
    await seed(services, salon, ["Priya Sharma", "Rahul Verma", "Priyanka Rao"])
    await seed(services, salon, ["Deepa Nair"], status="registered", start=4)
    assert sorted(row_names(await admin.page(BASE + "?search=PRIYA"))) == ["Priya Sharma",
                                                                            "Priyanka Rao"]
    # A whole number in another format finds its customer; part of a number finds nothing.
    assert row_names(await admin.page(BASE, params={"search": "98000 00002"})) == ["Rahul Verma"]
    assert row_names(await admin.page(BASE, params={"search": "+91 98000-00002"})) == [
        "Rahul Verma"]
    assert row_names(await admin.page(BASE + "?status=registered")) == ["Deepa Nair"]
    both = await admin.page(BASE, params={"search": "priya", "status": "registered"})
    assert row_names(both) == []
    assert "No customers match “priya” with the status “Registered”" in words(
        both.find(class_="empty"))
    clear = both.find(class_="empty").find("a", string="Clear the search")
    assert clear["href"] == "/admin/customers"
    # The form keeps what was asked.
    assert both.find("input", id="customer-search")["value"] == "priya"
    assert both.find("option", value="registered").has_attr("selected")


async def test_htmx_search_returns_the_results_and_the_count(admin: Admin, services: Services,
                                                              salon: str) -> None:
    await seed(services, salon, ["Priya Sharma", "Rahul Verma"])
    response = await admin.client.get(BASE, params={"search": "rahul"}, headers={
        "HX-Request": "true", "HX-Target": "results"})
    html = await response.text()
    assert response.status == 200
    assert "<html" not in html and "<h1" not in html
    fragment = soup(html)
    assert row_names(fragment) == ["Rahul Verma"]
    count = fragment.find(id="result-count")
    assert count["hx-swap-oob"] == "innerHTML"
    assert "Showing 1–1 of 1 customer matching" in words(count)
    # A history restore asks for the whole page.
    restore = await admin.client.get(BASE, params={"search": "rahul"}, headers={
        "HX-Request": "true", "HX-Target": "results", "HX-History-Restore-Request": "true"})
    assert "<h1>Customers</h1>" in await restore.text()
    # The form works as a plain GET form too, and is enhanced with htmx.
    form = (await admin.page(BASE)).find("form", role="search")
    assert (form["method"], form["action"]) == ("get", BASE)
    assert (form["hx-get"], form["hx-target"], form["hx-push-url"]) == (BASE, "#results",
                                                                          "true")


async def test_pages_keep_the_filters(admin: Admin, services: Services, salon: str) -> None:
    await seed(services, salon, [f"Client {i:02d}" for i in range(45)])
    await seed(services, salon, ["Someone Else"], status="invited", start=100)
    first = await admin.page(BASE + "?status=pending")
    assert len(row_names(first)) == 20
    pager = first.find("nav", class_="pager")
    assert "Page 1 of 3" in words(pager)
    assert pager.find("a", rel="next")["href"] == "/admin/customers?status=pending&page=2"
    assert pager.find("a", rel="prev") is None
    middle = await admin.page(BASE + "?status=pending&page=2")
    last = await admin.page(BASE + "?status=pending&page=3")
    assert len(row_names(last)) == 5
    assert sorted(row_names(first) + row_names(middle) + row_names(last)) == [
        f"Client {i:02d}" for i in range(45)]
    assert "Page 3 of 3" in words(last.find("nav", class_="pager"))
    assert "Showing 41–45 of 45 customers matching" in words(last.find(id="result-count"))
    assert last.find("a", rel="prev")["hx-get"] == "/admin/customers?status=pending&page=2"
    # Past the end: the last page.
    assert "Page 3 of 3" in words((await admin.page(BASE + "?status=pending&page=9")).find(
        "nav", class_="pager"))
    assert "Page 1 of 3" in words((await admin.page(BASE + "?page=abc&status=pending")).find(
        "nav", class_="pager"))


async def test_a_too_long_search_is_named_next_to_its_field(admin: Admin) -> None:
    page = await admin.page(BASE, status=422, params={"search": "x" * 101})
    field = page.find("input", id="customer-search")
    assert field["aria-invalid"] == "true"
    error = page.find(id="customer-search-error")
    assert "at most 100 characters" in words(error)
    assert "customer-search-error" in field["aria-describedby"]


async def test_reveal_shows_the_number_and_is_logged(admin: Admin, services: Services,
                                                     salon: str) -> None:
    [priya] = await seed(services, salon, ["Priya Sharma"])
    response = await admin.post(f"{BASE}/{priya}/reveal")
    html = await response.text()
    assert response.status == 200, html
    assert phone(1) in html and "<html" not in html
    logged = await services.pool.fetch(
        "SELECT actor, salon_id, record_count, details, request_id FROM pii_access_log "
        "WHERE action = 'reveal_phone'")
    assert len(logged) == 1
    assert (logged[0]["actor"], logged[0]["salon_id"], logged[0]["record_count"]) == (
        "admin-1", salon, 1)
    assert logged[0]["details"] == {"customerId": priya}
    assert logged[0]["request_id"] == response.headers["X-Request-Id"]
    # Without htmx (a plain form with the CSRF field): a page with the number, logged again.
    plain = await admin.post(f"{BASE}/{priya}/reveal", data={"csrf": admin.csrf}, htmx=False,
                             csrf=False)
    page = soup(await plain.text())
    assert plain.status == 200
    assert phone(1) in words(page.find("main"))
    assert await services.pool.fetchval(
        "SELECT count(*) FROM pii_access_log WHERE action = 'reveal_phone'") == 2
    # The list's reveal button is a POST form aimed at its cell.
    form = (await admin.page(BASE)).find("form", action=f"{BASE}/{priya}/reveal")
    assert form["method"] == "post" and form["hx-post"] == f"{BASE}/{priya}/reveal"


async def test_reveal_of_another_salons_customer_is_not_found(
        admin: Admin, services: Services, salon: str) -> None:
    other = await services.pool.fetchval("INSERT INTO salons (name) VALUES ('Other') RETURNING id")
    [theirs] = await seed(services, other, ["Not Yours"])
    response = await admin.post(f"{BASE}/{theirs}/reveal")
    assert response.status == 404
    assert phone(1) not in await response.text()
    assert await services.pool.fetchval(
        "SELECT count(*) FROM pii_access_log WHERE action = 'reveal_phone'") == 0


async def test_erase_asks_first_then_erases(admin: Admin, services: Services,
                                            salon: str) -> None:
    [priya, rahul] = await seed(services, salon, ["Priya Sharma", "Rahul Verma"])
    pool = services.pool
    # The Erase button asks; nothing is erased yet.
    question = await admin.get(f"{BASE}/{priya}/erase", htmx=True)
    confirm = soup(await question.text())
    assert question.status == 200
    assert ("Erase Priya Sharma and their messages? This cannot be undone."
            in words(confirm.find(role="group")))
    assert confirm.find("button", string="Erase for good") is not None
    assert confirm.find("button", string="Cancel")["hx-get"] == f"{BASE}/{priya}/actions"
    assert await pool.fetchval("SELECT count(*) FROM imported_customers") == 2
    # A POST without the confirmation's field only asks again.
    unconfirmed = await admin.post(f"{BASE}/{priya}/erase", data={})
    assert "This cannot be undone" in await unconfirmed.text()
    assert await pool.fetchval("SELECT count(*) FROM imported_customers") == 2
    # Confirmed: the customer is gone and the row says so.
    erased = await admin.post(f"{BASE}/{priya}/erase", data={"confirm": "yes"})
    row = soup(await erased.text())
    assert erased.status == 200
    assert "Priya Sharma was erased" in words(row.find("tr", id=f"customer-{priya}"))
    assert await pool.fetchval("SELECT count(*) FROM imported_customers WHERE id = $1",
                               priya) == 0
    assert await pool.fetchval("SELECT count(*) FROM pii_access_log WHERE action = 'erase'") == 1
    # Cancel gives the buttons back.
    cancel = soup(await (await admin.get(f"{BASE}/{rahul}/actions", htmx=True)).text())
    assert cancel.find("button", id=f"erase-{rahul}") is not None
    # Without htmx: a confirmation page, then a redirect back to the list with its filters.
    page = await admin.page(f"{BASE}/{rahul}/erase?search=rahul")
    form = page.find("form", action=f"{BASE}/{rahul}/erase")
    assert form.find("input", attrs={"name": "search"})["value"] == "rahul"
    plain = await admin.post(f"{BASE}/{rahul}/erase", htmx=False, csrf=False, data={
        "csrf": admin.csrf, "confirm": "yes", "search": "rahul"})
    assert plain.status == 303
    assert plain.headers["Location"] == f"{BASE}?search=rahul&erased=1"
    assert await pool.fetchval("SELECT count(*) FROM imported_customers") == 0
    # Erasing someone already gone says so in words.
    again = await admin.post(f"{BASE}/{rahul}/erase", data={"confirm": "yes"})
    assert again.status == 404
    assert "no longer in the list" in await again.text()


async def test_a_conflict_on_erase_is_shown_in_words(
        admin: Admin, services: Services, salon: str, monkeypatch: pytest.MonkeyPatch) -> None:
    [priya] = await seed(services, salon, ["Priya Sharma"])

    async def busy(*_args: Any, **_kw: Any) -> None:
        raise ServiceError("conflict", "an import is running for this salon: erase the "
                           "customer when it has finished")

    monkeypatch.setattr(customers_service, "erase", busy)
    response = await admin.post(f"{BASE}/{priya}/erase", data={"confirm": "yes"})
    assert response.status == 409
    assert response.headers["HX-Retarget"] == f"#customer-actions-{priya}"
    alert = soup(await response.text()).find(role="alert")
    assert "an import is running for this salon" in words(alert)
    assert await services.pool.fetchval("SELECT count(*) FROM imported_customers") == 1


async def test_posts_without_the_csrf_token_are_refused(admin: Admin, services: Services,
                                                        salon: str) -> None:
    [priya] = await seed(services, salon, ["Priya Sharma"])
    for path, data in ((f"{BASE}/{priya}/reveal", {}),
                       (f"{BASE}/{priya}/erase", {"confirm": "yes"})):
        response = await admin.post(path, data=data, csrf=False)
        assert response.status == 403, path
        assert phone(1) not in await response.text()
    assert await services.pool.fetchval("SELECT count(*) FROM imported_customers") == 1
    assert await services.pool.fetchval(
        "SELECT count(*) FROM pii_access_log WHERE action IN ('reveal_phone', 'erase')") == 0


async def test_a_script_in_a_name_is_text(admin: Admin, services: Services, salon: str) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    [cid] = await seed(services, salon, [evil])
    response = await admin.get(BASE)
    html = await response.text()
    assert evil not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    page = soup(html)
    assert all("alert" not in (s.string or "") for s in page.find_all("script"))
    assert page.find("img") is None
    assert words(page.find(id=f"customer-name-{cid}")) == evil
    question = await admin.get(f"{BASE}/{cid}/erase", htmx=True)
    assert evil not in await question.text()


async def test_a_phone_search_is_never_pushed_into_the_address(
        admin: Admin, services: Services, salon: str) -> None:
    await seed(services, salon, ["Priya Sharma", "Rahul Verma"])
    htmx = {"HX-Request": "true", "HX-Target": "results"}
    for search in ("98000 00002", "+91 98000-00002", "980000", "rahul 9800000002"):
        response = await admin.client.get(BASE, params={"search": search}, headers=htmx)
        assert response.status == 200, search
        # htmx reads this header before the element's hx-push-url and then pushes nothing.
        assert response.headers.get("HX-Push-Url") == "false", search
    assert row_names(soup(await (await admin.client.get(
        BASE, params={"search": "98000 00002"}, headers=htmx)).text())) == ["Rahul Verma"]
    # Even when the search is refused, and on the pages of a phone search.
    refused = await admin.client.get(BASE, params={"search": "9" * 101}, headers=htmx)
    assert refused.status == 422 and refused.headers.get("HX-Push-Url") == "false"
    paged = await admin.client.get(BASE, params={"search": "98000 00002", "page": "2"},
                                   headers=htmx)
    assert paged.headers.get("HX-Push-Url") == "false"
    # A name search (or a few digits) is pushed as the form asks.
    for search in ("rahul", "flat 12b", ""):
        response = await admin.client.get(BASE, params={"search": search}, headers=htmx)
        assert "HX-Push-Url" not in response.headers, search
    # A plain erase from a phone search goes back to the list without the number.
    [rahul] = await services.pool.fetch(
        "SELECT id FROM imported_customers WHERE customer_name = 'Rahul Verma'")
    plain = await admin.post(f"{BASE}/{rahul['id']}/erase", htmx=False, csrf=False, data={
        "csrf": admin.csrf, "confirm": "yes", "search": "98000 00002", "status": "pending"})
    assert plain.status == 303
    assert plain.headers["Location"] == f"{BASE}?status=pending&erased=1"


async def test_a_page_number_in_other_digits_is_the_first_page(
        admin: Admin, services: Services, salon: str) -> None:
    await seed(services, salon, ["Priya Sharma"])
    for raw in ("²", "¹²", "١", "12345678", "-1", " 2"):
        page = await admin.page(BASE, params={"page": raw})
        assert row_names(page) == ["Priya Sharma"], raw


async def test_a_nul_character_in_the_search_is_named_next_to_its_field(
        admin: Admin, services: Services, salon: str) -> None:
    await seed(services, salon, ["Priya Sharma"])
    page = await admin.page(BASE, status=422, params={"search": "pri\x00ya"})
    field = page.find("input", id="customer-search")
    assert field["aria-invalid"] == "true"
    assert "customer-search-error" in field["aria-describedby"]
    assert "invisible character" in words(page.find(id="customer-search-error"))
    fragment = await admin.client.get(BASE, params={"search": "\x00"}, headers={
        "HX-Request": "true", "HX-Target": "results"})
    assert fragment.status == 422
    assert "invisible character" in words(soup(await fragment.text()).find(class_="alert"))
