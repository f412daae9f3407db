"""The miss counters of claims by offer code in PostgreSQL (shared by every daemon)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import asyncpg

from onboardd.db.queries import query
from onboardd.domain.claim_throttle import Charge, KeyState, Policy, charge

Key = tuple[str, str]  # (kind, subject)


def _columns(keys: Sequence[Key]) -> tuple[list[str], list[str]]:
    ordered = sorted(set(keys))
    return [k for k, _ in ordered], [s for _, s in ordered]


class Verdict(NamedTuple):
    """Whether a code attempt may go ahead, and which keys' lockouts it started."""

    wait_s: float | None  # None: go ahead
    locked_now: list[Key]


async def charge_attempt(pool: asyncpg.Pool, policies: dict[Key, Policy]) -> Verdict:
    """Count one code attempt on every key, or refuse it with the seconds to wait.

    An attempt refused by one key is counted on none (a lockout that starts is saved).
    """
    kinds, subjects = _columns(list(policies))
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(query("throttle_ensure"), kinds, subjects)
        rows = await conn.fetch(query("throttle_lock"), kinds, subjects)
        outcomes: list[tuple[Key, Charge]] = []
        for row in rows:
            key = (row["kind"], row["subject"])
            state = KeyState(row["misses"], row["window_started_at"], row["lockouts"],
                             row["locked_until"], row["last_attempt_at"])
            now: datetime = row["now"]
            outcomes.append((key, charge(state, now, policies[key])))
        waits = [c.wait_s for _, c in outcomes if c.wait_s is not None]
        refused = bool(waits)
        save = [(key, c.state) for key, c in outcomes
                if c.changed and (not refused or c.wait_s is not None)]
        if save:
            await conn.execute(query("throttle_save"), *_state_columns(save))
    started = [key for key, c in outcomes if c.changed and c.wait_s is not None]
    return Verdict(max(waits) if waits else None, started)


def _state_columns(save: Sequence[tuple[Key, KeyState]]) -> list[list[object]]:
    return [[key[0] for key, _ in save], [key[1] for key, _ in save],
            [s.misses for _, s in save], [s.window_started_at for _, s in save],
            [s.lockouts for _, s in save], [s.locked_until for _, s in save],
            [s.last_attempt_at for _, s in save]]


async def refund_attempt(pool: asyncpg.Pool, keys: Sequence[Key]) -> None:
    """The attempt hit: take it back from every key's misses."""
    kinds, subjects = _columns(keys)
    await pool.execute(query("throttle_refund"), kinds, subjects)


async def prune(pool: asyncpg.Pool, memory_s: float, limit: int) -> int:
    """Forget up to limit keys without an attempt for memory_s that are not locked."""
    status: str = await pool.execute(query("throttle_prune"), memory_s, limit)
    return int(status.rsplit(" ", 1)[-1])
