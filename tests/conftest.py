"""Shared fixtures: one embedded PostgreSQL per session, a migrated template database, a fresh
copy per test that needs isolation, and the daemon's services and web app around it."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from onboardd.auth import TokenCodec
from onboardd.config import Config, load
from onboardd.db.migrate import migrate
from onboardd.db.pool import create_pool
from onboardd.logging import configure
from onboardd.pii import PiiCipher
from onboardd.runtime import Services
from onboardd.simulator.settings import SimulatorSettings
from onboardd.web.app import create_app

TEMPLATE_DB = "onboardd_template"
JWT_SECRET = "test-secret-" + "x" * 40
PII_KEY = base64.b64encode(b"k" * 32).decode()

configure("warning", "json")


def db_url_for(base_uri: str, name: str) -> str:
    """pgserver's URI with another database name."""
    head, _, query = base_uri.partition("?")
    prefix = head.rsplit("/", 1)[0]
    return f"{prefix}/{name}?{query}" if query else f"{prefix}/{name}"


@contextlib.contextmanager
def embedded_server(root: Path) -> Iterator[str]:
    """An embedded PostgreSQL server with its data under `root`; its URI, stopped afterwards
    (the tests' and the benchmarks' one way to start it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is unset
        import pgserver

    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    server = pgserver.get_server(root / "data", cleanup_mode="stop")  # type: ignore[attr-defined]
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def pg_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's embedded PostgreSQL server (or ONBOARDD_TEST_DATABASE_URL)."""
    external = os.environ.get("ONBOARDD_TEST_DATABASE_URL")
    if external:
        yield external
        return
    with embedded_server(tmp_path_factory.mktemp("pg")) as uri:
        yield uri


@pytest.fixture(scope="session")
async def template_db(pg_uri: str) -> str:
    """A migrated database that every test database is copied from."""
    admin = await asyncpg.connect(pg_uri)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        await admin.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(db_url_for(pg_uri, TEMPLATE_DB))
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return TEMPLATE_DB


@contextlib.asynccontextmanager
async def fresh_database(pg_uri: str, template: str | None) -> AsyncIterator[str]:
    """A new database (a copy of `template`, or empty) for the block; yields its URL."""
    name = "t_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(pg_uri)
    try:
        await admin.execute(f"CREATE DATABASE {name}"
                            + (f" TEMPLATE {template}" if template else ""))
    finally:
        await admin.close()
    try:
        yield db_url_for(pg_uri, name)
    finally:
        admin = await asyncpg.connect(pg_uri)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()


@pytest.fixture
async def db_url(pg_uri: str, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database for this test."""
    async with fresh_database(pg_uri, template_db) as url:
        yield url


def daemon_env(db_url: str, state_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a Config (or a daemon subprocess) pointed at a test database."""
    env = {
        "ONBOARDD_DATABASE_URL": db_url,
        "ONBOARDD_PATHS_STATE_DIR": str(state_dir),
        "ONBOARDD_AUTH_JWT_SECRET": JWT_SECRET,
        "ONBOARDD_PII_KEY": PII_KEY,
        "ONBOARDD_DATABASE_START_RETRY_S": "5",
        "ONBOARDD_SUPERVISOR_SHUTDOWN_GRACE_S": "5",
        # External database, no Twilio credentials: the simulator must be chosen explicitly.
        "ONBOARDD_SIMULATOR_ENABLED": "true",
        # Tests send at any hour; the quiet-hours tests set a salon's own window.
        "ONBOARDD_CAMPAIGNS_SENDING_WINDOW_START": "00:00",
        "ONBOARDD_CAMPAIGNS_SENDING_WINDOW_END": "24:00",
    }
    env.update(extra)
    return env


def simulated_twilio_env(db_url: str, state_dir: Path, sim_url: str, sim: SimulatorSettings,
                         **extra: str) -> dict[str, str]:
    """daemon_env in real-Twilio mode pointed at a simulator outside the daemon (so the test
    sees every request it received)."""
    return daemon_env(db_url, state_dir,
                      ONBOARDD_TWILIO_ACCOUNT_SID=sim.account_sid,
                      ONBOARDD_TWILIO_AUTH_TOKEN=sim.auth_token,
                      ONBOARDD_TWILIO_API_BASE_URL=sim_url, **extra)


@pytest.fixture
def make_config(db_url: str, tmp_path: Path) -> Callable[..., Config]:
    """Build a Config for this test's database; keyword args are ONBOARDD_* overrides."""

    def build(**overrides: str) -> Config:
        extra = {f"ONBOARDD_{k.upper()}": v for k, v in overrides.items()}
        return load(None, daemon_env(db_url, tmp_path / "state", **extra))

    return build


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    """The default test configuration."""
    return make_config()


@pytest.fixture
def cipher() -> PiiCipher:
    """The test PII cipher (same key as the config's)."""
    key = base64.b64decode(PII_KEY)
    from onboardd.pii import _derived_hash_key

    return PiiCipher("k1", key, _derived_hash_key(key))


@pytest.fixture
def tokens() -> TokenCodec:
    """The test token codec."""
    return TokenCodec("HS256", JWT_SECRET, JWT_SECRET)


@contextlib.asynccontextmanager
async def services_for(cfg: Config, url: str, cipher: PiiCipher, tokens: TokenCodec,
                       max_size: int = 10) -> AsyncIterator[Services]:
    """Services on a database, without actors, for the block."""
    pool = await create_pool(cfg, url, min_size=1, max_size=max_size)
    svc = Services(cfg=cfg, pool=pool, cipher=cipher, tokens=tokens)
    svc.public_base_url = "http://testserver"
    try:
        yield svc
    finally:
        svc.stopping.set()
        await pool.close()


@pytest.fixture
async def services(config: Config, db_url: str, cipher: PiiCipher, tokens: TokenCodec
                   ) -> AsyncIterator[Services]:
    """Services on the test database, without actors."""
    async with services_for(config, db_url, cipher, tokens) as svc:
        yield svc


@pytest.fixture
async def client(services: Services) -> AsyncIterator[TestClient[Any, Any]]:
    """An HTTP client for the app on a real socket."""
    app = create_app(services)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


AppFor = Callable[..., contextlib.AbstractAsyncContextManager[
    tuple[TestClient[Any, Any], Services]]]


@pytest.fixture
def app_for(make_config: Callable[..., Config], db_url: str, cipher: PiiCipher,
            tokens: TokenCodec) -> AppFor:
    """Start another app (another 'instance') on this test's database: with `cfg`, or with
    ONBOARDD_* overrides of the test config; yields (client, services)."""

    @contextlib.asynccontextmanager
    async def start(cfg: Config | None = None, **overrides: str
                    ) -> AsyncIterator[tuple[TestClient[Any, Any], Services]]:
        svc_cfg = cfg if cfg is not None else make_config(**overrides)
        pool = await create_pool(svc_cfg, db_url, min_size=1, max_size=5)
        svc = Services(cfg=svc_cfg, pool=pool, cipher=cipher, tokens=tokens)
        try:
            async with TestClient(TestServer(create_app(svc))) as test_client:
                yield test_client, svc
        finally:
            svc.stopping.set()
            await pool.close()

    return start


@pytest.fixture
async def salon(services: Services) -> str:
    """A salon row; returns its id."""
    salon_id: str = await services.pool.fetchval(
        "INSERT INTO salons (name, app_download_link) VALUES ($1, $2) RETURNING id",
        "Glamour Studio", "https://app.salonhub.com/s/glamour")
    return salon_id


@pytest.fixture
def admin_headers(tokens: TokenCodec, salon: str) -> dict[str, str]:
    """Authorization header of an admin of `salon`."""
    return {"Authorization": "Bearer " + tokens.encode("admin-1", "admin", [salon], 3600)}


def bearer(tokens: TokenCodec, sub: str, role: str, salons: list[str] | None = None, *,
           phone: str | None = None) -> dict[str, str]:
    """Authorization header for any principal (phone: the verified phone claim)."""
    return {"Authorization": "Bearer " + tokens.encode(sub, role, salons or [], 3600,  # type: ignore[arg-type]
                                                       phone=phone)}


def decode(body: bytes) -> Any:
    """JSON body helper."""
    return msgspec.json.decode(body)


def error_of(status: int, body: bytes, expected: int) -> dict[str, Any]:
    """The error of a refusal: the status expected, the one error shape, nothing more."""
    assert status == expected, body
    data = decode(body)
    assert set(data) == {"error"} and set(data["error"]) == {"code", "message", "details"}
    error: dict[str, Any] = data["error"]
    return error


def random_id() -> str:
    """A short random id."""
    return secrets.token_hex(6)
