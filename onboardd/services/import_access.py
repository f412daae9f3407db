"""The PII access log of an import's preview (spec §9.1): the upload's preview and every
preview of the stored file again show the first rows' numbers, so each answer is one
pii_access_log entry, action ``import_preview``, naming the salon's customers whose numbers
those rows hold (the other numbers are nobody's yet)."""

from __future__ import annotations

import structlog

from onboardd.db import imports as db
from onboardd.importing.preview import PreviewRow
from onboardd.runtime import Services

ACTION = "import_preview"


def caller(actor: str | None, request_id: str | None) -> tuple[str, str]:
    """Who reads, under which request: as given, else from the request's log context (the web
    front binds request_id to every request, and user_id once a token is accepted)."""
    bound = structlog.contextvars.get_contextvars()
    return (actor or str(bound.get("user_id") or "unknown"),
            request_id if request_id is not None else str(bound.get("request_id") or ""))


async def log_preview(services: Services, salon_id: str, batch_id: str,
                      rows: list[PreviewRow], customer_ids: list[str], *, actor: str | None,
                      request_id: str | None) -> None:
    """One entry for a preview answered: how many rows it shows (each with its original
    cells), and the customers among them."""
    who, rid = caller(actor, request_id)
    await db.log_pii_access(services.pool, actor=who, salon_id=salon_id, action=ACTION,
                            record_count=len(rows),
                            details={"batchId": batch_id}, request_id=rid,
                            customer_ids=customer_ids)
