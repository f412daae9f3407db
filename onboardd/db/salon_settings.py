"""Typed access to a salon's own settings: its sending window (sql/queries/salon_settings.sql)."""

from __future__ import annotations

import datetime as dt

import asyncpg
import msgspec

from onboardd.db.queries import query


class SettingsRow(msgspec.Struct, frozen=True):
    """The salon's timezone and its own window (None: the configured default)."""

    salon_id: str
    timezone: str
    sending_window_start_s: int | None
    sending_window_end_s: int | None
    updated_at: dt.datetime | None
    updated_by: str | None


async def get(pool: asyncpg.Pool, salon_id: str) -> SettingsRow | None:
    """The salon's settings; None when there is no such salon."""
    row = await pool.fetchrow(query("salon_settings_get"), salon_id)
    if row is None:
        return None
    return SettingsRow(**dict(row))


async def set_window(pool: asyncpg.Pool, salon_id: str, start_s: int | None,
                     end_s: int | None, actor: str) -> None:
    """Store the salon's window (both None: back to the default)."""
    await pool.execute(query("salon_settings_set_window"), salon_id, start_s, end_s, actor[:255])
