"""The product as users install it: a wheel built from this tree, installed into a fresh venv
and run from a directory outside the checkout, so nothing of the checkout can be imported.

The wheel carries the admin UI (templates, static files, the vendored libraries with their
licences) and the installed daemon serves it. One whole loop goes over HTTP against a fresh
(empty) database on the test PostgreSQL, with the daemon's built-in Twilio simulator: migrate,
add a salon, import, confirm, offer, campaign sent and delivered, a user registered by the host
app, the offer redeemed at booking.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from python_calamine import CalamineWorkbook

from onboardd.auth import TokenCodec
from tests.conftest import JWT_SECRET, daemon_env, fresh_database
from tests.e2e.daemon import Daemon

ROOT = Path(__file__).resolve().parents[2]
# What a source distribution of the project holds; everything else stays out of the build.
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "var", "*.egg-info",
                                     "__pycache__", ".*_cache", ".hypothesis", "tests")
# Files placed in the built tree only, to show that nested static files and templates ship.
PROBES = ("onboardd/web/static/vendor/probe/probe.min.js",
          "onboardd/web/templates/partials/probe.html")
ADMIN_BASE = "onboardd/web/templates/admin/base.html"
VENDOR = "onboardd/web/static/vendor/"
HTMX = VENDOR + "htmx/htmx.min.js"
SHIPPED_MIGRATIONS = sorted(p.name for p in (ROOT / "sql" / "migrations").glob("*.sql"))

CUSTOMERS_CSV = (
    "Customer Name,Mobile No.,Email\n"
    "Priya Sharma,98765 43210,priya@example.com\n"
    "Rahul Verma,+91-91234-56789,\n"
    "Anita Desai,080 2345 6789,\n"  # a landline: rejected with a reason
    ",99887 76655,\n"  # no name: rejected
)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh venv holding onboardd installed from its wheel (built once).

    ONBOARDD_TEST_SOURCE builds another tree instead (to show the test fails on an old commit).
    """
    source = Path(os.environ.get("ONBOARDD_TEST_SOURCE", ROOT))
    work = tmp_path_factory.mktemp("installed")
    tree = work / "src"
    shutil.copytree(source, tree, ignore=_NOT_SOURCE)
    for probe in PROBES:  # assets in sub-folders, as the admin UI's vendored files will be
        (tree / probe).parent.mkdir(parents=True, exist_ok=True)
        (tree / probe).write_text("probe")
    wheels = work / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(tree)],
         cwd=work, timeout=300)
    (wheel,) = wheels.glob("onboardd-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=work)
    _run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], cwd=work, timeout=600)
    shutil.rmtree(tree)  # nothing but the installed package is left to read from
    return venv / "bin"


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120,
         ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, f"{cmd} exited {result.returncode}:\n{result.stderr}"
    return result


def _env(extra: dict[str, str]) -> dict[str, str]:
    """A clean environment: nothing points back at the checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ONBOARDD_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(extra)
    return env


@pytest.fixture
async def empty_db(pg_uri: str) -> AsyncIterator[str]:
    """A database with no tables at all: only the installed package's SQL can fill it."""
    async with fresh_database(pg_uri, None) as url:
        yield url


async def _until(check: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_installed_package_imports_from_site_packages_only(installed: Path,
                                                               tmp_path: Path) -> None:
    result = _run([str(installed / "python"), "-c",
                   "import onboardd, importlib.resources as r; print(onboardd.__file__); "
                   "print(sorted(p.name for p in (r.files('onboardd.sql') / 'migrations')"
                   ".iterdir()))"], cwd=tmp_path, env=_env({}))
    module_file, migrations = result.stdout.splitlines()
    assert Path(module_file).is_relative_to(installed.parent)
    assert not Path(module_file).is_relative_to(ROOT)
    assert eval(migrations) == SHIPPED_MIGRATIONS  # noqa: S307 - our own repr of a list


def test_the_wheel_carries_every_file_the_package_reads(installed: Path) -> None:
    (site,) = installed.parent.glob("lib/python*/site-packages")
    wanted = [str(p.relative_to(ROOT)) for folder in ("onboardd", "sql")
              for p in (ROOT / folder).rglob("*")
              if p.is_file() and "__pycache__" not in p.parts]
    shipped = {path.replace("sql/", "onboardd/sql/", 1) if path.startswith("sql/") else path
               for path in (*wanted, *PROBES)}
    missing = sorted(path for path in shipped if not (site / path).is_file())
    assert missing == []
    assert (site / "onboardd/sql/queries/offers.sql").read_text() == \
        (ROOT / "sql/queries/offers.sql").read_text()


@pytest.fixture(scope="session")
def wheel(installed: Path) -> Path:
    """The wheel the installed venv came from."""
    (built,) = (installed.parent.parent / "wheels").glob("onboardd-*.whl")
    return built


def test_the_wheel_ships_the_admin_ui_with_the_vendored_files_licences(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        htmx = archive.read(HTMX)
    assert {ADMIN_BASE, HTMX, "onboardd/web/templates/admin/login.html",
            "onboardd/web/static/admin/admin.css", "onboardd/web/static/admin/admin.js"} <= names
    assert htmx == (ROOT / HTMX).read_bytes()
    # Every vendored library of the tree travels with its licence, in its own folder.
    vendored = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / VENDOR).rglob("*")
                if p.suffix in (".js", ".css")}
    assert vendored >= {VENDOR + lib for lib in ("htmx", "alpine", "uplot")}
    assert sorted(f"{v}/LICENSE" for v in vendored if f"{v}/LICENSE" not in names) == []


async def test_installed_daemon_runs_the_whole_loop(installed: Path, empty_db: str,
                                                    tmp_path: Path) -> None:
    env = _env(daemon_env(empty_db, tmp_path / "state"))
    migrated = _run([str(installed / "onboardd"), "migrate"], cwd=tmp_path, env=env)
    pool = await asyncpg.create_pool(empty_db, min_size=1, max_size=2)
    assert pool is not None
    try:
        versions = [r["version"] for r in await pool.fetch(
            "SELECT version FROM onboardd_schema_migrations ORDER BY version")]
        assert versions == [int(name[:4]) for name in SHIPPED_MIGRATIONS]
        # stdout is the command's output alone; its log lines went to stderr.
        assert migrated.stdout == f"migrations applied: the database is at version {versions[-1]}\n"
        assert '"event": "migration_applied"' in migrated.stderr

        added = _run([str(installed / "onboardd"), "salon", "add", "Glamour Studio",
                      "--app-link", "https://app.example.com/glamour"], cwd=tmp_path, env=env)
        salon = added.stdout.strip()
        assert added.stdout == f"{salon}\n"  # only the id, for scripts: SALON=$(onboardd ...)
        assert await pool.fetchval("SELECT name FROM salons WHERE id = $1", salon) == \
            "Glamour Studio"
        listed = _run([str(installed / "onboardd"), "salon", "list"], cwd=tmp_path, env=env)
        assert salon in listed.stdout and "Glamour Studio" in listed.stdout

        daemon = Daemon(env, tmp_path, command=[str(installed / "onboardd")])
        try:
            await asyncio.to_thread(daemon.wait_ready, 60)
            await _admin_ui_is_served(daemon.base_url, installed, salon)
            await _drive_the_loop(daemon.base_url, pool, salon)
            assert daemon.stop() == 0
        finally:
            if daemon.proc.poll() is None:
                daemon.kill()
        log = daemon.log()
        assert "Traceback" not in log and "no SQL query named" not in log
        # An external database: no demo salon is made and no token is printed.
        assert await pool.fetchval("SELECT count(*) FROM salons") == 1
        assert "Admin token" not in log
    finally:
        await pool.close()


async def _admin_ui_is_served(base: str, installed: Path, salon: str) -> None:
    """The admin UI's login page from the installed package's templates, htmx from its static
    files under a content-hashed address, gzipped and cached for good; the printed-link way
    of signing in redirects away from the token."""
    (site,) = installed.parent.glob("lib/python*/site-packages")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/admin/login") as resp:
            page = await resp.text()
            assert resp.status == 200, page
            assert resp.content_type == "text/html"
        found = re.search(r'src="(/admin/static/[0-9a-f]{12}/vendor/htmx/htmx\.min\.js)"', page)
        assert found is not None, page
        async with http.get(base + found.group(1), headers={"Accept-Encoding": "gzip"}) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Encoding"] == "gzip"
            assert "immutable" in resp.headers["Cache-Control"]
            assert await resp.read() == (site / HTMX).read_bytes()  # as unpacked by aiohttp
        token = TokenCodec("HS256", JWT_SECRET, JWT_SECRET).encode("admin-1", "admin", [salon],
                                                                   600)
        async with http.get(f"{base}/admin/login", params={"token": token},
                            allow_redirects=False) as resp:
            assert (resp.status, resp.headers["Location"]) == (303, "/admin/dashboard")
            assert "onboardd_admin" in resp.cookies


async def _drive_the_loop(base: str, pool: asyncpg.Pool, salon: str) -> None:
    tokens = TokenCodec("HS256", JWT_SECRET, JWT_SECRET)
    admin = {"Authorization": "Bearer " + tokens.encode("admin-1", "admin", [salon], 3600)}
    api = f"{base}/api/salons/{salon}"
    async with aiohttp.ClientSession(headers=admin) as http:
        form = aiohttp.FormData()
        form.add_field("file", CUSTOMERS_CSV.encode(), filename="clients.csv",
                       content_type="text/csv")
        resp = await http.post(f"{api}/customers/import", data=form)
        preview = await resp.json()
        assert resp.status == 201, preview
        assert preview["totalRows"] == 4
        resp = await http.post(f"{api}/customers/import/{preview['batchId']}/confirm")
        assert resp.status == 202, await resp.text()

        async def imported() -> dict[str, Any] | None:
            async with http.get(f"{api}/customers/import/{preview['batchId']}/status") as r:
                body: dict[str, Any] = await r.json()
            return body if body["status"] == "completed" else None

        status = await _until(imported, "the import to complete")
        assert (status["successfulImports"], status["failedImports"]) == (2, 2)
        assert {e["rowNumber"] for e in status["errors"]} == {4, 5}

        resp = await http.post(f"{api}/welcome-offers", json={
            "name": "First visit", "discountType": "fixed", "discountValue": 20000,
            "minimumPurchaseInPaisa": 50000})
        offer = await resp.json()
        assert resp.status == 201, offer

        resp = await http.post(f"{api}/invitation-campaigns", json={
            "name": "Launch", "channel": "whatsapp", "welcomeOfferId": offer["id"]})
        campaign = await resp.json()
        assert resp.status == 201, campaign
        resp = await http.post(f"{api}/invitation-campaigns/{campaign['id']}/send")
        assert resp.status == 202, await resp.text()

        async def delivered() -> dict[str, Any] | None:
            async with http.get(f"{api}/invitation-campaigns/{campaign['id']}/stats") as r:
                stats: dict[str, Any] = await r.json()
            return stats if stats["delivered"] == 2 and stats["completedAt"] else None

        stats = await _until(delivered, "both invitations to be delivered")
        assert (stats["target"], stats["sent"], stats["failed"]["total"]) == (2, 2, 0)
    rows = await pool.fetch("SELECT status, twilio_message_sid FROM invitation_messages")
    assert len(rows) == 2 and all(r["twilio_message_sid"].startswith("SM") for r in rows)

    # The host app registers Priya, in another phone format; the matcher links her.
    user = await pool.fetchval(
        "INSERT INTO users (phone, name) VALUES ('+919876543210', 'Priya') RETURNING id")

    async def linked() -> bool:
        return bool(await pool.fetchval(
            "SELECT count(*) FROM imported_customers WHERE linked_user_id = $1 "
            "AND status = 'registered'", user))

    await _until(linked, "the registration to be matched")
    booking = await pool.fetchval(
        "INSERT INTO bookings (salon_id, user_id, amount_in_paisa) VALUES ($1, $2, 120000) "
        "RETURNING id", salon, user)
    customer = {"Authorization": "Bearer " + tokens.encode(user, "customer", [], 3600)}
    async with aiohttp.ClientSession(headers=customer) as http:
        resp = await http.post(f"{base}/api/mobile/welcome-offers/redeem", json={
            "offerId": offer["id"], "bookingId": booking, "bookingAmountInPaisa": 120000})
        redeemed = await resp.json()
        assert resp.status == 201, redeemed
        assert redeemed["valid"] is True and redeemed["discount"] == 20000
    row = await pool.fetchrow(
        "SELECT status, booking_id, discount_applied_in_paisa FROM welcome_offer_redemptions "
        "WHERE user_id = $1", user)
    assert dict(row) == {"status": "redeemed", "booking_id": booking,
                         "discount_applied_in_paisa": 20000}

    # The dashboard's numbers, from the installed package's analytics SQL.
    async with aiohttp.ClientSession(headers=admin) as http:
        resp = await http.get(f"{api}/analytics")
        report = await resp.json()
        assert resp.status == 200, report
    assert [s["count"] for s in report["funnel"]] == [2, 2, 2, 1, 1]
    assert report["kpis"]["registeredFromImport"] == 1
    assert (report["kpis"]["offersRedeemed"], report["kpis"]["totalDiscountGiven"]) == (1, 20000)
    assert report["campaigns"][0]["bookingValueInPaisa"] == 120000
    async with aiohttp.ClientSession(headers=admin) as http:
        resp = await http.get(f"{api}/analytics/export.xlsx")
        workbook = await resp.read()
        assert resp.status == 200, workbook[:500]
    sheets = CalamineWorkbook.from_filelike(io.BytesIO(workbook))
    assert sheets.sheet_names == ["Summary", "Funnel", "Daily", "Campaigns", "Customers"]
    assert len(sheets.get_sheet_by_name("Customers").to_python()) == 1 + 2


@pytest.fixture
def hidden(installed: Path) -> Iterator[Callable[[str], Path]]:
    """Temporarily remove a file or folder of the installed onboardd.sql package."""
    (site,) = installed.parent.glob("lib/python*/site-packages")
    moved: list[tuple[Path, Path]] = []

    def hide(relative: str) -> Path:
        path = site / "onboardd" / "sql" / relative
        aside = path.with_name(path.name + ".hidden")
        path.rename(aside)
        moved.append((aside, path))
        return path

    try:
        yield hide
    finally:
        for aside, path in reversed(moved):
            aside.rename(path)


def test_an_incomplete_install_stops_at_start_naming_what_is_missing(
        installed: Path, hidden: Callable[[str], Path], db_url: str, tmp_path: Path) -> None:
    env = _env(daemon_env(db_url, tmp_path / "state"))
    queries = hidden("queries/offers.sql")
    result = subprocess.run([str(installed / "onboardd"), "migrate"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"onboardd: installation error: SQL queries missing from {queries.parent}: ")
    assert "wo_offer_create (used in offers.py)" in result.stderr
    assert "Traceback" not in result.stderr

    migrations = hidden("migrations")
    result = subprocess.run([str(installed / "onboardd"), "serve"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"onboardd: installation error: no migrations found in {migrations}: the installation "
        "is incomplete (reinstall onboardd from a complete wheel)")
