"""The analytics export's reads (sql/queries/analytics_export.sql): every imported customer
of a salon, streamed in pages through a server-side cursor."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import asyncpg
import msgspec

from onboardd.db.queries import query


class ExportCustomer(msgspec.Struct, frozen=True):
    """One customer row of the export, phone still encrypted; discount in paisa, all time."""

    id: str
    customer_name: str
    normalized_phone_enc: str
    status: str
    imported_at: datetime
    invited_at: datetime | None
    registered_at: datetime | None
    last_campaign_name: str | None
    offers: str | None
    discount: int
    first_booking_at: datetime | None


async def customer_pages(conn: asyncpg.Connection, salon_id: str, page_rows: int,
                         campaign_id: str | None = None
                         ) -> AsyncGenerator[list[ExportCustomer], None]:
    """The salon's customers (those campaign_id targeted, when given), oldest import first,
    page_rows at a time; conn must be inside a transaction (the cursor lives in it; open it
    with db.analytics.reads, whose planning keeps a cursor's fast-start plan from repeating the
    salon's funnel aggregate per customer on a large platform) and is busy until the pages are
    exhausted."""
    cursor = await conn.cursor(query("analytics_export_customers"), salon_id, campaign_id)
    while rows := await cursor.fetch(page_rows):
        yield [ExportCustomer(**dict(r)) for r in rows]
