"""Serve an aiohttp app on a free local port for a test or a benchmark, or run the Twilio
simulator in a process of its own (`simulator_process`).

The simulator runs as `python -m onboardd simulator` in its own process when a test or a
benchmark measures when requests arrive (the sender limit across daemons, the chaos
benchmark): the arrival of each request is then stamped by a process that does nothing but take
requests and post their callbacks. In the measuring process (busy with pytest, a callback
front, uploads, registrations or polling) event-loop stalls and garbage collections would bunch
the stamps.

The arrivals are read back over the simulator's control API: ``GET /_sim/messages`` lists every
message with its ``arrived_at`` (the handler's ``time.time()`` when the request reached it,
before the simulated latency, to the microsecond) and its ``from``. The stamping process is
mostly idle (about 10-15 % of one CPU in a full chaos run); `onboardd simulator` freezes its
start-up objects out of the garbage collector and makes full collections rare, which over a
growing message store took 80-250 ms near 20k messages and bunched the stamps behind them.

It also runs at a higher priority (nice -10, when the caller may set it: tests and benchmarks
run as root on the test machines). The simulator stands in for Twilio's edge, which has
machines of its own; here it shares two cores with the daemons, PostgreSQL and the test, and at
normal priority it waited in the run queue for tens of milliseconds at a time, stamping the
requests that arrived meanwhile all at once: a stall of 60 ms put six extra requests into a
one-second window that the daemons had paced correctly. ``priority`` says what was set.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.e2e.daemon import free_port

READY_TIMEOUT_S = 30.0
# How the simulator is scheduled, so that its clock reads when requests arrive rather than how
# long it waited for a core: the real-time class (SCHED_FIFO at this priority: it runs as soon
# as a request reaches it, ahead of every normal process; the kernel still keeps 5 % of each
# second for the others), else this nice value (lower runs first), else as it is.
SIM_FIFO_PRIORITY = 1
SIM_NICE = -10


@contextlib.asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    """The app on 127.0.0.1 at a free port; yields its base URL, stops it on exit."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@dataclass(frozen=True, slots=True)
class Arrival:
    """One message as the simulator accepted it: when (epoch seconds), from and to whom."""

    sid: str
    to: str
    from_: str
    arrived_at: float


@dataclass
class SimProcess:
    """A running `onboardd simulator`: its base URL, its account SID and its process."""

    url: str
    account_sid: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    priority: str = "normal"

    async def stored(self, http: aiohttp.ClientSession) -> int:
        """How many messages it has accepted so far."""
        async with http.get(self.url + "/_sim/stats") as resp:
            resp.raise_for_status()
            stats: dict[str, Any] = await resp.json()
            return int(stats["stored"])

    async def arrivals(self, http: aiohttp.ClientSession) -> list[Arrival]:
        """Every accepted message, oldest first (one listing: under a second for 20k)."""
        timeout = aiohttp.ClientTimeout(total=120)
        async with http.get(self.url + "/_sim/messages", timeout=timeout) as resp:
            resp.raise_for_status()
            rows: list[dict[str, Any]] = await resp.json()
        return [Arrival(r["sid"], r["to"], r["from"],
                        float(r["arrived_at"])) for r in rows]

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the simulator has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM, then kill -9 if it does not exit within 5 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextlib.asynccontextmanager
async def simulator_process(root: Path, auth_token: str, **settings: object
                            ) -> AsyncIterator[SimProcess]:
    """Start `python -m onboardd simulator` on a free port with these [simulator] settings
    (ONBOARDD_SIMULATOR_*), wait until its control API answers, stop it on the way out."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONBOARDD_")}
    env.update({f"ONBOARDD_SIMULATOR_{k.upper()}": str(v) for k, v in settings.items()})
    env.update({"ONBOARDD_SIMULATOR_HOST": "127.0.0.1", "ONBOARDD_SIMULATOR_PORT": str(port),
                "ONBOARDD_SIMULATOR_AUTH_TOKEN": auth_token,
                "ONBOARDD_PATHS_STATE_DIR": str(root / "simulator-state"),
                "ONBOARDD_LOG_LEVEL": "warning", "ONBOARDD_LOG_FORMAT": "json"})
    log_path = root / "simulator.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "onboardd", "simulator"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    sim = SimProcess(f"http://127.0.0.1:{port}", "", proc, log_path)
    sim.priority = _prioritised(proc.pid)
    try:
        async with aiohttp.ClientSession() as http:
            sim.account_sid = await _wait_ready(http, sim)
        yield sim
    finally:
        sim.stop()  # blocking, at most seconds: it runs on the way out, Ctrl-C included


def _prioritised(pid: int) -> str:
    """Give the simulator the first priority allowed here (see SIM_FIFO_PRIORITY); which."""
    try:
        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(SIM_FIFO_PRIORITY))
        return f"SCHED_FIFO {SIM_FIFO_PRIORITY}"
    except OSError:
        pass  # not allowed (not root, or a container without CAP_SYS_NICE): try nice
    try:
        os.setpriority(os.PRIO_PROCESS, pid, SIM_NICE)
        return f"nice {SIM_NICE}"
    except OSError as exc:  # measured at normal priority, and said so
        return f"normal ({exc.strerror})"


async def _wait_ready(http: aiohttp.ClientSession, sim: SimProcess) -> str:
    """Poll /_sim/config until it answers; the account SID it serves."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if sim.proc.poll() is not None:
            raise RuntimeError(f"simulator exited {sim.proc.returncode}: "
                               f"{sim.log_path.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with http.get(sim.url + "/_sim/config") as resp:
                if resp.status == 200:
                    return str((await resp.json())["account_sid"])
        await asyncio.sleep(0.1)
    raise RuntimeError(f"simulator not answering after {READY_TIMEOUT_S} s")
