"""Typed access to salons (SQL in sql/queries/salons.sql)."""

from __future__ import annotations

import datetime as dt
from typing import TypeAlias

import asyncpg
import msgspec

from onboardd.db.queries import query
from onboardd.domain.salons import SalonFields

Conn: TypeAlias = "asyncpg.Connection | asyncpg.Pool"


class SalonRow(msgspec.Struct, frozen=True):
    """A salon with the number of customers imported into it."""

    id: str
    name: str
    country: str
    timezone: str
    app_download_link: str | None
    created_at: dt.datetime
    customers: int


async def add_salon(conn: Conn, fields: SalonFields) -> str:
    """Insert a salon; its id."""
    salon_id: str = await conn.fetchval(query("salon_insert"), fields.name, fields.country,
                                        fields.timezone, fields.app_download_link)
    return salon_id


async def list_salons(conn: Conn, limit: int = 1000) -> list[SalonRow]:
    """Salons, oldest first."""
    return [SalonRow(**dict(row)) for row in await conn.fetch(query("salon_list"), limit)]


async def add_first_salon(conn: Conn, name: str) -> str | None:
    """Create a salon named `name` when there is none; its id, or None when salons exist."""
    salon_id: str | None = await conn.fetchval(query("salon_insert_first"), name)
    return salon_id


async def salon_exists(conn: Conn, salon_id: str) -> bool:
    """True when a salon with this id exists."""
    found: bool = await conn.fetchval(query("salon_exists"), salon_id)
    return found


class SalonName(msgspec.Struct, frozen=True):
    """A salon as the admin UI's switcher shows it."""

    id: str
    name: str
    timezone: str


async def salon_names(conn: Conn, ids: list[str]) -> list[SalonName]:
    """The salons among `ids` that exist, by name."""
    rows = await conn.fetch(query("salon_names"), ids)
    return [SalonName(str(row["id"]), row["name"], row["timezone"]) for row in rows]
