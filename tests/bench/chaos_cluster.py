"""The chaos benchmark's cluster: one PostgreSQL it can restart, daemons it can kill -9, and a
front that spreads Twilio's callbacks over the daemons that are up (as a load balancer would).

Everything started here is stopped by ``Postgres.stop`` and ``Fleet.kill_all``, which the
benchmark calls in ``finally`` blocks (Ctrl-C and failures included).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.e2e.daemon import Daemon
from tests.serving import served

READY_TIMEOUT_S = 60.0
# Headers a proxy must not copy from one hop to the next.
HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection",
                         "keep-alive"})


class Postgres:
    """A dedicated embedded PostgreSQL (pgserver's binaries) in `root`, restartable."""

    def __init__(self, root: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is unset
            import pgserver
            from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        self._pg_ctl = pg_ctl
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        self.data = root / "data"
        server = pgserver.get_server(self.data, cleanup_mode=None)  # type: ignore[attr-defined]
        info = server.get_postmaster_info()
        self._user: str | None = server.system_user
        self._socket_dir = str(info.socket_dir)
        self.uri: str = server.get_uri()
        self.up = True

    def _ctl(self, *args: str, timeout: float = 60.0) -> None:
        self._pg_ctl(list(args), pgdata=self.data, user=self._user, timeout=timeout)

    def stop(self, mode: str = "immediate") -> None:
        """pg_ctl stop -m mode (immediate: as a crash; the next start recovers from WAL)."""
        self.up = False
        with contextlib.suppress(Exception):  # already stopped
            self._ctl("-w", "-m", mode, "stop")

    def start(self) -> None:
        """pg_ctl start on the same socket directory, waiting until it accepts connections."""
        self._ctl("-w", "-o", '-h ""', "-o", f"-k {self._socket_dir}",
                  "-l", str(self.data / "log"), "start")
        self.up = True

    async def restart(self, down_s: float) -> None:
        """Stop abruptly, stay down for down_s, start again."""
        await asyncio.to_thread(self.stop)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(self.start)


@dataclass
class Slot:
    """One place in the fleet: its environment, directory and current daemon."""

    number: int
    env: dict[str, str]
    cwd: Path
    daemon: Daemon | None = None
    ready_at: float | None = None
    incarnations: int = 0


@dataclass
class Fleet:
    """N daemons on one database: kill -9, restart, and when each was up (epoch seconds)."""

    env_for: Callable[[int], dict[str, str]]
    root: Path
    size: int
    slots: list[Slot] = field(default_factory=list)
    up: list[tuple[float, float]] = field(default_factory=list)  # closed [ready, gone) spans
    kills: int = 0
    kill_times: list[float] = field(default_factory=list)
    exits: list[str] = field(default_factory=list)  # daemons that exited unasked
    ready_s: list[float] = field(default_factory=list)  # start to /readyz, each incarnation
    closed: bool = False
    t0: float = field(default_factory=time.time)  # what the lines it prints count from
    _starting: set[asyncio.Task[None]] = field(default_factory=set)
    _spawned: list[Daemon] = field(default_factory=list)  # every daemon started, for kill_all
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        for n in range(self.size):
            cwd = self.root / f"daemon{n}"
            cwd.mkdir(parents=True, exist_ok=True)
            self.slots.append(Slot(n, self.env_for(n), cwd))

    async def start(self, slot: Slot) -> None:
        """Start the slot's next daemon and wait until /readyz answers (retrying a daemon that
        exits on the way, as systemd would)."""
        while not self.closed:
            slot.incarnations += 1
            slot.daemon = Daemon(slot.env, slot.cwd)
            self._spawned.append(slot.daemon)
            slot.ready_at = None
            try:
                took = await asyncio.to_thread(slot.daemon.wait_ready, READY_TIMEOUT_S)
            except AssertionError:
                if self.closed:
                    return
                self._gone(slot, "exited before it was ready")
                await asyncio.sleep(1.0)
                continue
            slot.ready_at = time.time()
            self.ready_s.append(took)
            if slot.incarnations > 1:
                self.say(f"daemon{slot.number} ready again ({took:.1f} s to /readyz)")
            return

    def say(self, text: str) -> None:
        """One progress line, timed from t0."""
        print(f"t={time.time() - self.t0:6.1f}s   {text}", flush=True)

    def start_soon(self, slot: Slot) -> None:
        """Start the slot's next daemon in the background."""
        task = asyncio.get_running_loop().create_task(self.start(slot))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def start_all(self) -> None:
        await asyncio.gather(*(self.start(slot) for slot in self.slots))

    def _gone(self, slot: Slot, why: str) -> None:
        """Note a daemon that stopped (killed or exited) and close its up span."""
        daemon, slot.daemon = slot.daemon, None
        if slot.ready_at is not None:
            self.up.append((slot.ready_at, time.time()))
            slot.ready_at = None
        if daemon is not None and why != "killed":
            code = daemon.proc.poll()
            tail = daemon.log().strip().splitlines()[-3:]
            self.exits.append(f"daemon{slot.number} ({daemon.log_path.name}) {why}, exit "
                              f"{code}: {' | '.join(tail)}")
            self.say(self.exits[-1][:300])
            with contextlib.suppress(Exception):
                daemon.kill()

    async def kill_random(self, rng: random.Random) -> Slot | None:
        """kill -9 a random daemon that is up; it is started again in the background."""
        alive = [s for s in self.slots if s.daemon is not None and s.ready_at is not None]
        if not alive:
            return None
        slot = rng.choice(alive)
        daemon = slot.daemon
        assert daemon is not None
        self._gone(slot, "killed")  # first, so that watch() does not take it for a crash
        await asyncio.to_thread(daemon.kill)
        self.kills += 1
        self.kill_times.append(time.time())
        self.say(f"kill -9 daemon{slot.number} ({daemon.log_path.name})")
        return slot

    async def watch(self) -> None:
        """Restart daemons that exit unasked (a crash loop, a database outage at start)."""
        while True:
            for slot in self.slots:
                daemon = slot.daemon
                if daemon is not None and slot.ready_at is not None and \
                        daemon.proc.poll() is not None:
                    self._gone(slot, "exited")
                    self.start_soon(slot)
            await asyncio.sleep(0.5)

    def ready(self) -> list[str]:
        """Base URLs of the daemons up now."""
        return [s.daemon.base_url for s in self.slots
                if s.daemon is not None and s.ready_at is not None]

    def next_ready(self) -> str | None:
        """A daemon that is up, round-robin."""
        urls = self.ready()
        return urls[next(self._turn) % len(urls)] if urls else None

    def spans(self) -> list[tuple[float, float]]:
        """When daemons were up: the closed spans and those of the daemons up now."""
        now = time.time()
        return self.up + [(s.ready_at, now) for s in self.slots if s.ready_at is not None]

    def kill_all(self) -> None:
        """kill -9 every daemon (the benchmark's cleanup) and close the up spans; no daemon is
        started afterwards."""
        self.closed = True
        for task in self._starting:
            task.cancel()
        for slot in self.slots:
            if slot.ready_at is not None:
                self.up.append((slot.ready_at, time.time()))
            slot.daemon, slot.ready_at = None, None
        for daemon in self._spawned:
            if daemon.proc.poll() is None:
                with contextlib.suppress(Exception):
                    daemon.kill()

    def log_paths(self) -> list[Path]:
        return sorted(p for slot in self.slots for p in slot.cwd.glob("daemon-*.log"))


def log_problems(paths: list[Path], examples: int = 1
                 ) -> tuple[Counter[str], dict[str, list[str]]]:
    """Error and critical events in the daemons' JSON logs: counts by event, and examples."""
    counts: Counter[str] = Counter()
    seen: dict[str, list[str]] = {}
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if '"level": "error"' not in line and '"level": "critical"' not in line \
                    and '"level":"error"' not in line and '"level":"critical"' not in line:
                continue
            try:
                record: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            event = str(record.get("event", "?"))
            counts[event] += 1
            if len(seen.setdefault(event, [])) < examples:
                record.pop("timestamp", None)
                seen[event].append(f"{path.name}: {json.dumps(record)[:400]}")
    return counts, seen


@contextlib.asynccontextmanager
async def front(fleet: Fleet) -> AsyncIterator[str]:
    """An HTTP front on a free port passing each request to a daemon that is up (another one
    when it cannot connect); yields its base URL, the daemons' public URL."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        async def forward(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            headers = {k: v for k, v in request.headers.items()
                       if k.lower() not in HOP_HEADERS}
            for _ in range(20):
                target = fleet.next_ready()
                if target is None:
                    await asyncio.sleep(0.25)
                    continue
                try:
                    async with http.request(request.method, target + request.path_qs,
                                            data=body, headers=headers) as resp:
                        payload = await resp.read()
                        kept = {k: v for k, v in resp.headers.items()
                                if k.lower() not in HOP_HEADERS}
                        return web.Response(status=resp.status, body=payload, headers=kept)
                except (aiohttp.ClientConnectionError, TimeoutError):
                    continue
            return web.Response(status=502, text="no daemon answered")

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", forward)
        async with served(app) as url:
            yield url
