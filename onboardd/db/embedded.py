"""The embedded PostgreSQL (pgserver) used when no database URL is configured."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from onboardd.logging import get_logger

log = get_logger("embedded_pg")


class EmbeddedPostgres:
    """One pgserver instance under <state_dir>/pg, reused across restarts."""

    def __init__(self, state_dir: Path) -> None:
        self.pgdata = (state_dir / "pg").resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or attach to) the server; return its connection URI."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (systemd services, CI); harmless.
            warnings.simplefilter("ignore")
            import pgserver

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(self.pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
        uri: str = self._server.get_uri()
        log.info("embedded_postgres_started", pgdata=str(self.pgdata))
        return uri

    def stop(self) -> None:
        """Stop the server (pgserver keeps it running while other processes still use it)."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            log.info("embedded_postgres_stopped", pgdata=str(self.pgdata))


@contextlib.asynccontextmanager
async def embedded_postgres(state_dir: Path) -> AsyncIterator[str]:
    """Run the embedded server for the duration of the block; yields its URI."""
    server = EmbeddedPostgres(state_dir)
    uri = await asyncio.to_thread(server.start)
    try:
        yield uri
    finally:
        await asyncio.shield(asyncio.to_thread(server.stop))
