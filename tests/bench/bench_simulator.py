"""Benchmark: sends per second through the real twilio client against the Twilio simulator.

    .venv/bin/python tests/bench/bench_simulator.py --messages 1000 --concurrency 50

Starts the simulator on 127.0.0.1 (no rate limit, no injected errors), points a client built
by make_client at it, and sends N messages from C concurrent workers. Prints figures, then a
JSON last line with messages, concurrency, seconds, requests_per_s, p50_ms, p99_ms and
all_accepted (every send accepted and stored exactly once). The figure the simulator tests
used to assert: more than 200 requests/s.

Then the timed behaviours the simulator tests used to measure on the wall clock, each next to
a floor measured in the same run (ratio = figure / floor):
- slow_ms: a "slow" answer configured at 150 ms; floor: an ordinary send (plain_send_ms);
- timeout_ms: a hanging request with the client's timeout at 300 ms (the tests asserted
  0.25 s to 30 s); floor: the same ordinary send;
- exit_with_hang_ms: leaving a simulator while one request hangs (its hang lasts 600 s; the
  tests asserted under 3 s); floor: leaving an idle simulator (exit_idle_ms).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from onboardd.simulator import STATE_KEY, SimulatorSettings, create_app
from onboardd.simulator.app import serve_app
from onboardd.twilio.client import TwilioTimeout, close_client, make_client, send_message

FROM = "+15005550006"


async def bench(messages: int, concurrency: int) -> dict[str, Any]:
    """Send `messages` through the real client with `concurrency` workers; the figures."""
    settings = msgspec.convert({"rate_per_s": 0.0}, SimulatorSettings)
    app = create_app(settings)
    async with serve_app(app, "127.0.0.1", 0) as url:
        # A simulator built without a token invents one: ask its state for the real pair.
        live = app[STATE_KEY].settings
        client = make_client(live.account_sid, live.auth_token, url, 10.0)
        try:
            queue = list(range(messages))
            latencies: list[float] = []

            async def worker() -> int:
                accepted = 0
                while queue:
                    n = queue.pop()
                    begin = time.perf_counter()
                    result = await send_message(
                        client, from_=FROM, to=f"+1555{n:07d}", body="load",
                        content_sid=None, content_variables=None, status_callback=None)
                    latencies.append(time.perf_counter() - begin)
                    accepted += result.accepted
                return accepted

            # One warm-up send: connection set-up is not what is measured.
            await send_message(client, from_=FROM, to="+15550000000", body="warm-up",
                               content_sid=None, content_variables=None, status_callback=None)
            started = time.perf_counter()
            accepted = sum(await asyncio.gather(*(worker() for _ in range(concurrency))))
            seconds = time.perf_counter() - started
            stored = len(app[STATE_KEY].store) - 1
        finally:
            await close_client(client)
    ordered = sorted(latencies)
    return {
        "messages": messages,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "requests_per_s": round(messages / seconds, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "all_accepted": accepted == messages == stored,
    }


async def _timed_send(client: Any, to: str) -> float:
    """Seconds one send took, whatever its outcome (a timeout is an outcome here)."""
    begin = time.perf_counter()
    with contextlib.suppress(TwilioTimeout):
        await send_message(client, from_=FROM, to=to, body="timed", content_sid=None,
                           content_variables=None, status_callback=None)
    return time.perf_counter() - begin


async def _exit_seconds(hanging: bool) -> float:
    """Seconds to leave a simulator, with one request hanging in it or idle."""
    settings = msgspec.convert({"per_number": {"+15551230060": "timeout"}}, SimulatorSettings)
    app = create_app(settings)
    live = app[STATE_KEY].settings
    pending: asyncio.Task[float] | None = None
    async with serve_app(app, "127.0.0.1", 0) as url:
        client = make_client(live.account_sid, live.auth_token, url, 30.0)
        if hanging:
            pending = asyncio.create_task(_timed_send(client, "+15551230060"))
            while app[STATE_KEY].stats.requests < 1:
                await asyncio.sleep(0.005)
        begin = time.perf_counter()
    seconds = time.perf_counter() - begin
    if pending is not None:
        await pending
    await close_client(client)
    return seconds


async def behaviours(rounds: int = 5) -> dict[str, Any]:
    """The timed behaviours (median of `rounds`), each with its floor and ratio."""
    settings = msgspec.convert({"slow_ms": 150.0, "per_number": {
        "+15551230015": "slow", "+15551230013": "timeout"}}, SimulatorSettings)
    app = create_app(settings)
    live = app[STATE_KEY].settings
    plain, slow, hang = [], [], []
    async with serve_app(app, "127.0.0.1", 0) as url:
        client = make_client(live.account_sid, live.auth_token, url, 0.3)
        try:
            await _timed_send(client, "+15550000000")  # warm-up
            for n in range(rounds):
                plain.append(await _timed_send(client, f"+1555000{n:04d}"))
                slow.append(await _timed_send(client, "+15551230015"))
                hang.append(await _timed_send(client, "+15551230013"))
        finally:
            await close_client(client)
    idle = [await _exit_seconds(False) for _ in range(rounds)]
    hung = [await _exit_seconds(True) for _ in range(rounds)]
    floor, exit_floor = statistics.median(plain), statistics.median(idle)

    def ms(values: list[float]) -> float:
        return round(statistics.median(values) * 1000, 2)

    return {
        "plain_send_ms": ms(plain),
        "slow_ms": ms(slow),
        "slow_ratio": round(statistics.median(slow) / floor, 1),
        "timeout_ms": ms(hang),
        "timeout_ratio": round(statistics.median(hang) / floor, 1),
        "exit_idle_ms": ms(idle),
        "exit_with_hang_ms": ms(hung),
        "exit_ratio": round(statistics.median(hung) / exit_floor, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    result = asyncio.run(bench(args.messages, args.concurrency))
    result |= asyncio.run(behaviours())
    for key, value in result.items():
        print(f"{key:>17}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
