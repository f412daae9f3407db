"""The status inbox in tests: a callback answered by the webhook (or settled by the recorder) is
durable in ``status_inbox`` and applied to its message by the status folder a moment later. Tests
that check a message after its callback either run the folder (``onboardd.actors.status_folder``)
and wait for the inbox to empty, or fold it themselves, as the folder does."""

from __future__ import annotations

import asyncio
import time

from onboardd.actors import status_folder
from onboardd.db import status_inbox
from onboardd.runtime import Services


async def fold_inbox(services: Services) -> int:
    """Apply every callback in the status inbox now, as the status folder does; returns how
    many were applied."""
    return (await status_folder.drain(services)).taken


async def inbox_rows(services: Services) -> int:
    """Callbacks durable in the inbox, not applied yet."""
    rows, _oldest = await status_inbox.depth(services.pool)
    return rows


async def inbox_drained(services: Services, timeout_s: float = 10.0) -> None:
    """Wait until a running status folder has emptied the inbox."""
    deadline = time.monotonic() + timeout_s
    while await inbox_rows(services):
        assert time.monotonic() < deadline, "the status inbox was not drained in time"
        await asyncio.sleep(0.01)
