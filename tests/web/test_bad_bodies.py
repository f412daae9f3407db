"""Bad request bodies (issue 16, "Bad input, in general"): 10 MB of JSON, JSON nested 100,000
deep, bodies under the wrong content type, on every JSON endpoint of the admin and mobile API;
upload file names that are paths, and download routes asked for paths. Each gets a clear 4xx
in the one error shape naming the field and the fix, and changes nothing: not a row, not a
file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from tests.web.admin.conftest import sign_in
from tests.web.bad_input import (
    World,
    api_error,
    names,
    private_tmp_fixture,  # noqa: F401  (the private_tmp fixture)
    table_counts,
    world_fixture,  # noqa: F401  (the world fixture)
)

DEEP = 100_000
CSV = "Name,Phone\r\nPriya Sharma,9876543210\r\nRahul Verma,9876543211\r\n"
BOUNDARY = "bad-input-boundary"


def _json_endpoints(world: World, batch: str) -> list[tuple[str, str, dict[str, str], str]]:
    """Every route that reads a JSON body: (method, path, auth headers, a field it takes)."""
    base, admin, mobile = world.base, world.admin, world.customer
    campaign = f"{base}/invitation-campaigns/{world.campaign}"
    return [
        ("POST", f"{base}/welcome-offers", admin, "name"),
        ("PUT", f"{base}/welcome-offers/{world.offer}", admin, "name"),
        ("POST", f"{base}/invitation-campaigns", admin, "audience"),
        ("PUT", campaign, admin, "audience"),
        ("POST", f"{base}/invitation-campaigns/preview", admin, "messageTemplate"),
        ("POST", f"{campaign}/send", admin, "scheduledFor"),
        ("PATCH", f"{base}/settings", admin, "sendingWindow"),
        ("POST", f"{base}/customers/import/{batch}/preview", admin, "mapping"),
        ("POST", f"{base}/customers/import/{batch}/confirm", admin, "mapping"),
        ("POST", "/api/mobile/claim-welcome-offer", mobile, "offerId"),
        ("POST", "/api/mobile/welcome-offers/validate", mobile, "offerId"),
        ("POST", "/api/mobile/welcome-offers/redeem", mobile, "offerId"),
    ]


def _multipart(filename: bytes, *, star: bool = False) -> bytes:
    """An upload whose file part carries exactly this name (filename*= when star: RFC 5987,
    percent-encoded), as a hostile client writes it, not as aiohttp's client would escape it."""
    disposition = (b"filename*=UTF-8''" + filename if star
                   else b'filename="' + filename + b'"')
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; ".encode()
            + disposition + f"\r\nContent-Type: text/csv\r\n\r\n{CSV}\r\n--{BOUNDARY}--\r\n"
            .encode())


MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


async def _batch(world: World) -> str:
    """A stored upload awaiting its confirm (what the import's preview and confirm act on)."""
    resp = await world.client.post(f"{world.base}/customers/import",
                                   data=_multipart(b"customers.csv"),
                                   headers={**world.admin, **MULTIPART})
    assert resp.status == 201, await resp.text()
    batch: str = (await resp.json())["batchId"]
    return batch


async def test_ten_megabyte_json_bodies_are_413_naming_the_limit(world: World) -> None:
    batch = await _batch(world)
    before = await table_counts(world.services.pool)
    big = b'{"name": "' + b"a" * (10 * 1024 * 1024) + b'"}'
    for method, path, auth, _field in _json_endpoints(world, batch):
        resp = await world.client.request(method, path, data=big, headers={
            **auth, "Content-Type": "application/json"})
        error = await api_error(resp, 413, "payload_too_large")
        assert names(error, "body") and error["details"]["limitBytes"] == 1024 * 1024, error
        assert "send a smaller body" in error["message"], error
    assert await table_counts(world.services.pool) == before


async def test_json_nested_100000_deep_is_a_4xx_not_a_crash(world: World) -> None:
    batch = await _batch(world)
    before = await table_counts(world.services.pool)
    arrays = b"[" * DEEP + b"]" * DEEP
    objects = b'{"a":' * DEEP + b"1" + b"}" * DEEP
    for method, path, auth, field in _json_endpoints(world, batch):
        inside = b'{"' + field.encode() + b'": ' + arrays + b"}"
        for body in (arrays, objects, inside):
            resp = await world.client.request(method, path, data=body, headers={
                **auth, "Content-Type": "application/json"})
            error = await api_error(resp, resp.status)
            assert resp.status in (400, 422), (path, body[:20], error)
        # Nested inside a field it takes, the field is the one named.
        assert names(error, field) or error["details"].get("field", "").startswith(field), (
            path, error)
    assert await table_counts(world.services.pool) == before


async def test_bodies_that_are_not_json_are_415_saying_what_to_send(world: World) -> None:
    batch = await _batch(world)
    before = await table_counts(world.services.pool)
    json_text = b'{"name": "Welcome", "offerId": "x"}'
    form = aiohttp.FormData({"name": "Welcome"})
    form.add_field("file", b"x", filename="x.json")
    wrong: list[tuple[Any, dict[str, str]]] = [
        (b"name=Welcome&offerId=x", {"Content-Type": "application/x-www-form-urlencoded"}),
        (json_text, {"Content-Type": "text/plain"}),
        (json_text, {"Content-Type": "application/jsonx"}),
        (json_text, {}),  # no Content-Type at all
        (form, {}),  # multipart
    ]
    for method, path, auth, _field in _json_endpoints(world, batch):
        for data, headers in wrong:
            skip = () if headers or isinstance(data, aiohttp.FormData) else ("Content-Type",)
            resp = await world.client.request(method, path, data=data,
                                              headers={**auth, **headers},
                                              skip_auto_headers=skip)
            error = await api_error(resp, 415, "unsupported_media_type")
            assert "Content-Type: application/json" in error["message"], (path, error)
    assert await table_counts(world.services.pool) == before
    assert await world.services.pool.fetchval(
        "SELECT status FROM invitation_campaigns WHERE id = $1", world.campaign) == "draft"


# -- file names ---------------------------------------------------------------------------------

PATH_NAMES: list[tuple[bytes, bool]] = [
    (b"../../etc/passwd.csv", False),
    (b"/etc/passwd.csv", False),
    (b"..%2F..%2F..%2Ftmp%2Fowned.csv", True),  # filename*=, decoded by the parser
    (b"..%5C..%5Cwindows%5Cwin.csv", True),
    (b"C%3A%5CUsers%5Cpriya%5Ccustomers.csv", True),
    (b"a%00b.csv", True),  # a NUL
    (b"a%0D%0AX-Injected%3A%201.csv", True),  # a line break
    (b"x" * 300 + b".csv", False),
]


def _files(*roots: Path) -> set[Path]:
    return {Path(d, f) for root in roots for d, _, fs in os.walk(root) for f in fs}


async def test_upload_file_names_that_are_paths_are_422_and_nothing_is_written(
        world: World, tmp_path: Path, private_tmp: Path) -> None:
    state = Path(world.services.cfg.paths.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    files_before = _files(tmp_path, Path.cwd() / "tests")
    before = await table_counts(world.services.pool)
    for name, star in PATH_NAMES:
        resp = await world.client.post(f"{world.base}/customers/import",
                                       data=_multipart(name, star=star),
                                       headers={**world.admin, **MULTIPART})
        error = await api_error(resp, 422, "bad_file_name")
        assert names(error, "file"), error
        assert "customers.csv" in error["message"], error  # what to send instead
    # A raw NUL in the part's head is a garbled upload (aiohttp's parser refuses it).
    resp = await world.client.post(f"{world.base}/customers/import",
                                   data=_multipart(b"a\x00b.csv"),
                                   headers={**world.admin, **MULTIPART})
    assert names(await api_error(resp, 400, "malformed_upload"), "file")
    after = await table_counts(world.services.pool)
    # Only the hourly upload counter moved (refusals count against [import] uploads_per_hour).
    assert {k: v for k, v in after.items() if k != "import_uploads"} == {
        k: v for k, v in before.items() if k != "import_uploads"}
    assert _files(tmp_path, Path.cwd() / "tests") == files_before
    assert list(private_tmp.iterdir()) == []
    for planted in ("/etc/passwd.csv", Path(tempfile.gettempdir(), "owned.csv"),
                    "../../etc/passwd.csv"):
        assert not Path(planted).exists(), planted
    # A plain name goes through, and is kept as sent.
    resp = await world.client.post(f"{world.base}/customers/import",
                                   data=_multipart("Clients (März).csv".encode()),
                                   headers={**world.admin, **MULTIPART})
    assert resp.status == 201 and (await resp.json())["fileName"] == "Clients (März).csv"


async def test_a_path_as_file_name_in_the_admin_wizard_is_a_sentence(world: World) -> None:
    tokens = world.services.tokens
    admin = await sign_in(world.client, tokens.encode("admin-1", "admin", [world.salon], 3600))
    before = await table_counts(world.services.pool)
    resp = await admin.post("/admin/import", data=_multipart(b"../../etc/passwd.csv"),
                            headers=MULTIPART)
    html = await resp.text()
    assert resp.status == 422, html[:500]
    assert "folder path" in html and "customers.csv" in html
    after = await table_counts(world.services.pool)
    assert after["customer_import_batches"] == before["customer_import_batches"]


async def test_download_routes_asked_for_paths_are_404(world: World) -> None:
    tokens = world.services.tokens
    batch = await _batch(world)
    for traversal in ("..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "..", "%2E%2E"):
        resp = await world.client.get(
            URL(f"{world.base}/customers/import/{traversal}/errors.csv", encoded=True),
            headers=world.admin)
        await api_error(resp, 404)
    # A NUL in the id: not found, naming the parameter (no id has one).
    resp = await world.client.get(
        URL(f"{world.base}/customers/import/{batch}%00/errors.csv", encoded=True),
        headers=world.admin)
    error = await api_error(resp, 404)
    assert error["details"] == {"parameter": "batchId"} and "NUL" in error["message"]
    admin = await sign_in(world.client, tokens.encode("admin-1", "admin", [world.salon], 3600))
    for path in ("/admin/import/..%2F..%2Fetc%2Fpasswd/errors.csv",
                 "/admin/static/x/..%2F..%2F..%2Fpyproject.toml",
                 "/admin/static/x/%2Fetc%2Fpasswd"):
        resp = await admin.client.get(URL(path, encoded=True), allow_redirects=False)
        body = await resp.read()
        assert resp.status in (303, 404), (path, resp.status)  # a batch not found: to the wizard
        assert b"root:" not in body and b"[project]" not in body
    # A NUL in a page's id: not found, in words.
    resp = await admin.client.get(URL("/admin/campaigns/abc%00def", encoded=True),
                                  allow_redirects=False)
    assert resp.status == 404 and "text/html" in resp.headers["Content-Type"]
    assert "There is no such page" in await resp.text()


async def test_a_body_not_compressed_as_it_says_is_400_not_a_500(world: World) -> None:
    batch = await _batch(world)
    before = await table_counts(world.services.pool)
    routes = [*_json_endpoints(world, batch),
              ("POST", f"{world.base}/customers/import", world.admin, ""),
              ("POST", "/api/webhooks/twilio/inbound", {"X-Twilio-Signature": "x"}, "")]
    for method, path, auth, _field in routes:
        kind = ("application/x-www-form-urlencoded" if "webhooks" in path
                else MULTIPART["Content-Type"] if path.endswith("/import")
                else "application/json")
        for encoding in ("gzip", "deflate"):
            resp = await world.client.request(method, path, data=b"not compressed", headers={
                **auth, "Content-Type": kind, "Content-Encoding": encoding})
            error = await api_error(resp, 400, "bad_request")
            assert names(error, "body") and "Content-Encoding" in error["message"], error
    tokens = world.services.tokens
    admin = await sign_in(world.client, tokens.encode("admin-1", "admin", [world.salon], 3600))
    resp = await admin.post("/admin/offers/new", data=b"name=x", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"})
    assert resp.status == 400 and "could not be read" in await resp.text()
    after = await table_counts(world.services.pool)
    assert {k: v for k, v in after.items() if k != "import_uploads"} == {
        k: v for k, v in before.items() if k != "import_uploads"}
