"""Typed access to one imported customer, as the admin UI acts on them (the list, the erase
and the access log are in onboardd.db.imports)."""

from __future__ import annotations

import msgspec

from onboardd.db.imports import Conn
from onboardd.db.queries import query


class CustomerBrief(msgspec.Struct, frozen=True):
    """One imported customer: the name, the E.164 number still encrypted, the status."""

    id: str
    customer_name: str
    normalized_phone_enc: str
    status: str


async def customer_brief(conn: Conn, salon_id: str, customer_id: str) -> CustomerBrief | None:
    """One customer of the salon, or None when the salon has no such customer."""
    row = await conn.fetchrow(query("imported_customer_brief"), customer_id, salon_id)
    return None if row is None else CustomerBrief(
        id=row["id"], customer_name=row["customer_name"],
        normalized_phone_enc=row["normalized_phone_enc"], status=row["status"])
