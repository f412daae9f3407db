"""Claims by offer code: a miss budget per key (user, client address) and a growing lockout.

Pure rules; the state lives in PostgreSQL (``offer_claim_throttle``, see onboardd.db.throttle)
so that every daemon sharing the database counts the same misses. Every code attempt is
charged before the claim runs and refunded when it hits, so parallel requests cannot overrun
the budget. Once a key has spent its ``budget`` within ``window_s``, the next attempt starts a
lockout of ``lockout_s``, doubling with each further lockout up to ``lockout_max_s``; a key
that makes no attempt for ``memory_s`` is forgotten (its lockouts start over).
"""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import datetime, timedelta
from typing import NamedTuple

USER: str = "user"
ADDRESS: str = "ip"
# Keys longer than this are stored as a hash (a JWT sub can be any length).
MAX_SUBJECT = 128
# An IPv6 host usually owns a whole /64: one key per /64, not per address.
IPV6_PREFIX = 64


class Policy(NamedTuple):
    """The throttle's settings for one kind of key."""

    budget: int
    window_s: float
    lockout_s: float
    lockout_max_s: float
    memory_s: float


class KeyState(NamedTuple):
    """One key's counters, as stored."""

    misses: int = 0
    window_started_at: datetime | None = None
    lockouts: int = 0
    locked_until: datetime | None = None
    last_attempt_at: datetime | None = None


class Charge(NamedTuple):
    """The outcome of charging one attempt to a key."""

    state: KeyState
    wait_s: float | None  # None: the attempt may go ahead
    changed: bool


def lockout_seconds(earlier_lockouts: int, policy: Policy) -> float:
    """How long the next lockout lasts: doubles with each earlier one, up to the maximum."""
    return min(policy.lockout_s * 2.0 ** min(earlier_lockouts, 60), policy.lockout_max_s)


def charge(state: KeyState, now: datetime, policy: Policy) -> Charge:
    """Count one attempt against a key: go ahead, or wait (a new or a running lockout)."""
    if state.locked_until is not None and state.locked_until > now:
        return Charge(state, (state.locked_until - now).total_seconds(), changed=False)
    lockouts = state.lockouts
    if state.last_attempt_at is None or now - state.last_attempt_at >= timedelta(
            seconds=policy.memory_s):
        lockouts = 0
    misses, started = state.misses, state.window_started_at
    if started is None or now - started >= timedelta(seconds=policy.window_s):
        misses, started = 0, now
    if misses >= policy.budget:
        seconds = lockout_seconds(lockouts, policy)
        locked = KeyState(misses=0, window_started_at=now, lockouts=lockouts + 1,
                          locked_until=now + timedelta(seconds=seconds), last_attempt_at=now)
        return Charge(locked, seconds, changed=True)
    counted = KeyState(misses=misses + 1, window_started_at=started, lockouts=lockouts,
                       locked_until=None, last_attempt_at=now)
    return Charge(counted, None, changed=True)


def retry_after(wait_s: float) -> int:
    """Whole seconds for a Retry-After header (at least 1)."""
    return max(1, int(wait_s + 0.999))


def user_subject(sub: str) -> str:
    """The key of a token's user."""
    if len(sub) <= MAX_SUBJECT:
        return sub
    return "sha256:" + hashlib.sha256(sub.encode()).hexdigest()


def address_subject(peer: str | None, forwarded_for: str | None, trust_forwarded: bool) -> str:
    """The key of the client address: the peer, or X-Forwarded-For's first hop when trusted."""
    if trust_forwarded and forwarded_for:
        first = _address(forwarded_for.split(",")[0].strip())
        if first is not None:
            return first
    return _address(peer or "") or "unknown"


def _address(text: str) -> str | None:
    """An IPv4 address, or the /64 of an IPv6 one (IPv4-mapped IPv6 as IPv4); None if not one."""
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:51234"
        text = text.split(":")[0]
    try:
        ip = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)
