"""Numbered forward-only migrations from the package's sql/migrations, applied under an
advisory lock."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources.abc import Traversable

import asyncpg

from onboardd.db.queries import InstallationError, sql_root
from onboardd.logging import get_logger

log = get_logger("migrate")

# Any constant works; it only has to be the same in every onboardd instance.
_LOCK_KEY = 0x6F6E626F61726464  # "onboardd"
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    source: Traversable


def scan(directory: Traversable) -> list[Migration]:
    """The migration files of a folder, ordered; none at all, a badly named file or a repeated
    number is an error naming the folder."""
    files = [f for f in directory.iterdir() if f.name.endswith(".sql")] \
        if directory.is_dir() else []
    found: list[Migration] = []
    for source in sorted(files, key=lambda f: f.name):
        match = _FILE_RE.match(source.name)
        if not match:
            raise InstallationError(
                f"{source}: migration files are named NNNN_description.sql")
        found.append(Migration(int(match.group(1)), match.group(2), source))
    if not found:
        raise InstallationError(f"no migrations found in {directory}: the installation is "
                                "incomplete (reinstall onboardd from a complete wheel)")
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise InstallationError(f"two migration files in {directory} share a number: {versions}")
    return found


@cache
def available() -> tuple[Migration, ...]:
    """The migrations shipped in the package, ordered (read once)."""
    return tuple(scan(sql_root() / "migrations"))


def newest_version() -> int:
    """The version of the newest migration shipped in the package."""
    return available()[-1].version


async def applied_versions(conn: asyncpg.Connection) -> set[int]:
    """Versions recorded as applied (empty when the bookkeeping table does not exist)."""
    exists = await conn.fetchval("SELECT to_regclass('onboardd_schema_migrations') IS NOT NULL")
    if not exists:
        return set()
    rows = await conn.fetch("SELECT version FROM onboardd_schema_migrations")
    return {row["version"] for row in rows}


async def pending(conn: asyncpg.Connection) -> list[Migration]:
    """Migrations not yet applied."""
    return _not_applied(await applied_versions(conn))


def _not_applied(done: set[int]) -> list[Migration]:
    return [m for m in available() if m.version not in done]


async def schema_problem(conn: asyncpg.Connection) -> str | None:
    """Why the database does not match this package's schema, or None when it does: every
    shipped migration applied and the newest applied one is the package's newest."""
    done = await applied_versions(conn)
    left = _not_applied(done)
    if left:
        return f"{len(left)} not applied: " + ", ".join(
            f"{m.version:04d}_{m.name}" for m in left)
    at, newest = max(done, default=0), newest_version()
    if at != newest:
        return (f"the database is at version {at}, newer than this package's newest migration "
                f"{newest}: upgrade onboardd")
    return None


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
                await conn.execute(migration.source.read_text(encoding="utf-8"))
                await conn.execute(
                    "INSERT INTO onboardd_schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version, migration.name,
                )
            log.info("migration_applied", version=migration.version, name=migration.name)
            applied.append(migration.version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
