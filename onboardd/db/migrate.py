"""Numbered forward-only migrations from sql/migrations, applied under an advisory lock."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
import msgspec

from onboardd.db.queries import SQL_DIR
from onboardd.logging import get_logger

log = get_logger("migrate")

# Any constant works; it only has to be the same in every onboardd instance.
_LOCK_KEY = 0x6F6E626F61726464  # "onboardd"
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class Migration(msgspec.Struct, frozen=True):
    version: int
    name: str
    path: Path


def available(directory: Path = SQL_DIR / "migrations") -> list[Migration]:
    """The migration files, ordered; a repeated number is an error."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if not match:
            raise ValueError(f"{path.name}: migration files are named NNNN_description.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migration files share a number: {versions}")
    return found


async def applied_versions(conn: asyncpg.Connection) -> set[int]:
    """Versions recorded as applied (empty when the bookkeeping table does not exist)."""
    exists = await conn.fetchval("SELECT to_regclass('onboardd_schema_migrations') IS NOT NULL")
    if not exists:
        return set()
    rows = await conn.fetch("SELECT version FROM onboardd_schema_migrations")
    return {row["version"] for row in rows}


async def pending(conn: asyncpg.Connection) -> list[Migration]:
    """Migrations not yet applied."""
    done = await applied_versions(conn)
    return [m for m in available() if m.version not in done]


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply pending migrations, each in its own transaction; returns the versions applied."""
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS onboardd_schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied: list[int] = []
        for migration in await pending(conn):
            async with conn.transaction():
                await conn.execute(migration.path.read_text())
                await conn.execute(
                    "INSERT INTO onboardd_schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version, migration.name,
                )
            log.info("migration_applied", version=migration.version, name=migration.name)
            applied.append(migration.version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
