"""Benchmark: how long `onboardd serve` takes to become ready and to stop on SIGTERM.

    .venv/bin/python tests/bench/bench_startup.py
    .venv/bin/python tests/bench/bench_startup.py --external   # ONBOARDD_TEST_DATABASE_URL

With the embedded defaults (the README's "within seconds"), in a fresh state directory: the
first start (which creates the PostgreSQL cluster, migrates and creates Demo Salon), then a
restart on the same directory. Each start is timed until /readyz answers 200 and each stop
from SIGTERM to the exit (code 0 expected). The floor, measured in the same run, is
`onboardd version`: starting the interpreter and importing the package. ratio = figure / floor.
The end-to-end tests used to assert a first start under 30 s and a stop under 15 s.
Prints figures, then a JSON last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.support import bench_database
from tests.conftest import daemon_env
from tests.e2e.daemon import Daemon


def floor_seconds(cwd: Path) -> float:
    """Wall seconds of `onboardd version` (interpreter start and package import)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONBOARDD_")}
    begin = time.perf_counter()
    subprocess.run([sys.executable, "-m", "onboardd", "version"], env=env, cwd=cwd,
                   capture_output=True, check=True, timeout=60)
    return time.perf_counter() - begin


def start_and_stop(env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """(seconds to ready, seconds from SIGTERM to exit, exit code) of one daemon run."""
    daemon = Daemon(env, cwd)
    try:
        ready = daemon.wait_ready(timeout=120)
        begin = time.perf_counter()
        code = daemon.stop(signal.SIGTERM, timeout=120)
        return ready, time.perf_counter() - begin, code
    finally:
        if daemon.proc.poll() is None:
            daemon.kill()


def run(env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """A first start and a restart in `cwd`, with the floor measured between them."""
    floor = floor_seconds(cwd)
    first_ready, first_stop, first_code = start_and_stop(env, cwd)
    again_ready, again_stop, again_code = start_and_stop(env, cwd)
    floor = min(floor, floor_seconds(cwd))
    return {
        "floor_version_s": round(floor, 3),
        "first_ready_s": round(first_ready, 3),
        "first_ready_ratio": round(first_ready / floor, 1),
        "first_stop_s": round(first_stop, 3),
        "restart_ready_s": round(again_ready, 3),
        "restart_ready_ratio": round(again_ready / floor, 1),
        "restart_stop_s": round(again_stop, 3),
        "stop_ratio": round(max(first_stop, again_stop) / floor, 1),
        "exit_codes": [first_code, again_code],
    }


async def run_external(cwd: Path) -> dict[str, Any]:
    """The same against a fresh database on ONBOARDD_TEST_DATABASE_URL's server."""
    async with bench_database() as url:
        env = daemon_env(url, cwd / "state")
        return await asyncio.to_thread(run, env, cwd)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--external", action="store_true",
                        help="an external database (ONBOARDD_TEST_DATABASE_URL or a temporary "
                             "embedded server) instead of the embedded defaults")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        if args.external:
            result = asyncio.run(run_external(cwd))
        else:
            result = run({"ONBOARDD_PATHS_STATE_DIR": str(cwd / "var")}, cwd)
        result["database"] = "external" if args.external else "embedded"
    for key, value in result.items():
        print(f"{key:>20}: {value}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
