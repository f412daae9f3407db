"""What the benchmark scripts share: a fresh, migrated database to measure against."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from onboardd.db.migrate import migrate
from tests.conftest import db_url_for


@contextlib.asynccontextmanager
async def bench_database() -> AsyncIterator[str]:
    """A fresh, migrated database on ONBOARDD_TEST_DATABASE_URL's server, or on a temporary
    embedded PostgreSQL; dropped (and the server stopped) afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        base = os.environ.get("ONBOARDD_TEST_DATABASE_URL", "")
        if not base:
            import pgserver

            root = Path(tmp)
            root.chmod(0o755)
            server = pgserver.get_server(root / "data", cleanup_mode="stop")  # type: ignore[attr-defined]
            base = server.get_uri()
        name = "bench_" + uuid.uuid4().hex[:12]
        admin = await asyncpg.connect(base)
        await admin.execute(f"CREATE DATABASE {name}")
        await admin.close()
        url = db_url_for(base, name)
        conn = await asyncpg.connect(url)
        await migrate(conn)
        await conn.close()
        try:
            yield url
        finally:
            admin = await asyncpg.connect(base)
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await admin.close()
            if server is not None:
                server.cleanup()
