"""A dedicated PostgreSQL server a test may stop abruptly and start again: the database restart
of the outage tests (never the session's shared server).

It is an embedded pgserver like the session's (same binaries, Unix socket only). ``crash()``
is `pg_ctl stop -m immediate`: every backend is killed, nothing is checkpointed, and the next
start runs crash recovery, as after a power cut of the database host. ``start()`` starts it again
on the same data directory and socket, so clients reconnect to the same URL.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg

from onboardd.db.migrate import migrate
from tests.conftest import db_url_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is unset
    import pgserver
    from pgserver._commands import pg_ctl
    from pgserver.utils import PostmasterInfo


class RestartablePostgres:
    """One pgserver instance with abrupt stop and start."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        self._server: Any = pgserver.get_server(root / "data", cleanup_mode="stop")  # type: ignore[attr-defined]
        info = self._server.get_postmaster_info()
        self.socket_dir: Path = info.socket_dir
        self.uri: str = self._server.get_uri()
        self.running = True

    def url(self, database: str) -> str:
        """The URL of one database on this server."""
        return db_url_for(self.uri, database)

    def postmaster_pid(self) -> int:
        """The running server's main process."""
        pid: int = self._server.get_pid()
        return pid

    def _pg_ctl(self, *args: str) -> None:
        pg_ctl(list(args), pgdata=self._server.pgdata, user=self._server.system_user,
               timeout=60)

    def crash(self) -> float:
        """Stop the server at once (every connection cut); seconds it took."""
        started = time.monotonic()
        self._pg_ctl("-m", "immediate", "stop")
        self.running = False
        return time.monotonic() - started

    def start(self) -> float:
        """Start it again on the same data directory and socket; seconds until it accepts
        connections (crash recovery included)."""
        started = time.monotonic()
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}",
                     "-l", str(self._server.log), "start")
        # pgserver stops the server it knows at cleanup: tell it about the new postmaster.
        self._server._postmaster_info = PostmasterInfo.read_from_pgdata(self._server.pgdata)
        self.running = True
        return time.monotonic() - started

    def close(self) -> None:
        """Stop the server (started again first if a test left it down, so pgserver's own
        bookkeeping ends cleanly)."""
        if not self.running:
            self.start()
        self._server.cleanup()


@contextlib.contextmanager
def restartable_server(root: Path) -> Iterator[RestartablePostgres]:
    """A dedicated server for the block, stopped afterwards."""
    server = RestartablePostgres(root)
    try:
        yield server
    finally:
        server.close()


@contextlib.asynccontextmanager
async def migrated_database(server: RestartablePostgres, name: str) -> AsyncIterator[str]:
    """A new, migrated database on the server for the block; yields its URL."""
    admin = await asyncpg.connect(server.uri)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    url = server.url(name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    try:
        yield url
    finally:
        if server.running:
            admin = await asyncpg.connect(server.uri)
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            finally:
                await admin.close()
