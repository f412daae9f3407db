"""Admin UI page tests: the real app on the test database, signed in as a salon admin."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from bs4 import BeautifulSoup

from onboardd.auth import TokenCodec


class Admin:
    """A browser-like client signed in to the admin UI: sends the CSRF token like the pages do
    and reads pages with BeautifulSoup."""

    def __init__(self, client: TestClient[Any, Any], csrf: str) -> None:
        self.client = client
        self.csrf = csrf

    async def get(self, path: str, *, htmx: bool = False, **kw: Any) -> ClientResponse:
        headers = {"HX-Request": "true"} if htmx else {}
        return await self.client.get(path, headers=headers, allow_redirects=False, **kw)

    async def post(self, path: str, data: Any = None, *, htmx: bool = True,
                   csrf: bool = True, **kw: Any) -> ClientResponse:
        headers = dict(kw.pop("headers", {}))
        if htmx:
            headers["HX-Request"] = "true"
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        return await self.client.post(path, data=data, headers=headers, allow_redirects=False,
                                      **kw)

    async def page(self, path: str, status: int = 200, **kw: Any) -> BeautifulSoup:
        """GET a page, check its status, parse it."""
        response = await self.get(path, **kw)
        body = await response.text()
        assert response.status == status, body[:2000]
        return BeautifulSoup(body, "html.parser")


def soup(html: str) -> BeautifulSoup:
    """Parse HTML."""
    return BeautifulSoup(html, "html.parser")


def words(node: Any) -> str:
    """The visible text of a node, whitespace collapsed."""
    return " ".join(node.get_text(" ").split())


async def sign_in(client: TestClient[Any, Any], token: str) -> Admin:
    """Sign in through the printed-link form of the login, read the page's CSRF token."""
    response = await client.get("/admin/login", params={"token": token}, allow_redirects=False)
    assert response.status == 303, await response.text()
    page = await client.get("/admin/dashboard", allow_redirects=False)
    html = await page.text()
    field = soup(html).find("input", attrs={"name": "csrf"})
    assert field is not None
    return Admin(client, str(field["value"]))


@pytest.fixture
async def admin(client: TestClient[Any, Any], tokens: TokenCodec, salon: str
                ) -> Admin:
    """Signed in as an admin of `salon`."""
    return await sign_in(client, tokens.encode("admin-1", "admin", [salon], 3600))
