"""The asyncpg pool: connect with retry and backoff, typed codecs, a clear error when down.

After start the pool rides out a database restart by itself: a connection the server closed is
seen closed by asyncpg (the socket ended), discarded when it is released or found closed on
acquire, and replaced by a new connection on the next acquire; a call while the server is down
fails at once with one of CONNECTION_ERRORS. The pool never holds more than
``[database] pool_max_size`` connections, before, during and after the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import asyncpg
import msgspec

from onboardd.config import Config
from onboardd.db.embedded import embedded_postgres
from onboardd.logging import get_logger

log = get_logger("db")

Pool = asyncpg.Pool

# Errors meaning "the database is unreachable right now" (down, restarting, out of
# connections, the connection broke): wait and retry (onboardd.actors.outage), and the
# supervisor does not charge them to an actor's restart budget. Every other PostgresError is
# about the statement or its data and will happen again. Seen through an immediate-mode restart
# (tests/integration/test_db_outage.py): no socket (FileNotFoundError; ConnectionRefusedError
# over TCP), "the database system is shutting down" or "starting up" (CannotConnectNowError),
# ConnectionDoesNotExistError for a query cut off, ConnectionResetError for a connect cut off,
# InterfaceError for a call on an acquired connection the server closed (asyncpg has already
# given it back to the pool); a smart or fast shutdown ends sessions with AdminShutdownError.
CONNECTION_ERRORS: Final = (OSError, TimeoutError, asyncpg.InterfaceError,
                            asyncpg.PostgresConnectionError,
                            asyncpg.exceptions.CannotConnectNowError,
                            asyncpg.exceptions.AdminShutdownError,
                            asyncpg.exceptions.CrashShutdownError,
                            asyncpg.exceptions.TooManyConnectionsError)


def unreachable(exc: BaseException) -> bool:
    """True when exc (or every exception of a group) says the database is unreachable."""
    if isinstance(exc, BaseExceptionGroup):
        return all(unreachable(inner) for inner in exc.exceptions)
    return isinstance(exc, CONNECTION_ERRORS)


class DatabaseUnavailable(Exception):
    """The database could not be reached within the start-up retry window."""


def _json_encode(value: Any) -> str:
    return msgspec.json.encode(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=_json_encode, decoder=msgspec.json.decode,
                              schema="pg_catalog")
    await conn.set_type_codec("json", encoder=_json_encode, decoder=msgspec.json.decode,
                              schema="pg_catalog")


def _describe(url: str) -> str:
    """The URL without its password, for messages."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, userinfo = head.partition("://")
    user = userinfo.split(":")[0]
    return f"{scheme}://{user}@{tail}"


async def create_pool(cfg: Config, url: str, *, min_size: int | None = None,
                      max_size: int | None = None) -> asyncpg.Pool:
    """Connect, retrying with exponential backoff for [database] start_retry_s."""
    deadline = time.monotonic() + cfg.database.start_retry_s
    delay = 0.2
    while True:
        try:
            pool: asyncpg.Pool = await asyncpg.create_pool(
                url,
                min_size=cfg.database.pool_min_size if min_size is None else min_size,
                max_size=cfg.database.pool_max_size if max_size is None else max_size,
                timeout=cfg.database.connect_timeout_s,
                command_timeout=cfg.database.command_timeout_s,
                init=_init_connection,
                server_settings={"timezone": "UTC", "application_name": "onboardd"},
            )
            return pool
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatabaseUnavailable(
                    f"cannot reach the database at {_describe(url)}: {exc.__class__.__name__}: "
                    f"{exc} (gave up after {cfg.database.start_retry_s:g}s; check [database] url "
                    f"/ ONBOARDD_DATABASE_URL and that the server is running)"
                ) from None
            log.warning("database_unreachable_retrying", error=str(exc), retry_in_s=delay)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)


@contextlib.asynccontextmanager
async def database_url(cfg: Config) -> AsyncIterator[str]:
    """The configured URL, or an embedded server started for the duration of the block."""
    if cfg.database.url:
        yield cfg.database.url
        return
    async with embedded_postgres(Path(cfg.paths.state_dir)) as url:
        yield url
