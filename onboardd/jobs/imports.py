"""Scheduler pass of the import area: drop previews nobody confirmed, and forget upload attempts
that no longer count against the rolling hour."""

from __future__ import annotations

from typing import Final

from onboardd.db import imports as db
from onboardd.logging import get_logger
from onboardd.runtime import Services
from onboardd.services.imports import PREVIEW_TTL_S

log = get_logger("import_jobs")

INTERVAL_S: Final = 600.0


async def expire_previews(services: Services) -> None:
    """Drop previews nobody confirmed, with their stored files, and upload attempts that no
    longer count against the rolling hour."""
    count = await db.expire_previews(services.pool, PREVIEW_TTL_S)
    if count:
        log.info("import_previews_expired", count=count)
    await db.forget_uploads(services.pool)
