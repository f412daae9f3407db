"""Signing in and out, the session cookie, CSRF, security headers, salon scope, static files
and error pages of the admin UI."""

from __future__ import annotations

import gzip
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from aiohttp.test_utils import TestClient

from onboardd.auth import TokenCodec
from onboardd.runtime import Services
from tests.conftest import JWT_SECRET
from tests.web.admin.conftest import Admin, sign_in, soup, words


async def test_no_session_redirects_to_login(client: TestClient[Any, Any]) -> None:
    for path in ("/admin/", "/admin", "/admin/dashboard", "/admin/customers?q=x"):
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/admin/login"), path
    response = await client.get("/admin/customers?q=x", allow_redirects=False)
    location = urlsplit(response.headers["Location"])
    assert location.path == "/admin/login"
    assert parse_qs(location.query) == {"next": ["/admin/customers?q=x"]}
    htmx = await client.get("/admin/customers", headers={"HX-Request": "true"},
                            allow_redirects=False)
    assert htmx.headers["HX-Redirect"].startswith("/admin/login")


async def test_login_link_sets_a_strict_httponly_cookie_and_leaves_the_address(
        client: TestClient[Any, Any], tokens: TokenCodec, salon: str) -> None:
    token = tokens.encode("admin-1", "admin", [salon], 600)
    response = await client.get("/admin/login", params={"token": token, "next": "/admin/offers"},
                                allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/admin/offers"  # no token in the next address
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("onboardd_admin=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    max_age = int(cookie.split("Max-Age=")[1].split(";")[0])
    assert 590 <= max_age <= 600  # the session lives as long as the token
    assert "Secure" not in cookie  # http://testserver
    assert response.headers["Referrer-Policy"] == "same-origin"


async def test_https_base_url_makes_the_cookie_secure(
        client: TestClient[Any, Any], services: Services, tokens: TokenCodec, salon: str
) -> None:
    services.public_base_url = "https://salon.example.com"
    response = await client.get("/admin/login", allow_redirects=False,
                                params={"token": tokens.encode("a", "admin", [salon], 60)})
    assert "Secure" in response.headers["Set-Cookie"]


async def test_login_refuses_a_foreign_next_address(
        client: TestClient[Any, Any], tokens: TokenCodec, salon: str) -> None:
    for evil in ("https://evil.example/admin/x", "//evil.example/admin/", "/api/salons"):
        response = await client.get("/admin/login", allow_redirects=False, params={
            "token": tokens.encode("a", "admin", [salon], 60), "next": evil})
        assert response.headers["Location"] == "/admin/dashboard", evil


async def test_pasted_token_and_refusals_in_words(
        client: TestClient[Any, Any], tokens: TokenCodec, salon: str) -> None:
    form = await client.get("/admin/login")
    page = soup(await form.text())
    assert page.find("textarea", attrs={"name": "token"}) is not None
    assert page.find("label", attrs={"for": "token"}) is not None

    customer = tokens.encode("c1", "customer", [], 60)
    refused = await client.post("/admin/login", data={"token": customer}, allow_redirects=False)
    assert refused.status == 401
    assert "customer token" in words(soup(await refused.text()).find(role="alert"))

    expired = jwt.encode({"sub": "a", "role": "admin", "salons": [salon],
                          "exp": int(time.time()) - 10}, JWT_SECRET, algorithm="HS256")
    late = await client.post("/admin/login", data={"token": expired}, allow_redirects=False)
    assert late.status == 401 and "expired" in await late.text()

    empty = await client.post("/admin/login", data={"token": "  "}, allow_redirects=False)
    assert empty.status == 422 and "Paste the admin token" in await empty.text()

    good = await client.post("/admin/login", data={"token": tokens.encode("a", "admin", [salon],
                                                                          60)},
                             allow_redirects=False)
    assert good.status == 303 and good.headers["Location"] == "/admin/dashboard"
    assert "onboardd_admin=" in good.headers["Set-Cookie"]


async def test_login_from_another_site_is_refused(
        client: TestClient[Any, Any], tokens: TokenCodec, salon: str) -> None:
    response = await client.post("/admin/login", allow_redirects=False,
                                 data={"token": tokens.encode("a", "admin", [salon], 60)},
                                 headers={"Origin": "https://evil.example"})
    assert response.status == 403
    assert "Set-Cookie" not in response.headers


async def test_expired_session_goes_back_to_login(
        client: TestClient[Any, Any], salon: str) -> None:
    expired = jwt.encode({"sub": "a", "role": "admin", "salons": [salon],
                          "exp": int(time.time()) - 10}, JWT_SECRET, algorithm="HS256")
    client.session.cookie_jar.update_cookies({"onboardd_admin": expired})
    response = await client.get("/admin/dashboard", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/admin/login")


async def test_state_changing_requests_need_the_csrf_token(admin: Admin) -> None:
    missing = await admin.post("/admin/logout", csrf=False)
    assert missing.status == 403
    assert "expired or did not come from this page" in words(soup(await missing.text()))
    wrong = await admin.post("/admin/logout", headers={"X-CSRF-Token": "0" * 32}, csrf=False)
    assert wrong.status == 403
    foreign = await admin.post("/admin/logout", headers={"Origin": "https://evil.example"})
    assert foreign.status == 403 and "another site" in await foreign.text()
    # The plain form (no htmx) sends the token as a field.
    form = await admin.post("/admin/logout", data={"csrf": admin.csrf}, htmx=False, csrf=False)
    assert form.status == 303 and form.headers["Location"] == "/admin/login"
    cleared = form.headers.getall("Set-Cookie")
    assert any(c.startswith('onboardd_admin=""') or "onboardd_admin=;" in c for c in cleared)


async def test_logout_ends_the_session(admin: Admin) -> None:
    response = await admin.post("/admin/logout")
    assert response.status == 303
    after = await admin.get("/admin/dashboard")
    assert after.status == 303 and after.headers["Location"].startswith("/admin/login")


async def test_security_headers_on_pages_errors_and_redirects(admin: Admin) -> None:
    for path in ("/admin/dashboard", "/admin/no-such-page", "/admin/login"):
        response = await admin.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
    api = await admin.client.get("/healthz")
    assert "Content-Security-Policy" not in api.headers  # the API is not the UI


async def test_unknown_admin_page_is_a_page_in_words(admin: Admin) -> None:
    response = await admin.get("/admin/no-such-page")
    assert response.status == 404
    assert response.content_type == "text/html"
    text = words(soup(await response.text()))
    assert "There is no such page" in text and "Traceback" not in text


async def test_a_salon_not_in_the_token_gets_the_403_page(
        client: TestClient[Any, Any], tokens: TokenCodec, salon: str, services: Services
) -> None:
    other = await services.pool.fetchval("INSERT INTO salons (name) VALUES ('Other') RETURNING id")
    await sign_in(client, tokens.encode("admin-1", "admin", [salon], 600))
    response = await client.get(f"/admin/customers?salon={other}", allow_redirects=False)
    assert response.status == 403
    assert "does not manage that salon" in await response.text()


async def test_salon_switcher_for_admins_of_several_salons(
        client: TestClient[Any, Any], tokens: TokenCodec, salon: str, services: Services
) -> None:
    second = await services.pool.fetchval(
        "INSERT INTO salons (name) VALUES ('Zeta Spa') RETURNING id")
    signed = await sign_in(client, tokens.encode("admin-1", "admin", [salon, second], 600))
    page = soup(await (await signed.get("/admin/dashboard")).text())
    options = [words(o) for o in page.select("#salon-switch option")]
    assert options == ["Glamour Studio", "Zeta Spa"]
    switched = await signed.post("/admin/salon", data={"salon": second, "csrf": signed.csrf},
                                 htmx=False)
    assert switched.status == 303
    page = soup(await (await signed.get("/admin/dashboard")).text())
    chosen = page.select_one("#salon-switch option[selected]")
    assert chosen is not None and words(chosen) == "Zeta Spa"
    foreign = await signed.post("/admin/salon", data={"salon": "nope", "csrf": signed.csrf},
                                htmx=False)
    assert foreign.status == 403


async def test_static_files_are_hashed_gzipped_and_cached(admin: Admin) -> None:
    page = soup(await (await admin.get("/admin/login")).text())
    scripts = [s["src"] for s in page.find_all("script")]
    assert any("/vendor/htmx/htmx.min.js" in str(s) for s in scripts)
    url = next(str(s) for s in scripts if "htmx.min.js" in str(s))
    response = await admin.client.get(url, headers={"Accept-Encoding": "gzip"},
                                      auto_decompress=False)
    assert response.status == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "immutable" in response.headers["Cache-Control"]
    body = gzip.decompress(await response.read())
    assert b"htmx" in body and b'version:"2.' in body  # pinned to htmx 2
    stale = await admin.client.get(url.replace("/admin/static/", "/admin/static/0") )
    assert stale.status == 200 and stale.headers["Cache-Control"] == "no-cache"
    missing = await admin.client.get("/admin/static/abc/nope.js")
    assert missing.status == 404


async def test_the_api_stays_bearer_only(admin: Admin, salon: str) -> None:
    """The session cookie is scoped to /admin and the API never reads it."""
    for cookie in admin.client.session.cookie_jar:
        assert cookie["path"] == "/admin"
    token = next(c.value for c in admin.client.session.cookie_jar if c.key == "onboardd_admin")
    response = await admin.client.get(f"/api/salons/{salon}/welcome-offers",
                                      headers={"Cookie": f"onboardd_admin={token}"})
    assert response.status == 401
    assert response.content_type == "application/json"


def test_every_script_and_stylesheet_together_stay_small() -> None:
    """The heaviest page loads at most every script and stylesheet there is: their gzip sizes
    together stay far enough under the 250 KB bundle budget to leave room for the HTML
    (tests/bench/bench_admin_pages.py measures each page with its HTML)."""
    from onboardd.web.admin.assets import load_assets

    total = sum(len(a.gzipped or a.body) for path, a in load_assets().items()
                if path.endswith((".js", ".css")))
    assert total < 200 * 1024, total


async def test_htmx_history_restore_gets_the_whole_page(admin: Admin) -> None:
    """Back to an address htmx pushed (not in its cache): htmx asks with HX-Request and swaps
    the whole body, so it must get the whole page, not a fragment."""
    response = await admin.client.get("/admin/no-such-page", headers={
        "HX-Request": "true", "HX-History-Restore-Request": "true"})
    page = soup(await response.text())
    assert page.find("nav") is not None and page.find("h1") is not None
    fragment = await admin.client.get("/admin/no-such-page", headers={"HX-Request": "true"})
    assert soup(await fragment.text()).find("nav") is None


async def test_a_refused_login_link_leaves_the_address_and_says_why(
        client: TestClient[Any, Any], tokens: TokenCodec, salon: str) -> None:
    customer = tokens.encode("c1", "customer", [], 60)
    response = await client.get("/admin/login", params={"token": customer},
                                allow_redirects=False)
    assert response.status == 303
    assert "token" not in response.headers["Location"]  # gone from the address and history
    assert "Set-Cookie" not in response.headers
    page = await client.get(response.headers["Location"], allow_redirects=False)
    assert page.status == 401
    assert "customer token" in words(soup(await page.text()).find(role="alert"))


async def test_a_login_link_opened_from_another_site_signs_nobody_in(
        client: TestClient[Any, Any], tokens: TokenCodec, salon: str) -> None:
    token = tokens.encode("a", "admin", [salon], 60)
    response = await client.get("/admin/login", params={"token": token},
                                headers={"Sec-Fetch-Site": "cross-site"}, allow_redirects=False)
    assert response.status == 303 and "Set-Cookie" not in response.headers
    page = await client.get(response.headers["Location"], allow_redirects=False)
    assert "opened from another site" in await page.text()
    typed = await client.get("/admin/login", params={"token": token},
                             headers={"Sec-Fetch-Site": "none"}, allow_redirects=False)
    assert typed.status == 303 and "onboardd_admin=" in typed.headers["Set-Cookie"]


async def test_salon_in_the_address_is_remembered_so_forms_act_on_it(
        client: TestClient[Any, Any], tokens: TokenCodec, salon: str, services: Services
) -> None:
    second = await services.pool.fetchval(
        "INSERT INTO salons (name) VALUES ('Zeta Spa') RETURNING id")
    signed = await sign_in(client, tokens.encode("admin-1", "admin", [salon, second], 600))
    response = await signed.get(f"/admin/offers?salon={second}&x=1")
    assert response.status == 303
    assert response.headers["Location"] == "/admin/offers?x=1"
    page = soup(await (await signed.get("/admin/offers")).text())
    chosen = page.select_one("#salon-switch option[selected]")
    assert chosen is not None and words(chosen) == "Zeta Spa"
    # A form posted with ?salon= of another salon still acts on the remembered one.
    created = await signed.post(f"/admin/offers/new?salon={salon}", htmx=False, data={
        "name": "Zeta welcome", "discount_type": "fixed", "value": "100", "max_discount": "",
        "minimum_bill": "", "validity_days": "30", "usage_limit": "1", "csrf": signed.csrf})
    assert created.status == 303, await created.text()
    owner = await services.pool.fetchval(
        "SELECT salon_id FROM welcome_offers WHERE name = 'Zeta welcome'")
    assert owner == second


async def test_too_large_and_unstorable_input_are_pages_in_words(admin: Admin) -> None:
    big = await admin.post("/admin/logout", data={"csrf": admin.csrf, "x": "a" * (2 << 20)},
                           htmx=False, csrf=False)
    assert big.status == 413
    assert big.content_type == "text/html"
    assert "too large" in await big.text()
    assert big.headers["X-Frame-Options"] == "DENY"


async def test_an_expired_htmx_request_returns_to_its_page_without_its_query(
        client: TestClient[Any, Any]) -> None:
    """The search of an htmx request (perhaps a phone number) never reaches the login's
    address: the way back is the path of the page the request was made from."""
    response = await client.get("/admin/customers?search=9876543210", allow_redirects=False,
                                headers={"HX-Request": "true", "HX-Current-URL":
                                         "http://testserver/admin/customers?search=98765"})
    assert response.headers["HX-Redirect"] == "/admin/login?next=%2Fadmin%2Fcustomers"
