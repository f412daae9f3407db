"""Benchmark: sends per second through the real twilio client against the Twilio simulator.

    .venv/bin/python tests/bench/bench_simulator.py --messages 1000 --concurrency 50

Starts the simulator on 127.0.0.1 (no rate limit, no injected errors), points a client built
by make_client at it, and sends N messages from C concurrent workers. Prints figures, then a
JSON last line with messages, concurrency, seconds, requests_per_s, p50_ms, p99_ms and
all_accepted (every send accepted and stored exactly once). The figure the simulator tests
used to assert: more than 200 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
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
from onboardd.twilio.client import close_client, make_client, send_message

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


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    result = asyncio.run(bench(args.messages, args.concurrency))
    for key, value in result.items():
        print(f"{key:>15}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
