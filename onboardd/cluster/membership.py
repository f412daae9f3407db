"""This daemon's membership of the cluster: liveness and sender ownership, through PostgreSQL.

Liveness. The membership holds one connection. On it, it takes a new instance id (a sequence)
and the session-level advisory lock (LIVENESS_CLASS, id). Every claim the daemon makes records
that id (``claimed_by``), and sweepers compare claims against ``onboardd_live_instances()``,
which reads pg_locks. When the daemon dies, PostgreSQL ends the session and the lock goes with
it: its claims become takeable at once (after the takeover guard), without a heartbeat to time
out; a live but slow daemon keeps its lock and is never robbed.

Fencing. If this daemon loses its session (a PostgreSQL restart, a killed backend, the network),
its lock and its senders may already be someone else's. It stops at once (``alive`` cleared,
every sender dropped) and joins again under a NEW id once it can, so claims made under the old
id look like a dead instance's to everyone, including itself, and are taken over by the one
reconciliation rule (ask Twilio's Messages list first). A heartbeat (``HEARTBEAT_S``) with a
deadline (``CHECK_TIMEOUT_S``) notices a silent connection; the termination listener notices a
closed one at once.

Sender ownership. A sender (``channel:number``) is sent from by one instance at a time: the
holder of the session-level lock (SENDER_CLASS, crc32 of the key). Each instance takes up to its
fair share, ceil(senders / live instances), so many senders spread over the instances and a
dead instance's senders are taken by the others within a heartbeat. A new owner waits
``HANDOVER_S`` before its first request, so the previous owner's last second of requests and
its first never share a one-second window. When a new instance joins, those holding more than
their share give the extra senders up: they stop starting requests on them at once and unlock
them ``RELEASE_AFTER_S`` later, idle senders first (``busy``, set by the dispatcher, says which
have work in hand). (Who held a sender last, and when it let go, is noted in
``onboardd_senders``: a sender nobody held is sent from at once, one released cleanly a moment
after its release, one whose owner vanished ``HANDOVER_S`` after that owner's last heartbeat.)
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import zlib
from collections.abc import Callable, Iterable
from typing import Any, Final

import asyncpg

from onboardd.db.pool import CONNECTION_ERRORS
from onboardd.db.queries import query
from onboardd.logging import get_logger
from onboardd.metrics import Metrics

log = get_logger("membership")

LIVENESS_CLASS: Final = 1869504100  # pg_advisory_lock(class, instance id); see migration 0013
SENDER_CLASS: Final = 1869504101  # pg_advisory_lock(class, sender_lock_key(sender))
HEARTBEAT_S: Final = 1.0
CHECK_TIMEOUT_S: Final = 2.0
# A new owner's wait after the vanished previous owner's last heartbeat: that owner stopped
# within HEARTBEAT_S + CHECK_TIMEOUT_S of it, and the second of its last requests is over.
HANDOVER_S: Final = HEARTBEAT_S + CHECK_TIMEOUT_S + 1.0
# A releasing owner stops starting requests at once and unlocks RELEASE_AFTER_S later, so the
# second of its last requests is over then; the next owner only allows for timer jitter.
RELEASE_AFTER_S: Final = 1.0
RELEASED_WAIT_S: Final = 0.2
REJOIN_BACKOFF_S: Final = (0.2, 0.5, 1.0, 2.0)


def sender_key(channel: str, sender: str) -> str:
    """The name of a sender: its channel and number."""
    return f"{channel}:{sender.removeprefix('whatsapp:')}"


def sender_lock_key(key: str) -> int:
    """The advisory lock key (int4) of a sender."""
    return zlib.crc32(key.encode()) - 2**31


class Membership:
    """Liveness lock, instance id and owned senders of this daemon. ``run`` is its actor."""

    def __init__(self, pool: asyncpg.Pool, senders: Iterable[str] = (),
                 metrics: Metrics | None = None) -> None:
        self.pool = pool
        self.metrics = metrics
        self.senders: list[str] = list(dict.fromkeys(senders))
        self.instance_id: int | None = None
        self.alive = asyncio.Event()
        self.changed = asyncio.Event()
        self.live_instances = 0
        # Sender -> loop time its first request may start; senders being given up -> loop
        # time to unlock.
        self.owned: dict[str, float] = {}
        self.releasing: dict[str, float] = {}
        # Whether this instance has work in hand on a sender (the dispatcher sets it): idle
        # senders are given up first when a new instance needs its share.
        self.busy: Callable[[str], bool] = lambda _key: False
        self._conn: Any = None
        self._io = asyncio.Lock()
        self._lost = asyncio.Event()

    # -- what the actors ask -----------------------------------------------------------------

    def owns(self, key: str) -> bool:
        """True while this instance holds the sender and is not giving it up."""
        return self.alive.is_set() and key in self.owned and key not in self.releasing

    def may_send(self, key: str) -> bool:
        """True when a request may start on this sender now (owned and the handover wait is
        over)."""
        if not self.owns(key):
            return False
        return asyncio.get_running_loop().time() >= self.owned[key]

    def send_delay(self, key: str) -> float | None:
        """Seconds until may_send turns true, or None when this instance does not own it."""
        if not self.owns(key):
            return None
        return max(0.0, self.owned[key] - asyncio.get_running_loop().time())

    # -- the actor ---------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Join, keep the liveness and the senders, rejoin under a new id after a loss."""
        failures = 0
        try:
            while not stopping.is_set():
                try:
                    await self._join()
                    failures = 0
                    await self._keep(stopping)
                except (*CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
                    failures += 1
                    log.warning("instance_liveness_lost", instance_id=self.instance_id,
                                error=f"{type(exc).__name__}: {exc}")
                    await self._fence()
                if not stopping.is_set():
                    delay = REJOIN_BACKOFF_S[min(failures, len(REJOIN_BACKOFF_S) - 1)]
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await stopping.wait()
        finally:
            await asyncio.shield(self._leave())

    async def _join(self) -> None:
        """Take a connection, a new instance id and its lock."""
        conn = await self.pool.acquire()
        self._conn = conn
        self._lost.clear()
        conn.add_termination_listener(self._on_terminated)
        async with asyncio.timeout(CHECK_TIMEOUT_S * 2):
            await conn.execute("SET application_name = 'onboardd-liveness'")
            while True:
                row = await conn.fetchrow(query("cluster_join"))
                assert row is not None
                if row["locked"]:
                    break
            instance_id = int(row["id"])
            await conn.execute(query("cluster_register"), instance_id, socket.gethostname()[:255],
                               os.getpid())
        self.instance_id = instance_id
        self.alive.set()
        self._pulse()
        log.info("instance_joined", instance_id=instance_id)
        with contextlib.suppress(*CONNECTION_ERRORS, asyncpg.PostgresError):
            await conn.execute(query("cluster_forget_gone"))

    async def _keep(self, stopping: asyncio.Event) -> None:
        """Heartbeat and rebalance senders until stop or the session is lost."""
        while not stopping.is_set():
            if self._lost.is_set():
                raise asyncpg.exceptions.ConnectionDoesNotExistError("liveness connection closed")
            async with self._io, asyncio.timeout(CHECK_TIMEOUT_S):
                row = await self._conn.fetchrow(query("cluster_heartbeat"), self.instance_id)
            if not row["holding"]:
                raise asyncpg.exceptions.ConnectionDoesNotExistError("liveness lock not held")
            self.live_instances = int(row["live"])
            await self._rebalance()
            waiter = asyncio.ensure_future(stopping.wait())
            lost = asyncio.ensure_future(self._lost.wait())
            try:
                await asyncio.wait({waiter, lost}, timeout=HEARTBEAT_S,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                lost.cancel()

    def fair_share(self) -> int:
        """Senders this instance should hold."""
        if not self.senders:
            return 0
        return math.ceil(len(self.senders) / max(1, self.live_instances))

    async def _rebalance(self) -> None:
        """Give up senders beyond the fair share; take free ones up to it."""
        now = asyncio.get_running_loop().time()
        for key, at in list(self.releasing.items()):
            if now >= at:
                await self._give(key)
        held = [k for k in self.owned if k not in self.releasing]
        share = self.fair_share()
        if len(held) > share:
            # Give up idle senders first, then the most recently taken.
            for key in sorted(held, key=lambda k: (self.busy(k), -self.owned[k]),
                              reverse=True)[share:]:
                self.releasing[key] = now + RELEASE_AFTER_S
                log.info("sender_releasing", sender=key, share=share, live=self.live_instances)
            self._pulse()
            return
        if len(held) == share:
            return
        assert self.instance_id is not None
        start = self.instance_id % len(self.senders)
        for key in self.senders[start:] + self.senders[:start]:
            if len(held) >= share:
                break
            if key in self.owned:
                continue
            async with self._io, asyncio.timeout(CHECK_TIMEOUT_S):
                taken = await self._conn.fetchval(query("cluster_take_sender"),
                                                  sender_lock_key(key))
                if not taken:
                    continue
                wait_s = await self._conn.fetchval(query("cluster_note_sender"), key,
                                                   self.instance_id, HANDOVER_S, RELEASED_WAIT_S)
            self.owned[key] = asyncio.get_running_loop().time() + float(wait_s)
            held.append(key)
            log.info("sender_taken", sender=key, wait_s=round(float(wait_s), 2),
                     live=self.live_instances)
            self._pulse()

    async def _give(self, key: str) -> None:
        async with self._io, asyncio.timeout(CHECK_TIMEOUT_S):
            await self._conn.fetchrow(query("cluster_give_sender"), sender_lock_key(key),
                                      self.instance_id, key)
        self.owned.pop(key, None)
        self.releasing.pop(key, None)
        log.info("sender_released", sender=key)
        self._pulse()

    def _on_terminated(self, *_args: object) -> None:
        self._lost.set()
        self._drop()

    def _drop(self) -> None:
        """Stop at once: no liveness, no senders (the session's locks may be gone)."""
        self.alive.clear()
        if self.owned:
            log.warning("senders_dropped", senders=sorted(self.owned))
        self.owned.clear()
        self.releasing.clear()
        self._pulse()

    async def _fence(self) -> None:
        """After a loss (or at stop): forget everything and close the connection."""
        self._drop()
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            conn.remove_termination_listener(self._on_terminated)
        # The pool resets a returned connection (pg_advisory_unlock_all) or closes a broken one.
        with contextlib.suppress(Exception):
            await self.pool.release(conn, timeout=1.0)

    async def _leave(self) -> None:
        """At stop (the dispatcher has returned): give the senders up cleanly, so the next
        owner waits only a second, then the liveness (returning the session does both)."""
        if self._conn is not None:
            log.info("instance_leaving", instance_id=self.instance_id)
            with contextlib.suppress(*CONNECTION_ERRORS, asyncpg.PostgresError):
                for key in list(self.owned):
                    await self._give(key)
        await self._fence()

    def _pulse(self) -> None:
        """Wake whoever waits for a change (the dispatcher), then re-arm; the metrics follow."""
        self.changed.set()
        self.changed = asyncio.Event()
        if self.metrics is not None:
            self.metrics.instance_liveness(self.alive.is_set())
            for key in self.senders:
                channel, _, number = key.partition(":")
                self.metrics.sender_ownership(channel, number, self.owns(key))
